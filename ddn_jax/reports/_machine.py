"""What a timing or evaluation report says about the machine it ran on."""

from __future__ import annotations

import os
import platform
import sys
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

  Never imports PyTorch: versions come from the installed distributions' metadata, and
  PyTorch's thread count is read only when the caller has imported it already.

  Args:
    packages: distributions whose installed versions to report (None where not installed).

  Returns:
    A JSON-serialisable dict: ``cpu``, ``logical_cpus``, ``usable_cpus``, ``backend``,
    ``device`` (the first device's kind), ``num_devices``, ``allocator`` (``jemalloc`` when it
    is preloaded), ``ld_preload``, ``malloc_conf``, ``xla_flags``, ``torch_threads`` (None
    unless torch is imported), ``python``, ``platform`` and ``versions``.
  """
  versions = {}
  for package in packages:
    try:
      versions[package] = metadata.version(package)
    except metadata.PackageNotFoundError:
      versions[package] = None
  # Importing torch would take seconds and load its own thread pools into the process.
  torch = sys.modules.get('torch')
  torch_threads = None if torch is None else torch.get_num_threads()
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
  """One line for a report: CPU, cores, JAX devices and versions.

  Args:
    info: a `machine_info` dict (default ``machine_info(('jax',))``). What it holds beyond the
      defaults is appended: usable CPUs when fewer than the logical ones, a preloaded allocator,
      PyTorch's threads, and the versions of the other installed packages.
  """
  m = info or machine_info(('jax',))
  line = (
    f'{m["cpu"]}, {m["logical_cpus"]} cores visible, {m["num_devices"]} JAX {m["backend"]} '
    f'device(s) ({m["device"]}), jax {m["versions"]["jax"]}, {m["platform"]}'
  )
  extras = []
  if m.get('usable_cpus') not in (None, m['logical_cpus']):
    extras.append(f'{m["usable_cpus"]} usable CPUs')
  if m.get('ld_preload'):
    extras.append(f'{m["allocator"]} ({m["ld_preload"]})')
  if m.get('torch_threads') is not None:
    extras.append(f'torch threads {m["torch_threads"]}')
  extras += [f'{k} {v}' for k, v in m['versions'].items() if k != 'jax' and v is not None]
  return f'{line}; {", ".join(extras)}' if extras else line
