"""What a timing or evaluation report says about the machine it ran on."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import jax

PACKAGES = ('jax', 'jaxlib', 'flax', 'optax', 'numpy', 'torch', 'adv-lib', 'foolbox')


def cpu_model() -> str:
  """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
  try:
    with open('/proc/cpuinfo') as f:
      return next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    return platform.processor() or platform.machine() or 'unknown'


def machine_info(packages: tuple[str, ...] = PACKAGES) -> dict[str, Any]:
  """CPU, cores, JAX devices, allocator, XLA flags, PyTorch threads and package versions.

  Args:
    packages: distributions whose installed versions to report (None where not installed).

  Returns:
    A JSON-serialisable dict: ``cpu``, ``logical_cpus``, ``usable_cpus``, ``backend``,
    ``device`` (the first device's kind), ``num_devices``, ``allocator`` (``jemalloc`` when it
    is preloaded), ``ld_preload``, ``malloc_conf``, ``xla_flags``, ``torch_threads`` (None
    without torch), ``python``, ``platform`` and ``versions``.
  """
  versions = {}
  for package in packages:
    try:
      versions[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      versions[package] = None
  try:
    import torch

    torch_threads = torch.get_num_threads()
  except ImportError:
    torch_threads = None
  preload = os.environ.get('LD_PRELOAD', '')
  devices = jax.devices()
  return {
    'cpu': cpu_model(),
    'logical_cpus': os.cpu_count(),
    'usable_cpus': len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else None,
    'backend': jax.default_backend(),
    'device': devices[0].device_kind,
    'num_devices': len(devices),
    # Neither JAX nor PyTorch links a faster allocator unless one is preloaded.
    'allocator': 'jemalloc' if 'jemalloc' in preload else 'glibc malloc',
    'ld_preload': preload or None,
    'malloc_conf': os.environ.get('MALLOC_CONF'),
    'xla_flags': os.environ.get('XLA_FLAGS'),
    'torch_threads': torch_threads,
    'python': platform.python_version(),
    'platform': platform.platform(),
    'versions': versions,
  }


def describe_machine(info: dict[str, Any] | None = None) -> str:
  """One line for a report: CPU, cores, JAX devices and versions (``info`` from `machine_info`)."""
  m = info or machine_info(('jax',))
  return (
    f'{m["cpu"]}, {m["logical_cpus"]} cores visible, {m["num_devices"]} JAX {m["backend"]} '
    f'device(s) ({m["device"]}), jax {m["versions"]["jax"]}, {m["platform"]}'
  )
