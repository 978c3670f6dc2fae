"""Tests for adversarial training (DDN, Madry, Eq. 6) and its data parallelism over 8 devices."""

import functools
import shutil

import jax
import numpy as np
import optax
import pytest

from ddn_jax import attacks, data, evaluation, models, training

assert_close = functools.partial(np.testing.assert_allclose, rtol=1e-5, atol=1e-6)


@pytest.fixture(autouse=True)
def _fast_compiling_prng():
  # The non-partitionable threefry compiles about 3x faster on CPU.
  with jax.threefry_partitionable(False):
    yield


@pytest.fixture(scope='module')
def fashion():
  images, labels = data.load('fashion_mnist', 'test', source='idx')
  return images[:48], labels[:48]


ADAM = optax.adam(1e-3)
DDN = training.ddn_adversary(eps=1.0, steps=5)
MADRY = training.madry_adversary(eps=1.0, steps=3, step_size=0.5)


def _state(optimizer=ADAM):
  return training.create_train_state(
    models.SmallCNN(), rng=jax.random.key(0), input_shape=(1, 28, 28, 1), optimizer=optimizer
  )


def test_ddn_adversary_is_projected_ddn_with_the_unprojected_norm(fashion):
  images, labels = fashion
  x, y = images[:8] / np.float32(255), labels[:8]
  logits_fn = models.make_logits_fn(_state().model, _state().variables)
  key = jax.random.key(1)
  adversary = training.ddn_adversary(eps=0.3, steps=5)
  result = adversary(logits_fn, x, y, key)
  unprojected = attacks.ddn(logits_fn, x, y, steps=5, key=key)
  projected = attacks.ddn(logits_fn, x, y, steps=5, key=key, eps=0.3)
  assert_close(result.adv, projected.adv)
  np.testing.assert_array_equal(result.success, projected.success)
  assert_close(result.l2, unprojected.l2)
  assert float(np.max(result.l2)) > 0.3  # the projection was active

  norms = evaluation.minimal_norms(logits_fn, x, y, steps=5, batch_size=8, key=key)
  assert_close(norms, np.where(unprojected.success, unprojected.l2, np.inf))
  accuracy = evaluation.robust_accuracy(np.array([0.0, 0.5, 1.0, np.inf]), [0.0, 0.5, 2.0])
  assert accuracy == {0.0: 0.75, 0.5: 0.5, 2.0: 0.25}


def test_clean_weight():
  batch = {'image': np.zeros((8, 28, 28, 1), np.uint8), 'label': np.zeros(8, np.int32)}
  _, metrics = jax.jit(training.adversarial_train_step)(_state(), batch)
  assert set(metrics) == {'loss', 'clean_accuracy'}  # plain training runs no attack
  with pytest.raises(ValueError, match='pass an adversary'):
    training.adversarial_train_step(_state(), batch, clean_weight=0.5)
  with pytest.raises(ValueError, match=r'in \[0, 1\], got 1.5'):
    training.adversarial_train_step(_state(), batch, adversary=DDN, clean_weight=1.5)


def test_sharded_steps_equal_one_device(fashion):
  """Eq. 6 with DDN: 3 steps on a batch split over 8 devices match 3 steps on one."""
  assert jax.device_count() == 8
  images, labels = fashion
  step = jax.jit(
    functools.partial(training.adversarial_train_step, adversary=DDN, clean_weight=0.5)
  )
  mesh = training.data_mesh()
  # SGD, not Adam: Adam's normalisation would amplify float noise in near-zero gradients.
  state = _state(training.sgd(0.05))
  states = {'one': state, 'eight': training.replicate(state, mesh)}
  for i in range(3):
    batch = {'image': images[16 * i : 16 * (i + 1)], 'label': labels[16 * i : 16 * (i + 1)]}
    states['one'], one = step(states['one'], batch)
    states['eight'], eight = step(states['eight'], training.shard_batch(batch, mesh))
    jax.tree.map(assert_close, eight, one)
  assert set(one) == {'loss', 'clean_accuracy', 'adv_accuracy', 'adv_l2'}
  assert float(one['adv_l2']) > 0
  params = states['eight'].params
  assert all(leaf.sharding.is_fully_replicated for leaf in jax.tree.leaves(params))
  assert len(jax.tree.leaves(params)[0].sharding.device_set) == 8
  jax.tree.map(assert_close, params, states['one'].params)


def test_batch_that_does_not_divide_the_devices_is_rejected(fashion):
  images, labels = fashion
  mesh = training.data_mesh()
  with pytest.raises(ValueError, match=r'batch of 12 examples .* over the 8 devices'):
    training.shard_batch({'image': images[:12], 'label': labels[:12]}, mesh)
  with pytest.raises(ValueError, match=r'batch of 12 examples .* over the 8 devices'):
    training.fit(_state(), fashion, num_epochs=1, batch_size=12, mesh=mesh, progress=False)


def test_sharded_madry_fit_resumes_to_the_same_state(fashion, tmp_path):
  mesh = training.data_mesh()
  step_fn = functools.partial(training.adversarial_train_step, adversary=MADRY)

  def run(workdir, **kwargs):
    return training.fit(
      _state(),
      (fashion[0][:40], fashion[1][:40]),
      num_epochs=2,
      batch_size=8,
      seed=3,
      step_fn=step_fn,
      mesh=mesh,
      workdir=workdir,
      checkpoint_every_steps=3,
      progress=False,
      **kwargs,
    )

  full_state, full_history = run(tmp_path / 'full')
  assert [row['step'] for row in full_history] == [5, 10]
  assert list(full_history[0])[2:6] == [
    'train_loss',
    'train_adv_accuracy',
    'train_adv_l2',
    'train_clean_accuracy',
  ]
  assert 0 < full_history[0]['train_adv_l2'] <= 1.0 + 1e-5

  # Killed after step 7, before its checkpoint was written: resumes from step 6.
  run(tmp_path / 'resumed', max_steps=7)
  shutil.rmtree(tmp_path / 'resumed' / 'checkpoints' / '7')
  resumed_state, resumed_history = run(tmp_path / 'resumed')
  assert int(resumed_state.step) == 10
  jax.tree.map(assert_close, resumed_state.params, full_state.params)
  jax.tree.map(assert_close, resumed_state.opt_state, full_state.opt_state)
  strip = lambda history: [{k: v for k, v in row.items() if k != 'seconds'} for row in history]
  assert strip(resumed_history) == strip(full_history)
