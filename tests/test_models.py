"""Tests for ddn_jax.models."""

import functools
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optional_deps import require

from ddn_jax import data, models


@pytest.fixture(autouse=True)
def _fast_compiling_prng():
  # The non-partitionable threefry compiles about 3x faster on CPU.
  with jax.threefry_partitionable(False):
    yield


def _num_params(model, shape):
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape)))
  return sum(math.prod(x.shape) for x in jax.tree.leaves(variables['params']))


@pytest.mark.parametrize(
  'model,shape,expected',
  [
    # Counts of the Carlini & Wagner Keras models and of the PyTorch WRN.
    (models.SmallCNN(), (1, 28, 28, 1), 312_202),
    (models.CifarCNN(), (1, 32, 32, 3), 1_147_978),
    (models.WideResNet(28, 10), (1, 32, 32, 3), 36_479_194),
  ],
)
def test_parameter_counts(model, shape, expected):
  assert _num_params(model, shape) == expected


@pytest.mark.parametrize(
  'model,shape',
  [(models.SmallCNN(), (3, 28, 28, 1)), (models.CifarCNN(num_classes=7), (3, 32, 32, 3))],
)
def test_cnn_dropout_only_in_training(model, shape):
  x = jax.random.uniform(jax.random.key(1), shape)
  variables = jax.jit(model.init)(jax.random.key(0), x)

  @jax.jit
  def outputs(variables, x):
    train = [
      model.apply(variables, x, train=True, rngs={'dropout': jax.random.key(i)}) for i in (1, 2)
    ]
    return model.apply(variables, x), model.apply(variables, x, train=False), train

  eval_logits, eval_logits_again, train = outputs(variables, x)
  assert eval_logits.shape == (3, model.num_classes)
  np.testing.assert_array_equal(eval_logits, eval_logits_again)
  assert not np.allclose(train[0], train[1])
  assert not np.allclose(train[0], eval_logits)


def test_wide_resnet_batch_norm_modes():
  model = models.WideResNet(10, 1, dropout_rate=0.3, num_classes=5)
  require('foolbox')
  x = jnp.asarray(data.load('cifar10', 'test', source='foolbox')[0][:8] / 255.0, jnp.float32)
  variables = jax.jit(model.init)(jax.random.key(0), x)
  assert jax.tree.leaves(variables['batch_stats'])

  @jax.jit
  def outputs(variables, x):
    logits, updates = model.apply(
      variables, x, train=True, rngs={'dropout': jax.random.key(1)}, mutable=['batch_stats']
    )
    variables = {**variables, **updates}
    # Without dropout, training-mode logits of an image depend on the
    # rest of the batch; inference-mode logits (running averages) do not.
    no_dropout = models.WideResNet(10, 1, num_classes=5)
    train = [
      no_dropout.apply(variables, y, train=True, mutable=['batch_stats'])[0][:2] for y in (x, x[:2])
    ]
    infer = [model.apply(variables, y)[:2] for y in (x, x[:2])]
    return logits, updates, train, infer

  logits, updates, train, infer = outputs(variables, x)
  assert logits.shape == (8, 5)
  changed = jax.tree.map(
    lambda a, b: not np.allclose(a, b), variables['batch_stats'], updates['batch_stats']
  )
  assert all(jax.tree.leaves(changed))
  np.testing.assert_allclose(infer[0], infer[1], atol=1e-5)
  assert not np.allclose(train[0], train[1], atol=1e-3)


def test_preact_resnet18_batch_norm_modes():
  model = models.build_model('preact_resnet18', num_classes=5, mean=[0.5] * 3)
  assert model == models.PreActResNet18(num_classes=5, mean=(0.5,) * 3)
  x = jax.random.uniform(jax.random.key(2), (4, 32, 32, 3))
  variables = model.init(jax.random.key(0), x)
  logits, updates = model.apply(variables, x, train=True, mutable=['batch_stats'])
  assert logits.shape == (4, 5)
  changed = jax.tree.map(
    lambda a, b: not np.allclose(a, b), variables['batch_stats'], updates['batch_stats']
  )
  assert len(jax.tree.leaves(changed)) == 2 * 17 and all(jax.tree.leaves(changed))  # 17 BNs
  # Batch statistics in training, running averages (here the initial ones) in inference.
  assert not np.allclose(logits, model.apply(variables, x), atol=1e-3)


def test_wide_resnet_rejects_bad_depth():
  with pytest.raises(ValueError, match='6n \\+ 4'):
    models.WideResNet(12, 1).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError, match='6n \\+ 4'):
    models.DMWideResNet(12, 1).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError, match=r'one of \[18, 34\], got 50'):
    models.DMPreActResNet(50).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
  with pytest.raises(ValueError, match=r'one of \[18, 34, 50\], got 101'):
    models.ResNet(101).init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))


def test_wide_resnet_standardises_inputs_inside():
  # A model whose mean/std map x to 2x - 1 equals the default model fed
  # with inputs already standardised by the CIFAR-10 statistics.
  x = jax.random.uniform(jax.random.key(2), (2, 32, 32, 3))
  model = models.WideResNet(10, 1)
  shifted = models.WideResNet(10, 1, mean=(0.5,) * 3, std=(0.5,) * 3)
  variables = jax.jit(model.init)(jax.random.key(0), x)
  mean, std = jnp.asarray(models.CIFAR10_MEAN), jnp.asarray(models.CIFAR10_STD)
  x_for_default = ((2 * x - 1) * std) + mean
  np.testing.assert_allclose(
    jax.jit(shifted.apply)(variables, x),
    jax.jit(model.apply)(variables, x_for_default),
    atol=1e-4,
  )


@pytest.mark.parametrize(
  'model,shape',
  [(models.SmallCNN(), (4, 28, 28, 1)), (models.WideResNet(10, 1), (4, 32, 32, 3))],
)
def test_make_logits_fn_is_pure_inference(model, shape):
  x = jax.random.uniform(jax.random.key(1), shape)
  variables = jax.jit(model.init)(jax.random.key(0), x)
  logits_fn = models.make_logits_fn(model, variables)
  logits = jax.jit(logits_fn)(x)
  np.testing.assert_allclose(logits, jax.jit(model.apply)(variables, x), atol=1e-6)
  np.testing.assert_allclose(logits, jax.jit(logits_fn)(x), atol=0)  # deterministic

  grad = jax.jit(jax.grad(lambda x: logits_fn(x)[:, 0].sum()))(x)
  assert grad.shape == shape and np.isfinite(grad).all() and np.abs(grad).sum() > 0

  if 'batch_stats' in variables:
    shifted = jax.tree.map(lambda v: v + 0.5, variables['batch_stats'])
    other = jax.jit(models.make_logits_fn(model, {**variables, 'batch_stats': shifted}))(x)
    assert not np.allclose(other, logits)


def test_held_out_indices_never_include_training_images():
  # 100 distinct images; a model trained on the first 70 of the seed-3 permutation.
  images = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
  labels = np.arange(100, dtype=np.int32) % 10
  info = {
    'dataset': 'mnist',
    'split': 'train',
    'num_train': 70,
    'seed': 3,
    'split_fingerprint': data.fingerprint(images, labels),
  }
  trained = set(np.random.default_rng(3).permutation(100)[:70].tolist())
  select = functools.partial(models.held_out_indices, info, images, labels, dataset='mnist')
  for seed in (3, 4):  # the training seed, or another one
    index = select(split='train', num=20, seed=seed)
    assert len(set(index.tolist())) == 20 and not trained & set(index.tolist())
  with pytest.warns(UserWarning, match='Only 30 of the 100 images of mnist train .* not 50'):
    index = select(split='train', num=50, seed=4)
  assert set(index.tolist()) == set(range(100)) - trained
  # Another split holds no training image: any of its images may be chosen.
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    assert len(select(split='test', num=100, seed=4)) == 100
  with pytest.warns(UserWarning, match="trained on mnist 'train'; these images of 'train.:50.'"):
    select(split='train[:50]', num=10, seed=3)
  # Other images under the same name, or no image held out: refused.
  with pytest.raises(ValueError, match='not those the model was trained on'):
    models.held_out_indices(
      info, images[::-1], labels[::-1], dataset='mnist', split='train', num=10, seed=3
    )
  with pytest.raises(ValueError, match='trained on all 100 images of mnist train: none is held'):
    models.held_out_indices(
      {**info, 'num_train': 100}, images, labels, dataset='mnist', split='train', num=10, seed=3
    )
