"""XLA:CPU vs PyTorch: forward+backward of the same network w.r.t. its input, and what changes it.

Each configuration runs in a fresh process (allocator settings and XLA flags are per process):

  python -m benchmarks.cpu_gap --batch 1000                  # one configuration, prints JSON
  python -m benchmarks.cpu_gap --all --out benchmarks/results/cpu_gap.json

Per call: wall time, process CPU time, of which kernel (system) time, and minor page faults;
medians over ``--calls`` calls after two warm-up calls, JAX and PyTorch alternating. The
findings are in ``benchmarks/CPU_GAP.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

JEMALLOC = '/usr/lib/x86_64-linux-gnu/libjemalloc.so.2'
# (label, extra environment, XLA compiler options, JAX variant)
CONFIGS = [
  ('glibc, defaults', {}, {}, 'plain'),
  ('glibc, channels-last convs', {}, {}, 'channels_last'),
  ('jemalloc', {'LD_PRELOAD': JEMALLOC}, {}, 'plain'),
  (
    'jemalloc, keep freed pages',
    {'LD_PRELOAD': JEMALLOC, 'MALLOC_CONF': 'dirty_decay_ms:-1,muzzy_decay_ms:-1'},
    {},
    'plain',
  ),
  (
    'glibc, no trim / mmap threshold 1 GiB',
    {'MALLOC_TRIM_THRESHOLD_': str(1 << 34), 'MALLOC_MMAP_THRESHOLD_': str(1 << 30)},
    {},
    'plain',
  ),
  ('xla_cpu_enable_fast_math', {}, {'xla_cpu_enable_fast_math': True}, 'plain'),
  ('xla_cpu_use_xnnpack=False', {}, {'xla_cpu_use_xnnpack': False}, 'plain'),
  ('xla_cpu_use_onednn=True', {}, {'xla_cpu_use_onednn': True}, 'plain'),
  ('xla_cpu_multi_thread_eigen=False', {}, {'xla_cpu_multi_thread_eigen': False}, 'plain'),
  ('jax.checkpoint around the model', {}, {}, 'remat'),
  ('logits only (forward)', {}, {}, 'forward'),
]


def _usage():
  r = resource.getrusage(resource.RUSAGE_SELF)
  return time.perf_counter(), r.ru_utime + r.ru_stime, r.ru_stime, r.ru_minflt


def _measure(fn):
  a = _usage()
  fn()
  b = _usage()
  return [y - x for x, y in zip(a, b)]


def one(model_name: str, batch: int, calls: int, options: dict, variant: str) -> dict:
  import jax
  import numpy as np
  import optax
  import torch

  from ddn_jax import interop, models
  from ddn_jax.attacks._canonical_conv import canonicalize_convolutions

  model = {'small_cnn': models.SmallCNN, 'cifar_cnn': models.CifarCNN}[model_name]()
  shape = (28, 28, 1) if model_name == 'small_cnn' else (32, 32, 3)
  x = np.random.default_rng(0).uniform(size=(batch, *shape)).astype(np.float32)
  y = np.zeros(batch, np.int32)
  variables = model.init(jax.random.key(0), x[:1])
  logits_fn = models.make_logits_fn(model, variables)
  ce = lambda f: lambda x, y: optax.softmax_cross_entropy_with_integer_labels(f(x), y).sum()
  if variant == 'forward':
    fn = ce(logits_fn)
  elif variant == 'remat':
    fn = jax.value_and_grad(ce(jax.checkpoint(logits_fn)))
  else:
    fn = jax.value_and_grad(ce(logits_fn))
  if variant == 'channels_last':
    fn = canonicalize_convolutions(fn)
  compiled = jax.jit(fn).lower(x, y).compile(compiler_options=options)
  run_jax = lambda: jax.block_until_ready(compiled(x, y))

  module = interop.to_torch(model, variables, input_shape=shape).eval()
  xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
  yt = torch.from_numpy(y.astype(np.int64))

  def run_torch():
    if variant == 'forward':
      with torch.no_grad():
        return torch.nn.functional.cross_entropy(module(xt), yt, reduction='sum')
    xx = xt.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(module(xx), yt, reduction='sum')
    return torch.autograd.grad(loss, xx)

  for _ in range(2):
    run_jax()
    run_torch()
  jax_rows, torch_rows = [], []
  for _ in range(calls):  # alternate, one call each
    jax_rows.append(_measure(run_jax))
    torch_rows.append(_measure(run_torch))
  med = lambda rows, i: statistics.median(r[i] for r in rows)
  out = {}
  for side, rows in (('jax', jax_rows), ('torch', torch_rows)):
    out[side] = {
      'wall_s': med(rows, 0),
      'cpu_s': med(rows, 1),
      'sys_s': med(rows, 2),
      'minor_faults': med(rows, 3),
    }
  out['jax_over_torch_wall'] = statistics.median(a[0] / b[0] for a, b in zip(jax_rows, torch_rows))
  out['jax_over_torch_cpu'] = statistics.median(a[1] / b[1] for a, b in zip(jax_rows, torch_rows))
  out['torch_threads'] = torch.get_num_threads()
  return out


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--model', default='small_cnn', choices=['small_cnn', 'cifar_cnn'])
  parser.add_argument('--batch', type=int, default=1000)
  parser.add_argument('--calls', type=int, default=5)
  parser.add_argument('--config', type=int, default=0, help='index into CONFIGS')
  parser.add_argument('--all', action='store_true', help='every config, each in a subprocess')
  parser.add_argument('--configs', default='', help='comma list of config indices (with --all)')
  parser.add_argument('--out', default='')
  args = parser.parse_args(argv)
  if not args.all:
    label, _, options, variant = CONFIGS[args.config]
    result = one(args.model, args.batch, args.calls, options, variant)
    print(json.dumps({'config': label, 'model': args.model, 'batch': args.batch, **result}))
    return
  indices = [int(i) for i in args.configs.split(',')] if args.configs else range(len(CONFIGS))
  results = []
  for i in indices:
    label, env, _, _ = CONFIGS[i]
    cmd = [sys.executable, '-m', 'benchmarks.cpu_gap', '--model', args.model]
    cmd += ['--batch', str(args.batch), '--calls', str(args.calls), '--config', str(i)]
    proc = subprocess.run(
      cmd, env={**os.environ, **env}, capture_output=True, text=True, check=False
    )
    if proc.returncode:
      results.append({'config': label, 'error': proc.stderr.strip().splitlines()[-1]})
    else:
      results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    r = results[-1]
    if 'error' in r:
      print(f'{label}: {r["error"]}', flush=True)
    else:
      j, t = r['jax'], r['torch']
      print(
        f'{label:40s} jax {j["wall_s"] * 1e3:7.1f} ms (cpu {j["cpu_s"] * 1e3:6.0f}, sys '
        f'{j["sys_s"] * 1e3:5.0f}, faults {j["minor_faults"]:7.0f}) | torch '
        f'{t["wall_s"] * 1e3:7.1f} ms (cpu {t["cpu_s"] * 1e3:6.0f}, sys {t["sys_s"] * 1e3:5.0f}, '
        f'faults {t["minor_faults"]:7.0f}) | jax/torch wall {r["jax_over_torch_wall"]:.2f} '
        f'cpu {r["jax_over_torch_cpu"]:.2f}',
        flush=True,
      )
  if args.out:
    with open(args.out, 'w') as f:
      json.dump(
        {'model': args.model, 'batch': args.batch, 'load': os.getloadavg(), 'results': results},
        f,
        indent=2,
      )


if __name__ == '__main__':
  main()
