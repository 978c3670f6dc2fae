"""The distributed and persist sections: throughput over devices and processes, and the cost of
saving an evaluation's batches for resume."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import jax

from ddn_jax import attacks, evaluation, sharding
from ddn_jax.benchmark import _sections, _setup, _timing

# How long one configuration's processes may take before they are killed.
_TIMEOUT_S = 1800


def _workloads(logits_fn, x, y, cfg: dict[str, Any], mesh) -> dict[str, Any]:
  """What each point times: an evaluation of DDN and a sweep of its gamma, one global batch."""
  ddn = attacks.make_attack('ddn', steps=cfg['steps'])
  gammas = _sections.sweep_gammas(cfg['sweep_points'])
  return {
    'evaluate': lambda: evaluation.evaluate_attack(
      ddn, logits_fn, x, y, name=ddn.label, batch_size=len(x), mesh=mesh, progress=False
    ),
    'sweep': lambda: evaluation.sweep(
      attacks.ddn,
      logits_fn,
      x,
      y,
      grid={'gamma': gammas},
      static={'steps': [cfg['sweep_steps']]},
      mesh=mesh,
      batch_size=len(x),
    ),
  }


def point(
  num_processes: int, process_id: int, port: int, local_devices: int, cfg: dict[str, Any]
) -> dict[str, Any] | None:
  """One process of a distributed point, meant for a fresh process (JAX not yet started).

  Joins ``jax.distributed`` on 127.0.0.1:``port`` when ``num_processes > 1``, forces
  ``local_devices`` CPU devices, and times each workload over a mesh of every process's devices:
  the first call (compilation included), then the median of ``cfg['repeats']`` calls. Returns
  the timings on process 0, None on the others.
  """
  jax.config.update('jax_num_cpu_devices', local_devices)
  if num_processes > 1:
    jax.distributed.initialize(
      coordinator_address=f'127.0.0.1:{port}',
      num_processes=num_processes,
      process_id=process_id,
      initialization_timeout=300,
    )
  _, _, logits_fn, _ = _setup.make_model('small_cnn', 0)
  x, _ = _setup.load_images('small_cnn', cfg['images'])
  y = _setup.predictions(logits_fn, x)
  out: dict[str, Any] = {
    'processes': num_processes,
    'devices_per_process': local_devices,
    'devices': jax.device_count(),
    'images': len(x),
  }
  for name, run in _workloads(logits_fn, x, y, cfg, sharding.data_mesh()).items():
    out[f'{name}_first_s'] = _timing.timed(run)
    out[f'{name}_s'] = statistics.median(_timing.timed(run) for _ in range(cfg['repeats']))
  return out if jax.process_index() == 0 else None


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def run_point(num_processes: int, local_devices: int, cfg: dict[str, Any]) -> dict[str, Any]:
  """`point` in ``num_processes`` fresh ``python -m ddn_jax.benchmark --distributed-point``
  processes on this machine; process 0's timings, or the error of the first that failed."""
  port = _free_port()
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}  # a forced device count
  procs = [
    subprocess.Popen(
      [
        sys.executable,
        '-m',
        'ddn_jax.benchmark',
        '--distributed-point',
        json.dumps([num_processes, i, port, local_devices, cfg]),
      ],
      stdout=subprocess.PIPE,
      stderr=subprocess.PIPE,
      text=True,
      env=env,
    )
    for i in range(num_processes)
  ]
  outputs = []
  for proc in procs:
    try:
      outputs.append(proc.communicate(timeout=_TIMEOUT_S))
    except subprocess.TimeoutExpired:
      for p in procs:
        p.kill()
      return {'processes': num_processes, 'error': f'timed out after {_TIMEOUT_S} s'}
  for proc, (stdout, stderr) in zip(procs, outputs):
    if proc.returncode:
      lines = stderr.strip().splitlines() or ['(no output)']
      return {'processes': num_processes, 'devices_per_process': local_devices,
              'error': lines[-1][:400]}  # fmt: skip
  return json.loads(outputs[0][0].strip().splitlines()[-1])


def distributed_section(cfg: dict[str, Any], save) -> list[dict[str, Any]]:
  """Every configuration of ``cfg['devices']`` (one process) and ``cfg['processes']`` (one
  device each), in ``cfg['rounds']`` rounds that alternate them; per configuration the median
  over rounds, and its per-device efficiency against one device. ``save(rows)`` after each."""
  configs = [(1, d) for d in cfg['devices']]
  configs += [(p, 1) for p in cfg['processes'] if p > 1]
  runs: dict[tuple[int, int], list[dict[str, Any]]] = {c: [] for c in configs}
  rows: list[dict[str, Any]] = []
  for _ in range(cfg['rounds']):
    for config in configs:
      runs[config].append(run_point(*config, cfg))
      rows = _summarise(runs)
      save(rows)
  return rows


def _summarise(runs: dict[tuple[int, int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
  rows = []
  for (processes, local_devices), results in runs.items():
    good = [r for r in results if 'error' not in r]
    row: dict[str, Any] = {'processes': processes, 'devices_per_process': local_devices}
    row['devices'] = processes * local_devices
    row['rounds'] = len(good)
    if not good:
      row['error'] = results[-1].get('error') if results else 'not run'
    for name in ('evaluate', 'sweep'):
      for key in (f'{name}_s', f'{name}_first_s'):
        if good:
          row[key] = statistics.median(r[key] for r in good)
    rows.append(row)
  base = next((r for r in rows if r['devices'] == 1 and 'error' not in r), None)
  for row in rows:
    for name in ('evaluate', 'sweep'):
      if base and f'{name}_s' in row:
        speedup = base[f'{name}_s'] / row[f'{name}_s']
        row[f'{name}_speedup'] = speedup
        row[f'{name}_efficiency'] = speedup / row['devices']
  return rows


def persist_section(logits_fn, x, y, *, batch: int, steps: int, rounds: int) -> dict[str, Any]:
  """`evaluation.evaluate_attack` of DDN with and without a ``resume_dir`` (a fresh one each
  time: every batch is attacked and saved), alternating; the median ratio is the cost of
  persisting."""
  ddn = attacks.make_attack('ddn', steps=steps)

  def run(resume: bool) -> float:
    with tempfile.TemporaryDirectory() as directory:
      start = time.perf_counter()
      evaluation.evaluate_attack(
        ddn, logits_fn, x, y, name=ddn.label, batch_size=batch, progress=False,
        resume_dir=os.path.join(directory, 'batches') if resume else None,
      )  # fmt: skip
      return time.perf_counter() - start

  run(False)  # compilation
  times: dict[bool, list[float]] = {False: [], True: []}
  for _ in range(rounds):
    for resume in (False, True):
      times[resume].append(run(resume))
  return {
    'images': len(x),
    'batch': batch,
    'steps': steps,
    'batches': -(-len(x) // batch),
    'plain_s': statistics.median(times[False]),
    'persisted_s': statistics.median(times[True]),
    'persisted_over_plain': statistics.median(b / a for a, b in zip(times[False], times[True])),
    'rounds': rounds,
  }
