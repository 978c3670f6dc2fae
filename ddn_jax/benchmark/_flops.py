"""How far from the hardware: model FLOPs (XLA's cost analysis), the device's peak, FLOP/s rates.

A model's cost is counted once per image for a forward pass and for an input gradient (the
value-and-grad of the summed cross-entropy w.r.t. the input, what an attack computes each step),
from XLA's cost analysis of the compiled programs. The peak comes from `PEAKS` (vendors' dense
figures) for a known accelerator, else it is measured with a large matrix product on the device,
all cores included. `add_flop_rates` turns every timed row of a benchmark result into achieved
FLOP/s and the fraction of that peak.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

import jax
import jax.numpy as jnp

from ddn_jax.benchmark import _timing

PRECISIONS = ('float32', 'tf32', 'bfloat16')

# Dense peaks (FLOP/s, no 2:4 sparsity) per compute precision, matched on JAX's device kind.
# Sources: NVIDIA H100 Tensor Core GPU datasheet, SXM column (FP32 67 TFLOPS; TF32 989 and BF16
# 1979 TFLOPS "with sparsity", halved for dense; the exact figures 66.9 / 494.7 / 989.4 are the
# Hopper architecture whitepaper's); NVIDIA H200 datasheet (the same figures as H100 SXM for the
# H200 SXM; the H200 NVL is lower and not listed here); NVIDIA A100 datasheet (FP32 19.5, TF32
# 156, BF16 312 TFLOPS dense, SXM and PCIe alike); Google Cloud TPU documentation, "TPU v4" (275
# TFLOPS bf16 per chip) and "TPU v5e" (197 TFLOPS bf16 per chip). The H100 PCIe and NVL, V100
# and L4 are left out: their figures were not found in a vendor's document, so they are measured.
PEAKS: tuple[tuple[str, str, dict[str, float]], ...] = (
  (
    r'H100.*(HBM3|SXM)',
    'NVIDIA H100 SXM',
    {'float32': 66.9e12, 'tf32': 494.7e12, 'bfloat16': 989.4e12},
  ),
  (
    r'H200(?!.*NVL)',
    'NVIDIA H200 SXM',
    {'float32': 66.9e12, 'tf32': 494.7e12, 'bfloat16': 989.4e12},
  ),
  (r'A100', 'NVIDIA A100', {'float32': 19.5e12, 'tf32': 156e12, 'bfloat16': 312e12}),
  (r'TPU v4', 'Google TPU v4', {'bfloat16': 275e12}),
  (r'TPU v5 ?(lite|e\b)', 'Google TPU v5e', {'bfloat16': 197e12}),
)


def _flops(compiled) -> float:
  analysis = compiled.cost_analysis()
  if isinstance(analysis, list | tuple):  # One dict per program in older JAX versions.
    analysis = analysis[0]
  return float(analysis['flops'])


def model_flops(logits_fn, input_shape, *, batch: int = 2) -> dict[str, Any]:
  """FLOPs per image of one forward pass and of one input gradient, by XLA's cost analysis.

  Args:
    logits_fn: maps ``(N, *input_shape)`` images to ``(N, num_classes)`` logits.
    input_shape: one image's shape, e.g. ``(28, 28, 1)``.
    batch: the batch compiled; the counts are per image (batch total / ``batch``).

  The weights are constants of ``logits_fn``, which XLA may fold: the zero biases of a fresh
  initialisation drop out of the count (0.25% of SmallCNN's forward pass).

  Returns:
    ``{'forward': F, 'input_gradient': G, 'num_classes': C, 'method': ...}``: ``G`` is the
    value-and-grad of the summed cross-entropy w.r.t. the input (forward and backward, no weight
    gradients), about ``2 F`` for convolutional networks (one transposed product per layer).
  """
  x = jnp.zeros((batch, *input_shape), jnp.float32)
  y = jnp.zeros((batch,), jnp.int32)
  forward = _flops(jax.jit(logits_fn).lower(x).compile())
  gradient = _flops(jax.jit(_timing.bare_gradient(logits_fn)).lower(x, y).compile())
  return {
    'forward': forward / batch,
    'input_gradient': gradient / batch,
    'num_classes': jax.eval_shape(logits_fn, x).shape[-1],
    'method': f'XLA cost analysis of the compiled programs (jax {jax.__version__}, batch {batch})',
  }


def compute_precision(precision: str, backend: str, matmul_precision: str | None) -> str:
  """The precision the matrix units run at for a run in ``precision`` (its data type).

  float32 products run at TF32 on a GPU and in bfloat16 passes on a TPU unless
  ``jax_default_matmul_precision`` asks for more; on a CPU they are float32.
  """
  if precision != 'float32' or backend == 'cpu' or matmul_precision in ('highest', 'float32'):
    return precision
  return 'tf32' if backend == 'gpu' else 'bfloat16'


def table_peak(device_kind: str, precision: str) -> tuple[float, str] | None:
  """``(FLOP/s, name)`` from `PEAKS` for a device kind and compute precision, or None."""
  for pattern, name, peaks in PEAKS:
    if re.search(pattern, device_kind) and precision in peaks:
      return peaks[precision], name
  return None


def measure_peak(precision: str = 'float32', *, size: int | None = None, repeats: int = 10):
  """The peak FLOP/s of the default device, measured with jitted ``size``² matrix products.

  A product counts ``2 size³`` FLOPs; the best of ``repeats`` is kept. On a CPU, XLA runs it on
  all cores (one under ``--xla_cpu_multi_thread_eigen=false``) and the rate is per CPU second of
  the process times the logical cores: what all the cores reach while the process has them, so
  other processes on a shared machine (which stretch the wall time) do not lower it. Elsewhere
  it is per wall second.

  Returns:
    ``(FLOP/s, description)``.
  """
  if precision not in PRECISIONS:
    raise ValueError(f'unknown precision {precision!r}; expected one of {PRECISIONS}')
  backend = jax.default_backend()
  size = size or (1024 if backend == 'cpu' else 8192)
  dtype = jnp.bfloat16 if precision == 'bfloat16' else jnp.float32
  dot_precision = {'float32': 'highest', 'tf32': 'tensorfloat32', 'bfloat16': None}[precision]
  a, b = jax.random.normal(jax.random.key(0), (2, size, size), dtype)
  matmul = jax.jit(lambda a, b: jnp.matmul(a, b, precision=dot_precision)).lower(a, b).compile()
  jax.block_until_ready(matmul(a, b))
  times = [_timing.timed_both(lambda: matmul(a, b)) for _ in range(repeats)]
  flops, cores = 2 * size**3, os.cpu_count() or 1
  wall = flops / min(w for w, _ in times)
  where = f'{jax.devices()[0].device_kind} ({backend})'
  how = f'best of {repeats} jitted {size}×{size} {precision} matrix products (2·{size}³ FLOPs each)'
  when = time.strftime('%Y-%m-%d %H:%M %Z')
  if backend != 'cpu':
    return wall, f'measured: {how} on {where}, per wall second, {when}'
  peak = cores * flops / min(c for _, c in times)
  return peak, (
    f'measured: {how} on all {cores} logical cores, per CPU second of the process × {cores} '
    f'(robust to other load; per wall second: {wall / 1e9:.3g} GFLOP/s), {when}'
  )


def device_peak(
  precision: str = 'float32',
  *,
  device_kind: str | None = None,
  backend: str | None = None,
  matmul_precision: str | None = None,
  measure: bool = True,
) -> dict[str, Any]:
  """The peak FLOP/s a run in ``precision`` is compared with: the table's, else measured.

  Args:
    precision: the run's data type, among `PRECISIONS`.
    device_kind, backend, matmul_precision: the device's kind, the JAX backend and
      ``jax_default_matmul_precision`` (default: this process's first device and settings).
    measure: measure the peak (`measure_peak`, on this process's device) when the table has no
      figure; False leaves it unknown (None), e.g. for a result recorded on another machine.

  Returns:
    ``{'precision', 'compute_precision', 'device', 'flops_per_s', 'source'}``.
  """
  if precision not in PRECISIONS:
    raise ValueError(f'unknown precision {precision!r}; expected one of {PRECISIONS}')
  device_kind = device_kind or jax.devices()[0].device_kind
  backend = backend or jax.default_backend()
  if matmul_precision is None and device_kind == jax.devices()[0].device_kind:
    matmul_precision = jax.config.jax_default_matmul_precision
  compute = compute_precision(precision, backend, matmul_precision)
  out = {'precision': precision, 'compute_precision': compute, 'device': device_kind}
  found = table_peak(device_kind, compute)
  if found:
    peak, name = found
    source = f"table: {name}, {compute} dense peak (the vendor's figure, `ddn_jax.benchmark.PEAKS`)"
  elif measure:
    peak, source = measure_peak(compute)
  else:
    peak, source = None, f'unknown: no {compute} figure for {device_kind} and not measured'
  return {**out, 'flops_per_s': peak, 'source': source}


def _rate(flops: float, seconds: float | None, peak: float | None) -> dict[str, float | None]:
  if not seconds:
    return {'flops_per_s': None, 'fraction_of_peak': None}
  rate = flops / seconds
  return {'flops_per_s': rate, 'fraction_of_peak': rate / peak if peak else None}


def gradient_flops(row: dict[str, Any], impl: str, grads: float, cost: dict[str, Any]) -> float:
  """FLOPs per example of ``grads`` gradient evaluations as an implementation counts them.

  ``row`` is an attack or compaction row (its ``attack`` label and ``hparams``, as recorded).
  DeepFool in ddn_jax and adv-lib counts backward passes, ``candidates - 1`` of them sharing one
  forward pass per step; foolbox's count and every other attack's are whole input gradients.
  Forward passes outside the counted gradients (the final check) are not included.
  """
  forward, gradient = cost['forward'], cost['input_gradient']
  if row['attack'].startswith('DeepFool') and impl != 'foolbox':
    candidates = row.get('hparams', {}).get('candidates') or min(10, cost['num_classes'])
    return grads * ((gradient - forward) + forward / (candidates - 1))
  return grads * gradient


def add_flop_rates(result: dict[str, Any]) -> dict[str, Any]:
  """Adds achieved FLOP/s and the fraction of ``result['peak']`` to every timed row, in place.

  Needs ``result['model_flops']`` (`model_flops` per model name) and ``result['peak']``
  (`device_peak`). Gradient rows get ``flop_rates`` for each timed variant; attack rows, per
  implementation, ``flops_per_s`` and ``fraction_of_peak`` of the counted gradients (a lower
  bound: forwards outside them are not counted); scaling points, the sweep and compaction rows
  the same for their DDN runs, programs and loops.
  """
  costs, peak = result['model_flops'], result['peak']['flops_per_s']
  for g in result.get('gradient', []):
    flops = costs[g['model']]['input_gradient'] * g['batch']
    lone = min(g['jax_s'], g['jax_channels_last_s'])
    g['flop_rates'] = {
      'jax': _rate(flops, lone, peak),
      'jax_in_loop': _rate(flops, g.get('jax_in_loop_s'), peak),
      'torch': _rate(flops, g.get('torch_s'), peak),
    }
  for a in result.get('attacks', []):
    cost = costs[a['model']]
    a['bare_grad_in_loop'] = _rate(
      cost['input_gradient'] * a['batch'], a.get('bare_grad_in_loop_s'), peak
    )
    for impl, r in a['results'].items():
      flops = gradient_flops(a, impl, r['grads_per_example'], cost) * a['batch']
      r.update(_rate(flops, r['median_s'], peak))
  for section in ('scaling_batch', 'scaling_steps'):
    for s in result.get(section, []):
      if 'error' in s:
        continue
      per_grad = costs[s['model']]['input_gradient'] * s['batch']
      s['ddn'] = _rate(per_grad * s['steps'], s['ddn_s'], peak)
      s['bare_grad_in_loop'] = _rate(per_grad, s.get('bare_grad_in_loop_s'), peak)
  sweep = result.get('sweep', {'error': 'not run'})
  if 'error' not in sweep:
    flops = costs['small_cnn']['input_gradient'] * sweep['batch'] * sweep['steps'] * sweep['points']
    sweep['vmapped'] = _rate(flops, sweep['vmapped_s'], peak)
  for c in result.get('compaction', []):
    if 'error' in c:
      continue
    flops = gradient_flops(c, 'ddn_jax', c['grads_mean'], costs['small_cnn']) * c['batch']
    c['plain'] = _rate(flops, c['plain_s'], peak)
    c['compacting'] = _rate(flops, c['compacting_s'], peak)
  return result
