"""Running per-example code over a batch: ``vmap``, per-device islands, and a while loop that
stops running the examples that have finished."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp


def map_examples(
  fn: Callable[..., Any],
  batched: tuple[Any, ...],
  shared: tuple[Any, ...],
) -> Any:
  """``vmap``s the per-example ``fn(*batched, *shared)`` over the leading axis of ``batched``.

  Runs per device as `map_batches` does.
  """
  in_axes = (0,) * len(batched) + (None,) * len(shared)
  return map_batches(jax.vmap(fn, in_axes=in_axes), batched, shared)


def map_batches(
  mapped: Callable[..., Any],
  batched: tuple[Any, ...],
  shared: tuple[Any, ...],
) -> Any:
  """Runs ``mapped(*batched, *shared)``, a function of a batch whose examples are independent.

  When the batch is sharded along a mesh axis under explicit sharding (a mesh from
  ``jax.make_mesh``), ``mapped`` runs per device inside ``jax.shard_map``, on each device's
  slice, with no communication; ``shared`` (model parameters, hyperparameters) is replicated.
  Per-example values such as PRNG keys are made for the whole batch before, so the result does
  not depend on the number of devices. Otherwise ``jit`` partitions ``mapped`` as it sees fit.
  """
  sharding = jax.typeof(batched[0]).sharding
  axis = sharding.spec[0] if sharding.spec else None
  if axis is None:
    return mapped(*batched, *shared)
  mesh, spec = sharding.mesh, jax.sharding.PartitionSpec
  batched = tuple(
    jax.tree.map(
      lambda a: jax.sharding.reshard(
        a, jax.sharding.NamedSharding(mesh, spec(axis, *([None] * (a.ndim - 1))))
      ),
      b,
    )
    for b in batched
  )
  shared = jax.tree.map(
    lambda a: jax.sharding.reshard(a, jax.sharding.NamedSharding(mesh, spec())), shared
  )
  # Per-example code never communicates; its loop carries start replicated (constants) and
  # become per-device, which the varying-axes type check would otherwise reject.
  return jax.shard_map(
    mapped,
    mesh=mesh,
    in_specs=(spec(axis),) * len(batched) + (spec(),) * len(shared),
    out_specs=spec(axis),
    check_vma=False,
  )(*batched, *shared)


def compacting_while_loop(
  cond_fun: Callable[[Any], jax.Array],
  body_fun: Callable[[Any], Any],
  state: Any,
  *,
  shrink: int = 4,
  stages: int = 3,
  min_size: int = 4,
) -> Any:
  """The vmapped ``lax.while_loop`` of independent examples, without running finished ones.

  Under ``vmap`` a while loop runs every row until the last example finishes, finished rows
  frozen by a select: a few slow examples cost the whole batch. Here, once at most ``N / shrink``
  rows still run, those rows are gathered into a batch of that size and the loop goes on there,
  for up to ``stages`` batch sizes (none below ``min_size``); rows are scattered back at the end.
  Each size is one more copy of the body in the program (compile time grows with ``stages``).
  Row by row the result is the vmapped loop's.

  Args:
    cond_fun: batched state -> ``(N,)`` bool, the rows still running.
    body_fun: batched state -> batched state, one step of every row (rows that are not running
      are restored here afterwards).
    state: pytree of arrays with a leading batch axis ``N``.
    shrink: factor between consecutive batch sizes.
    stages: maximum number of batch sizes, ``N`` included.
    min_size: smallest batch size to gather into.

  Returns:
    The final state, rows in their original order.
  """
  sizes = [jax.tree.leaves(state)[0].shape[0]]
  while len(sizes) < stages and sizes[-1] // shrink >= min_size:
    sizes.append(sizes[-1] // shrink)

  def step(rows):
    running = cond_fun(rows)
    restore = lambda new, old: jnp.where(running.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    return jax.tree.map(restore, body_fun(rows), rows)

  index = None  # Rows of ``state`` in the current batch (None: all of them, in order).
  for next_size in sizes[1:] + [0]:
    rows = state if index is None else jax.tree.map(lambda a, i=index: a[i], state)
    more = lambda r, n=next_size: jnp.sum(cond_fun(r)) > n
    rows = jax.lax.while_loop(more, step, rows)
    if index is None:
      state = rows
    else:
      scatter = lambda a, r, i=index: a.at[i].set(r, unique_indices=True)
      state = jax.tree.map(scatter, state, rows)
    if next_size:
      # The running rows first (at most next_size of them), then finished ones as padding.
      order = jnp.argsort(~cond_fun(rows), stable=True)[:next_size]
      index = order if index is None else index[order]
  return state
