"""Seeded, resumable, process-sharded batches over in-memory arrays."""

from __future__ import annotations

from collections.abc import Iterator

import jax
import numpy as np


def steps_per_epoch(num_examples: int, batch_size: int, *, drop_remainder: bool = True) -> int:
  """Number of (global) batches in one epoch."""
  if drop_remainder:
    return num_examples // batch_size
  return -(-num_examples // batch_size)


def epoch_permutation(num_examples: int, *, seed: int, epoch: int) -> np.ndarray:
  """The example order of `epoch`; depends only on `(seed, epoch)`."""
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def batches(
  images: np.ndarray,
  labels: np.ndarray,
  *,
  batch_size: int,
  seed: int,
  start_step: int = 0,
  num_epochs: int | None = None,
  shuffle: bool = True,
  drop_remainder: bool = True,
  process_index: int | None = None,
  process_count: int | None = None,
) -> Iterator[dict[str, np.ndarray]]:
  """Yields this process's share of each global batch, epoch after epoch.

  Global step ``s`` is batch ``s % steps_per_epoch`` of epoch
  ``s // steps_per_epoch``, and each epoch is shuffled by a permutation that
  depends only on ``(seed, epoch)``. Hence the stream is a pure function of
  the step number: a run resumed with ``start_step`` equal to the number of
  steps already taken sees exactly the batches an uninterrupted run would,
  none repeated or skipped.

  Each global batch is split into ``process_count`` contiguous shards and
  process ``process_index`` gets shard ``process_index``.

  Args:
    images: array of shape (N, ...), e.g. uint8 (N, H, W, C).
    labels: array of shape (N,).
    batch_size: global batch size, over all processes.
    seed: shuffling seed.
    start_step: global step of the first batch to yield.
    num_epochs: stop after this many epochs (counted from step 0), or never
      when None.
    shuffle: if False every epoch is in the original order.
    drop_remainder: drop the last incomplete batch of each epoch; if False
      it is yielded (smaller).
    process_index: this process; default `jax.process_index()`.
    process_count: number of processes; default `jax.process_count()`.

  Yields:
    ``{"image": images[idx], "label": labels[idx]}`` with
    ``len(idx) == batch_size // process_count`` (less for a kept remainder).
  """
  num_examples = len(images)
  if len(labels) != num_examples:
    raise ValueError(f'{num_examples} images but {len(labels)} labels.')
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  if batch_size <= 0 or batch_size % process_count:
    raise ValueError(
      f'batch_size={batch_size} must be a positive multiple of process_count={process_count}.'
    )
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} not in [0, {process_count}).')
  num_steps = steps_per_epoch(num_examples, batch_size, drop_remainder=drop_remainder)
  if num_steps == 0:
    raise ValueError(f'{num_examples} examples make no batch of {batch_size}.')

  end_step = None if num_epochs is None else num_epochs * num_steps
  order, order_epoch = None, None
  step = start_step
  while end_step is None or step < end_step:
    epoch, index = divmod(step, num_steps)
    if epoch != order_epoch:
      order_epoch = epoch
      order = (
        epoch_permutation(num_examples, seed=seed, epoch=epoch)
        if shuffle
        else np.arange(num_examples)
      )
    global_indices = order[index * batch_size : (index + 1) * batch_size]
    local_indices = np.array_split(global_indices, process_count)[process_index]
    yield {'image': images[local_indices], 'label': labels[local_indices]}
    step += 1
