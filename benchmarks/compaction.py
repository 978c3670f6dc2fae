"""Compacting loops: DeepFool and C&W (per-example abort) with and without dropping finished rows.

  python -m benchmarks.compaction [--batches 16,256] [--repeats 3] [--out benchmarks/results]

``attacks.compacting_while_loop`` continues the few examples still running in a smaller batch;
with ``stages=1`` it is the plain vmapped while loop that runs every row until the last example
finishes. Both variants are compiled ahead of time and timed alternately on the same images
(SmallCNN trained briefly, as in `benchmarks.run`); they must return the same points.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import statistics
import time
from unittest import mock

import jax
import numpy as np

from benchmarks import run as bench
from ddn_jax import attacks
from ddn_jax.attacks import _mapping

ATTACKS = {
  'DeepFool-100': functools.partial(attacks.deepfool, steps=100),
  'C&W 1×100 (per-example abort)': functools.partial(
    attacks.carlini_wagner_l2,
    binary_search_steps=1,
    max_iterations=100,
    learning_rate=0.1,
    initial_const=1.0,
  ),
  'C&W 9×1000 (per-example abort)': functools.partial(
    attacks.carlini_wagner_l2, binary_search_steps=9, max_iterations=1000
  ),
  'C&W 5×200 (per-example abort)': functools.partial(
    attacks.carlini_wagner_l2,
    binary_search_steps=5,
    max_iterations=200,
    learning_rate=0.01,
    initial_const=0.1,
  ),
}


def compile_variant(attack, logits_fn, x, y, *, compact: bool):
  stages = {} if compact else {'stages': 1}
  loop = functools.partial(_mapping.compacting_while_loop, **stages)
  jax.clear_caches()  # The attacks' inner jits would otherwise reuse the other variant's trace.
  with mock.patch.object(_mapping, 'compacting_while_loop', loop):
    start = time.perf_counter()
    compiled = jax.jit(lambda f, x, y: attack(f, x, y)).lower(logits_fn, x, y).compile()
    return compiled, time.perf_counter() - start


def measure(name, attack, logits_fn, x, y, repeats) -> dict:
  variants = {}
  for compact in (False, True):
    variants[compact] = compile_variant(attack, logits_fn, x, y, compact=compact)
  results, times = {}, {False: [], True: []}
  for round_ in range(repeats + 1):
    for compact, (compiled, _) in variants.items():
      start = time.perf_counter()
      results[compact] = jax.block_until_ready(compiled(logits_fn, x, y))
      if round_:
        times[compact].append(time.perf_counter() - start)
  plain, compacted = results[False], results[True]
  grads = np.asarray(compacted.num_grads)
  return {
    'attack': name,
    'batch': len(x),
    'plain_s': statistics.median(times[False]),
    'compacting_s': statistics.median(times[True]),
    'speedup': statistics.median(a / b for a, b in zip(times[False], times[True])),
    'plain_compile_s': variants[False][1],
    'compacting_compile_s': variants[True][1],
    'grads_mean': float(grads.mean()),
    'grads_max': int(grads.max()),
    'same_num_grads': bool((np.asarray(plain.num_grads) == grads).all()),
    'max_adv_difference': float(np.abs(np.asarray(plain.adv) - np.asarray(compacted.adv)).max()),
  }


def to_markdown(result: dict) -> str:
  m = result['machine']
  lines = [
    f'# Compacting loops: {result["tag"]}',
    '',
    (
      f'`{result["command"]}`, {result["date"]}. {m["cpu"]}, {m.get("logical_cpus", m.get("cores"))} cores, JAX backend '
      f'`{m["backend"]}` ({m["device"]}), allocator {m["allocator"]}, jax '
      f'{m["versions"]["jax"]}. SmallCNN: {result["weights"]}; images: {result["images"]}.'
    ),
    '',
    (
      f'Median of {result["repeats"]} alternating rounds after a warm-up. *Plain*: the vmapped '
      'while loop (every row runs until the last example stops); *compacting*: '
      '`attacks.compacting_while_loop` (batch sizes N, N/4, N/16).'
    ),
    '',
    (
      '| attack | batch | grads / example (mean, max) | plain (s) | compacting (s) | speed-up | '
      'compile plain / compacting (s) | same grads | max point difference |'
    ),
    '|---|---:|---:|---:|---:|---:|---:|---|---:|',
  ]
  for r in result['rows']:
    lines.append(
      f'| {r["attack"]} | {r["batch"]} | {r["grads_mean"]:.1f}, {r["grads_max"]} | '
      f'{r["plain_s"]:.3f} | {r["compacting_s"]:.3f} | **{r["speedup"]:.2f}×** | '
      f'{r["plain_compile_s"]:.1f} / {r["compacting_compile_s"]:.1f} | {r["same_num_grads"]} | '
      f'{r["max_adv_difference"]:.1e} |'
    )
  return '\n'.join(lines) + '\n'


def main(argv=None) -> dict:
  parser = argparse.ArgumentParser(prog='python -m benchmarks.compaction', description=__doc__)
  parser.add_argument('--batches', default='16,256', help='comma list of batch sizes')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--attacks', help=f'comma list among {list(ATTACKS)} (default all)')
  parser.add_argument('--train-steps', type=int, default=200)
  parser.add_argument('--out', default='benchmarks/results')
  args = parser.parse_args(argv)
  machine = bench.machine_info()
  _, _, logits_fn, weights = bench.make_model('small_cnn', args.train_steps)
  names = args.attacks.split(',') if args.attacks else list(ATTACKS)
  rows = []
  for batch in (int(b) for b in args.batches.split(',')):
    x, images = bench.load_images('small_cnn', batch)
    y = np.asarray(jax.jit(logits_fn)(x).argmax(-1), np.int32)
    for name in names:
      print(f'[compaction] {name}, batch {batch}', flush=True)
      rows.append(measure(name, ATTACKS[name], logits_fn, x, y, args.repeats))
  tag = f'compaction-{bench.machine_tag(machine)}'
  result = {
    'command': 'python -m benchmarks.compaction ' + ' '.join(argv or []),
    'date': time.strftime('%Y-%m-%d %H:%M %Z'),
    'machine': machine,
    'tag': tag,
    'weights': weights,
    'images': images,
    'repeats': args.repeats,
    'rows': rows,
  }
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  (out / f'{tag}.json').write_text(json.dumps(result, indent=2) + '\n')
  (out / f'{tag}.md').write_text(to_markdown(result))
  print(to_markdown(result))
  return result


if __name__ == '__main__':
  main()
