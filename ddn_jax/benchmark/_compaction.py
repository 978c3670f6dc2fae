"""The compaction section: early-stopping attacks with and without dropping finished examples.

DeepFool and C&W with its per-example abort run their loop in
`ddn_jax.attacks.compacting_while_loop`, which goes on with the examples still running in a
smaller batch. The reference is the plain vmapped loop, which runs every row until the last
example stops: ``jax.vmap`` of the same attack called on one example at a time (a batch of one
has no rows to drop, and ``vmap`` turns its loop into one loop over the whole batch). Both are
compiled ahead of time and timed alternately on the same images; they must find the same points
with the same gradient counts (row by row, up to the rounding of other batch sizes).
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks


def plain_loop(attack: attacks.Attack):
  """``attack`` as the plain vmapped loop: every row runs until the last example stops."""

  def run(logits_fn, x, y):
    one = lambda x, y: attack(logits_fn, x[None], y[None])
    return jax.tree.map(lambda a: a[:, 0], jax.vmap(one)(x, y))

  return run


def compaction_row(attack: attacks.Attack, logits_fn, x, y, repeats: int) -> dict[str, Any]:
  """The attack as called (compacting) against `plain_loop`, ``repeats`` alternating rounds."""
  programs = {'plain': plain_loop(attack), 'compacting': lambda f, x, y: attack(f, x, y)}
  compiled, compile_s = {}, {}
  for name, program in programs.items():
    start = time.perf_counter()
    compiled[name] = jax.jit(program).lower(logits_fn, x, y).compile()
    compile_s[name] = time.perf_counter() - start
  results, times = {}, {name: [] for name in programs}
  for round_ in range(repeats + 1):  # The first round is a warm-up.
    for name, program in compiled.items():
      start = time.perf_counter()
      results[name] = jax.block_until_ready(program(logits_fn, x, y))
      if round_:
        times[name].append(time.perf_counter() - start)
  plain, compacting = results['plain'], results['compacting']
  grads = np.asarray(compacting.num_grads)
  # Batches of other sizes round differently: an example near a boundary may take another step.
  same = np.asarray(plain.num_grads) == grads
  difference = np.abs(np.asarray(plain.adv) - np.asarray(compacting.adv))[same]
  return {
    'attack': attack.label,
    'spec': attack.spec,
    'hparams': dict(attack.settings),
    'batch': len(x),
    'plain_s': statistics.median(times['plain']),
    'compacting_s': statistics.median(times['compacting']),
    'speedup': statistics.median(a / b for a, b in zip(times['plain'], times['compacting'])),
    'plain_compile_s': compile_s['plain'],
    'compacting_compile_s': compile_s['compacting'],
    'grads_mean': float(grads.mean()),
    'grads_max': int(grads.max()),
    'same_num_grads': float(same.mean()),
    'max_adv_difference': float(difference.max()) if same.any() else None,
  }
