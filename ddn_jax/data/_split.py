"""The seeded split of a dataset into training and held-out examples: one rule for every caller."""

from __future__ import annotations

import numpy as np


def split_indices(
  size: int, *, seed: int, num_train: int = 0, num_held_out: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Training and held-out indices: the head and the tail of one seeded permutation.

  The training examples are the first ``num_train`` of ``np.random.default_rng(seed)
  .permutation(size)`` and the held-out ones its last ``num_held_out``, so the two never overlap
  while ``num_train + num_held_out <= size``, and a model trained on the head is evaluated on
  the tail. The reference MNIST split, ``ddn-jax train`` and ``evaluate``, and the experiments
  all split with it.

  Args:
    size: number of examples.
    seed: seed of the permutation.
    num_train: length of the head.
    num_held_out: length of the tail (None: every example after the head; capped at ``size``).

  Returns:
    ``(train, held_out)`` int64 index arrays, in the permutation's order.

  Raises:
    ValueError: ``num_train`` or ``num_held_out`` is negative, or ``num_train`` exceeds ``size``.
  """
  if num_train < 0 or (num_held_out is not None and num_held_out < 0) or num_train > size:
    raise ValueError(
      f'split_indices needs 0 <= num_train <= size and num_held_out >= 0, got size {size}, '
      f'num_train {num_train}, num_held_out {num_held_out}.'
    )
  order = np.random.default_rng(seed).permutation(size)
  tail = size - num_train if num_held_out is None else min(num_held_out, size)
  return order[:num_train], order[size - tail :]
