"""Attack loops must use XLA:CPU's library convolution, not naive loop nests.

XLA:CPU canonicalises convolution layouts only in the entry computation; inside a loop body the
input-gradient convolutions would be lowered to naive "elemental" kernels (~3x slower). The
attacks re-emit convolutions channels-last to avoid that; these tests read the compiled program.
"""

import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks, models
from ddn_jax.attacks import _canonical_conv, _ddn

pytestmark = pytest.mark.skipif(jax.default_backend() != 'cpu', reason='an XLA:CPU property')


class _InceptionConvs(nn.Module):
  """The convolution shapes of Inception V3 at a small size: 1×7 and 7×1 kernels with their
  padding, a strided 3×3 without padding, 1×1 and 1×3 / 3×1 branches, and a concatenation."""

  @nn.compact
  def __call__(self, x, train=False):
    del train
    x = nn.relu(nn.Conv(8, (3, 3), strides=2, padding='VALID')(x))
    seven = nn.relu(nn.Conv(6, (1, 7), padding=((0, 0), (3, 3)))(x))
    seven = nn.relu(nn.Conv(6, (7, 1), padding=((3, 3), (0, 0)))(seven))
    three = nn.relu(nn.Conv(6, (1, 3), padding=((0, 0), (1, 1)))(x))
    three = nn.relu(nn.Conv(6, (3, 1), padding=((1, 1), (0, 0)))(three))
    x = jnp.concatenate([nn.Conv(4, (1, 1))(x), seven, three], axis=-1)
    x = nn.relu(nn.Conv(8, (3, 3), strides=2, padding='VALID')(x))
    return nn.Dense(10)(x.reshape(x.shape[0], -1))


# Architectures beyond SmallCNN's unstrided 3×3 convolutions: strided ones and 1×1 strided
# shortcuts (WideResNet), and Inception's 1×7 / 7×1 kernels.
_MODELS = {
  'wide_resnet': (models.WideResNet(10, 1), (32, 32, 3)),
  'inception_convs': (_InceptionConvs(), (32, 32, 3)),
}


def _naive_convolutions(compile_attack, tmp_path) -> list[str]:
  compile_attack(compiler_options={'xla_dump_to': str(tmp_path)})
  return [n for n in os.listdir(tmp_path) if 'conv' in n and 'elemental_kernel' in n]


def _compilers(model, shape, wrap=lambda f: f):
  """Per attack, a function compiling it (through its public entry point) on a tiny batch."""
  x = jnp.full((2, *shape), 0.5)
  y = jnp.zeros(2, jnp.int32)
  f = models.make_logits_fn(model, model.init(jax.random.key(0), x[:1]))
  runs = {
    'ddn': lambda f, x, y: attacks.ddn(f, x, y, steps=2),
    'carlini_wagner_l2': lambda f, x, y: attacks.carlini_wagner_l2(
      f, x, y, binary_search_steps=1, steps=10
    ),
    'pgd_l2': lambda f, x, y: attacks.pgd_l2(f, x, y, eps=1.0, steps=2, step_size=0.1),
    'deepfool': lambda f, x, y: attacks.deepfool(f, x, y, steps=2),
    'fmn_l2': lambda f, x, y: attacks.fmn_l2(f, x, y, steps=2),
  }
  return {
    name: lambda run=run, **kw: (
      jax.jit(lambda f, x, y: run(wrap(f), x, y)).lower(f, x, y).compile(**kw)
    )
    for name, run in runs.items()
  }


@pytest.mark.parametrize('name', ['ddn', 'carlini_wagner_l2', 'pgd_l2', 'deepfool', 'fmn_l2'])
def test_attack_loops_use_library_convolutions(name, tmp_path):
  compile_attack = _compilers(models.SmallCNN(), (28, 28, 1))[name]
  assert _naive_convolutions(compile_attack, tmp_path) == []


def test_cifar_cnn_ddn_uses_library_convolutions(tmp_path):
  compile_attack = _compilers(models.CifarCNN(), (32, 32, 3))['ddn']
  assert _naive_convolutions(compile_attack, tmp_path) == []


@pytest.mark.parametrize('name', list(_MODELS))
def test_strided_and_1x7_convolutions_use_the_library(name, tmp_path):
  compile_attack = _compilers(*_MODELS[name])['ddn']
  assert _naive_convolutions(compile_attack, tmp_path) == []


def test_a_users_checkpoint_keeps_the_rewrite(tmp_path):
  """A logits_fn under the user's ``jax.checkpoint`` (remat) is inlined and rewritten too."""
  compile_attack = _compilers(*_MODELS['wide_resnet'], wrap=jax.checkpoint)['ddn']
  assert _naive_convolutions(compile_attack, tmp_path) == []


@pytest.mark.parametrize('name', ['small_cnn', *_MODELS])
def test_without_the_rewrite_xla_emits_naive_convolutions(name, tmp_path, monkeypatch):
  """The control: if this fails, XLA fixed the pass and the rewrite can be removed."""
  model, shape = _MODELS.get(name, (models.SmallCNN(), (28, 28, 1)))
  monkeypatch.setattr(_canonical_conv, 'canonicalize_convolutions', lambda fn: fn)
  _ddn._ddn.clear_cache()  # Retrace without the rewrite, and keep that trace from other tests.
  try:
    assert _naive_convolutions(_compilers(model, shape)['ddn'], tmp_path)
  finally:
    _ddn._ddn.clear_cache()


@pytest.mark.parametrize('name', ['small_cnn', *_MODELS])
@pytest.mark.parametrize('remat', [False, True], ids=['plain', 'checkpoint'])
def test_rewrite_is_exact(name, remat):
  model, shape = _MODELS.get(name, (models.SmallCNN(), (28, 28, 1)))
  x = jax.random.uniform(jax.random.key(1), (3, *shape))
  f = models.make_logits_fn(model, model.init(jax.random.key(0), x[:1]))
  f = jax.checkpoint(f) if remat else f
  grad = jax.grad(lambda x: jnp.sum(f(x) ** 2))
  expected = jax.jit(grad)(x)
  got = jax.jit(_canonical_conv.canonicalize_convolutions(grad))(x)
  # The same convolutions in another layout: the library may sum in another order.
  scale = np.abs(np.asarray(expected)).max()
  assert scale > 0
  np.testing.assert_allclose(got / scale, expected / scale, atol=1e-6)
