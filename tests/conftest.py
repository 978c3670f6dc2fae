"""Shared test setup: 8 forced CPU devices (tests must hold on 1 and 8) and shared fixtures."""

import os
import sys

# Must happen before JAX initialises its backends.
os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import jax  # noqa: E402

jax.config.update('jax_num_cpu_devices', 8)

sys.path.insert(0, os.path.dirname(__file__))
