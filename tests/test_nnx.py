"""Flax NNX models: `make_logits_fn` keeps their state traced, and `NnxSmallCNN` equals `SmallCNN`."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ddn_jax import attacks, models


def _linen_variables(seed):
  return jax.jit(functools.partial(models.SmallCNN().init, train=False))(
    jax.random.key(seed), jnp.zeros((1, 28, 28, 1))
  )


def test_nnx_small_cnn_equals_its_linen_twin(mnist_cnn):
  _, images, _ = mnist_cnn
  images = images[:16]
  variables = _linen_variables(0)
  nnx_model = models.NnxSmallCNN(rngs=nnx.Rngs(1)).load_linen(variables)
  linen = models.make_logits_fn(models.SmallCNN(), variables)
  ours = models.make_logits_fn(nnx_model)
  # The same layers in the same order: equal up to the rounding of the batched matmuls.
  grad = lambda fn, x: jax.grad(lambda x: fn(x)[:, 0].sum())(x)
  both = jax.jit(lambda f, g, x: (f(x), g(x), grad(f, x), grad(g, x)))
  logits, expected, grad, expected_grad = both(ours, linen, images)
  np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(grad, expected_grad, rtol=1e-4, atol=1e-6)
  assert nnx_model.dropout.deterministic is False  # train mode kept: evaluated on a copy


def test_nnx_dropout_is_off_in_the_logits_fn(mnist_cnn):
  _, images, _ = mnist_cnn
  model = models.NnxSmallCNN(dropout_rate=0.9, rngs=nnx.Rngs(0))
  fn = jax.jit(models.make_logits_fn(model))
  np.testing.assert_array_equal(fn(images[:4]), fn(images[:4]))
  train_mode = nnx.jit(lambda m, x: m(x))(model, jnp.asarray(images[:4]))
  assert not np.allclose(train_mode, fn(images[:4]))


def test_an_attack_on_a_new_nnx_model_compiles_once(mnist_cnn):
  _, images, labels = mnist_cnn
  images, labels = images[:8], labels[:8]
  attack = jax.jit(functools.partial(attacks.ddn, steps=5))
  results = []
  for seed in (0, 1):
    fn = models.make_logits_fn(models.NnxSmallCNN(rngs=nnx.Rngs(seed)))
    results.append(attack(fn, images, labels))
  assert attack._cache_size() == 1
  assert not np.array_equal(results[0].adv, results[1].adv)  # the new weights were used


@pytest.mark.parametrize('precision', ['float32', 'bfloat16'])
def test_nnx_precision_follows_the_policy(mnist_cnn, precision):
  _, images, labels = mnist_cnn
  model = models.NnxSmallCNN(rngs=nnx.Rngs(0))
  f32 = jax.jit(models.make_logits_fn(model))
  fn = models.make_logits_fn(model, precision=precision)
  np.testing.assert_array_equal(jax.jit(fn)(images[:4]), f32(images[:4]))
  result = attacks.ddn(fn, images[:8], labels[:8], steps=20)
  np.testing.assert_array_equal(
    result.success, attacks.is_adversarial(f32(result.adv), labels[:8], False)
  )


def test_variables_are_checked_against_the_kind_of_model():
  with pytest.raises(TypeError, match='holds its own state'):
    models.make_logits_fn(models.NnxSmallCNN(rngs=nnx.Rngs(0)), {'params': {}})
  with pytest.raises(TypeError, match='needs its variables'):
    models.make_logits_fn(models.SmallCNN())
  with pytest.raises(ValueError, match='Linen SmallCNN'):
    models.NnxSmallCNN(rngs=nnx.Rngs(0)).load_linen({'params': {'Conv_0': {}}})
  with pytest.raises(ValueError, match='num_classes'):
    models.NnxSmallCNN(num_classes=3, rngs=nnx.Rngs(0)).load_linen(_linen_variables(0))
