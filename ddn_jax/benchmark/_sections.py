"""The gradient, scaling and sweep sections: JAX vs PyTorch, batch and steps, vmapped sweeps."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax import attacks, evaluation
from ddn_jax.benchmark import _setup, _sides, _timing


def torch_gradient_fn(module, x, y):
  """PyTorch's forward+backward of the summed cross-entropy w.r.t. NCHW images."""
  import torch

  device = next(module.parameters()).device
  xt = torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))).to(device)
  yt = torch.from_numpy(np.asarray(y, np.int64)).to(device)

  def run():
    xx = xt.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(module(xx), yt, reduction='sum')
    grad = torch.autograd.grad(loss, xx)[0]
    if grad.is_cuda:
      torch.cuda.synchronize(device)
    return grad

  return run


def gradient_section(model_name, logits_fn, module, batch, rounds) -> dict[str, Any]:
  """JAX's jitted value-and-grad vs PyTorch's forward+backward, alternating."""
  x, _ = _setup.load_images(model_name, batch)
  y = _setup.predictions(logits_fn, x)
  bare = _timing.BareGradient(logits_fn, x, y)
  runs = {
    'jax': lambda: bare.plain(x, y),
    'jax_channels_last': lambda: bare.channels_last(x, y),
    'jax_loop': lambda: bare.loop(x, y),
  }
  if module is not None:
    runs['torch'] = torch_gradient_fn(module, x, y)
  for fn_ in runs.values():
    for _ in range(2):
      _timing.timed(fn_)
  times = {k: [] for k in runs}
  for _ in range(rounds):
    for k, fn_ in runs.items():
      times[k].append(_timing.timed_both(fn_))
  out = {'model': model_name, 'batch': batch, 'compile_s': bare.compile_s}
  out |= {f'{k}_s': statistics.median(t[0] for t in v) for k, v in times.items()}
  out |= {f'{k}_cpu_s': statistics.median(t[1] for t in v) for k, v in times.items()}
  out['jax_in_loop_s'] = out.pop('jax_loop_s') / _timing.BareGradient.LOOP
  del out['jax_loop_cpu_s']
  if module is not None:
    best = [min(a, b) for a, b in zip(times['jax'], times['jax_channels_last'])]
    ratio = lambda i: statistics.median(a[i] / b[i] for a, b in zip(best, times['torch']))
    out['jax_over_torch'], out['jax_over_torch_cpu'] = ratio(0), ratio(1)
  return out


def point(model_name: str, batch: int, steps: int) -> dict[str, Any]:
  """One scaling point, meant for a fresh process: bare gradient and DDN-``steps`` with memory."""
  _model, _variables, logits_fn, _ = _setup.make_model(model_name, 0)
  x, _ = _setup.load_images(model_name, batch)
  y = _setup.predictions(logits_fn, x)
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  bare = _timing.BareGradient(logits_fn, x, y, calls=1)
  ddn = _sides.JaxSide(attacks.make_attack('ddn', steps=steps), logits_fn, x, y)
  ddn()  # Warm-up: the first run of a compiled program maps its buffers.
  ddn_times, bare_times, loop_times = [], [], []
  repeats = 1 if batch * steps >= 20_000 else 2
  for _ in range(repeats):
    bare_times.append(bare()[0])
    loop_times.append(bare.looped())
    ddn_times.append(ddn()[0])
  out = {
    'model': model_name,
    'batch': batch,
    'steps': steps,
    'bare_grad_s': statistics.median(bare_times),
    'bare_grad_in_loop_s': statistics.median(loop_times),
    'ddn_s': statistics.median(ddn_times),
    'ddn_compile_s': ddn.compile_s,
    'ddn_temp_bytes': ddn.temp_bytes,
    'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    'rss_before_bytes': rss_before,
  }
  out['overhead'] = out['ddn_s'] / (steps * out['bare_grad_s'])
  out['overhead_vs_loop'] = out['ddn_s'] / (steps * out['bare_grad_in_loop_s'])
  out['ddn_s_per_1000_images'] = out['ddn_s'] * 1000 / batch
  stats = jax.devices()[0].memory_stats() if jax.default_backend() != 'cpu' else None
  if stats:
    out['device_peak_bytes'] = stats.get('peak_bytes_in_use')
  return out


def run_point(model_name: str, batch: int, steps: int) -> dict[str, Any]:
  """`point` in a fresh ``python -m ddn_jax.benchmark --point`` process: its own peak RSS."""
  cmd = [sys.executable, '-m', 'ddn_jax.benchmark', '--point', f'{model_name},{batch},{steps}']
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode:
    lines = proc.stderr.strip().splitlines() or ['(no output)']
    return {'model': model_name, 'batch': batch, 'steps': steps, 'error': lines[-1][:400]}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def sweep_gammas(points: int) -> list[float]:
  """The benchmark's grid of DDN's gamma: ``points`` values evenly from 0.02 to 0.2."""
  return [float(g) for g in np.linspace(0.02, 0.2, points)]


def sweep_section(logits_fn, x, y, points: int, steps: int, rounds: int) -> dict[str, Any]:
  """G values of DDN's gamma: one vmapped program, `evaluation.sweep`, and G separate runs.

  The vmapped program is ``jax.vmap`` of `attacks.ddn` over gamma inside one ``jit`` (what
  `ddn_jax.evaluation.sweep` runs); ``sweep`` itself is timed end to end as well (its input
  checks and per-point validation included). The separate runs reuse one compiled DDN (gamma is
  traced).
  """
  gammas = sweep_gammas(points)
  grid = jnp.asarray(gammas)
  vmapped = jax.jit(
    jax.vmap(lambda f, g: attacks.ddn(f, x, y, gamma=g, steps=steps).l2, in_axes=(None, 0))
  )
  start = time.perf_counter()
  vmapped = vmapped.lower(logits_fn, grid).compile()
  runs = {'vmapped': lambda: vmapped(logits_fn, grid)}
  compile_s = {'vmapped': time.perf_counter() - start}
  single = jax.jit(lambda f, x, y, g: attacks.ddn(f, x, y, gamma=g, steps=steps))
  start = time.perf_counter()
  compiled = single.lower(logits_fn, x, y, jnp.float32(0.05)).compile()
  compile_s['separate'] = time.perf_counter() - start

  def run_separate():
    for g in gammas:
      jax.block_until_ready(compiled(logits_fn, x, y, jnp.float32(g)))

  runs['separate'] = run_separate
  grid_args = {'grid': {'gamma': gammas}, 'static': {'steps': [steps]}}
  runs['evaluation_sweep'] = lambda: evaluation.sweep(attacks.ddn, logits_fn, x, y, **grid_args)
  start = time.perf_counter()
  runs['evaluation_sweep']()
  compile_s['evaluation_sweep'] = time.perf_counter() - start  # First call, run included.
  for run in runs.values():
    _timing.timed(run)
  times = {k: [] for k in runs}
  for _ in range(rounds):
    for k, run in runs.items():
      times[k].append(_timing.timed(run))
  ratio = lambda a, b: statistics.median(p / q for p, q in zip(times[a], times[b]))
  return {
    'points': points,
    'batch': len(x),
    'steps': steps,
    **{f'{k}_s': statistics.median(v) for k, v in times.items()},
    'compile_s': compile_s,
    'separate_over_vmapped': ratio('separate', 'vmapped'),
    'evaluation_sweep_over_vmapped': ratio('evaluation_sweep', 'vmapped'),
  }
