"""Attack loops must use XLA:CPU's library convolution, not naive loop nests.

XLA:CPU canonicalises convolution layouts only in the entry computation; inside a loop body the
input-gradient convolutions would be lowered to naive "elemental" kernels (~3x slower). The
attacks re-emit convolutions channels-last to avoid that; these tests read the compiled program.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks, models
from ddn_jax.attacks import _canonical_conv, _ddn

pytestmark = pytest.mark.skipif(jax.default_backend() != 'cpu', reason='an XLA:CPU property')


def _naive_convolutions(compile_attack, tmp_path) -> list[str]:
  compile_attack(compiler_options={'xla_dump_to': str(tmp_path)})
  return [n for n in os.listdir(tmp_path) if 'conv' in n and 'elemental_kernel' in n]


def _compilers(model, shape):
  """Per attack, a function compiling it (through its public entry point) on a tiny batch."""
  x = jnp.full((2, *shape), 0.5)
  y = jnp.zeros(2, jnp.int32)
  f = models.make_logits_fn(model, model.init(jax.random.key(0), x[:1]))
  runs = {
    'ddn': lambda f, x, y: attacks.ddn(f, x, y, steps=2),
    'carlini_wagner_l2': lambda f, x, y: attacks.carlini_wagner_l2(
      f, x, y, binary_search_steps=1, max_iterations=10
    ),
    'pgd_l2': lambda f, x, y: attacks.pgd_l2(f, x, y, eps=1.0, steps=2, step_size=0.1),
    'deepfool': lambda f, x, y: attacks.deepfool(f, x, y, steps=2),
    'fmn_l2': lambda f, x, y: attacks.fmn_l2(f, x, y, steps=2),
  }
  return {
    name: lambda run=run, **kw: jax.jit(run).lower(f, x, y).compile(**kw)
    for name, run in runs.items()
  }


@pytest.mark.parametrize('name', ['ddn', 'carlini_wagner_l2', 'pgd_l2', 'deepfool', 'fmn_l2'])
def test_attack_loops_use_library_convolutions(name, tmp_path):
  compile_attack = _compilers(models.SmallCNN(), (28, 28, 1))[name]
  assert _naive_convolutions(compile_attack, tmp_path) == []


def test_cifar_cnn_ddn_uses_library_convolutions(tmp_path):
  compile_attack = _compilers(models.CifarCNN(), (32, 32, 3))['ddn']
  assert _naive_convolutions(compile_attack, tmp_path) == []


def test_without_the_rewrite_xla_emits_naive_convolutions(tmp_path, monkeypatch):
  """The control: if this fails, XLA fixed the pass and the rewrite can be removed."""
  monkeypatch.setattr(_canonical_conv, 'canonicalize_convolutions', lambda fn: fn)
  _ddn._ddn.clear_cache()  # Retrace without the rewrite, and keep that trace from other tests.
  try:
    compile_attack = _compilers(models.SmallCNN(), (28, 28, 1))['ddn']
    assert _naive_convolutions(compile_attack, tmp_path)
  finally:
    _ddn._ddn.clear_cache()


def test_rewrite_is_exact():
  model = models.SmallCNN()
  x = jax.random.uniform(jax.random.key(1), (3, 28, 28, 1))
  f = models.make_logits_fn(model, model.init(jax.random.key(0), x[:1]))
  grad = jax.grad(lambda x: jnp.sum(jax.checkpoint(f)(x) ** 2))
  np.testing.assert_array_equal(
    jax.jit(grad)(x), jax.jit(_canonical_conv.canonicalize_convolutions(grad))(x)
  )
