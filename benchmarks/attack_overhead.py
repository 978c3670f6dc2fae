"""Attack overhead over the bare gradient: attack time / (gradient evaluations x one gradient).

An attack that takes K gradient steps can never beat K jitted forward+backward passes of the
same model on the same batch; this measures how close DDN-100 and C&W 1x100 get. Timings
alternate between the bare gradient and the attacks in one run, and the medians after a
warm-up call are reported; compile time (first call minus the median) is reported apart.

  python -m benchmarks.attack_overhead --batch 1000 --repeats 5

Writes ``benchmarks/results/attack_overhead-<machine>.json`` and prints a markdown table to
paste into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

import jax
import numpy as np
import optax

from ddn_jax import attacks, data, models
from ddn_jax.attacks._canonical_conv import canonicalize_convolutions


def _machine() -> dict[str, str]:
  cpu = platform.processor()
  try:
    with open('/proc/cpuinfo') as f:
      cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
  except (OSError, StopIteration):
    pass
  preload = os.environ.get('LD_PRELOAD', '')
  return {
    'cpu': cpu,
    'cores': str(os.cpu_count()),
    'devices': ', '.join(sorted({d.device_kind for d in jax.devices()})),
    'backend': jax.default_backend(),
    'jax': jax.__version__,
    'allocator': 'jemalloc' if 'jemalloc' in preload else 'glibc malloc',
  }


def _timed(fn) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
  parser.add_argument('--batch', type=int, default=1000, help='images per batch')
  parser.add_argument('--steps', type=int, default=100, help='gradient steps per attack')
  parser.add_argument('--repeats', type=int, default=5, help='timed repeats after warm-up')
  parser.add_argument('--out', default='benchmarks/results', help='directory for the JSON')
  args = parser.parse_args()

  # Real images: the first Fashion-MNIST test digits. Random weights: timing does not depend
  # on them, and the attacks below run a fixed number of steps.
  images, labels = data.load('fashion_mnist', 'test')
  x = images[: args.batch].astype(np.float32) / 255
  y = labels[: args.batch]
  model = models.SmallCNN()
  variables = model.init(jax.random.key(0), x[:1])
  logits_fn = models.make_logits_fn(model, variables)

  def value_and_grad(x, y):
    loss = lambda x: optax.softmax_cross_entropy_with_integer_labels(logits_fn(x), y).sum()
    return jax.value_and_grad(loss)(x)

  bare = jax.jit(value_and_grad)
  # The attacks re-emit convolutions channels-last (ddn_jax/attacks/_canonical_conv.py); the
  # same rewrite can speed up the bare gradient too, so the faster of the two is the reference.
  bare_channels_last = jax.jit(canonicalize_convolutions(value_and_grad))

  runs = {
    'bare value_and_grad': lambda: bare(x, y),
    'bare value_and_grad, channels-last convs': lambda: bare_channels_last(x, y),
    f'DDN-{args.steps}': lambda: attacks.ddn(logits_fn, x, y, steps=args.steps),
    # No early abort, so both attacks run exactly `steps` iterations for the whole batch.
    f'C&W 1x{args.steps}': lambda: attacks.carlini_wagner_l2(
      logits_fn,
      x,
      y,
      learning_rate=0.1,
      initial_const=1.0,
      binary_search_steps=1,
      max_iterations=args.steps,
      abort_early=False,
    ),
  }
  first = {name: _timed(fn) for name, fn in runs.items()}
  times = {name: [] for name in runs}
  for _ in range(args.repeats):  # Alternate, so machine noise hits every variant alike.
    for name, fn in runs.items():
      times[name].append(_timed(fn))
  median = {name: statistics.median(t) for name, t in times.items()}
  grad = min(median['bare value_and_grad'], median['bare value_and_grad, channels-last convs'])

  rows = []
  for name in runs:
    grads = 1 if name.startswith('bare') else args.steps
    rows.append(
      {
        'run': name,
        'median_s': median[name],
        'compile_s': first[name] - median[name],
        'gradients': grads,
        'overhead': median[name] / (grads * grad),
        's_per_1000_images': median[name] * 1000 / args.batch,
      }
    )
  machine = _machine()
  result = {
    'machine': machine,
    'batch': args.batch,
    'steps': args.steps,
    'repeats': args.repeats,
    'model': 'SmallCNN (C&W MNIST CNN), 28x28x1',
    'rows': rows,
  }
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  tag = f'{machine["backend"]}-{machine["cores"]}core'
  (out / f'attack_overhead-{tag}.json').write_text(json.dumps(result, indent=2) + '\n')

  print(
    f'{machine["cpu"]}, {machine["cores"]} cores, {machine["backend"]}, jax {machine["jax"]}, '
    f'{machine["allocator"]}; batch {args.batch}, median of {args.repeats}'
  )
  print('| run | median (s) | compile (s) | gradients | overhead vs fastest bare gradient |')
  print('|---|---|---|---|---|')
  for r in rows:
    print(
      f'| {r["run"]} | {r["median_s"]:.3f} | {r["compile_s"]:.2f} | {r["gradients"]} | '
      f'{r["overhead"]:.3f} |'
    )


if __name__ == '__main__':
  main()
