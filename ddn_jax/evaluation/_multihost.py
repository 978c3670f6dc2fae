"""Evaluation under ``jax.distributed``: each process places only its rows of a batch on its
devices, and every process gets the whole per-example result back."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np
from jax.experimental import multihost_utils


def is_chief() -> bool:
  """Whether this process writes the files of a run (process 0; the only one without
  ``jax.distributed``)."""
  return jax.process_index() == 0


def sync(name: str) -> None:
  """Waits until every process gets here (a no-op with one process)."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


def local_positions(sharding: jax.sharding.Sharding, size: int) -> np.ndarray:
  """The rows of a ``(size, ...)`` array that ``sharding`` places on this process's devices,
  in increasing order (each once, even where a row is on several local devices)."""
  index_map = sharding.addressable_devices_indices_map((size,))
  positions = np.arange(size)
  return np.unique(np.concatenate([positions[index[0]] for index in index_map.values()]))


def put_rows(
  read: Callable[[np.ndarray], np.ndarray],
  size: int,
  item_shape: tuple[int, ...],
  sharding: jax.sharding.Sharding,
) -> jax.Array:
  """A global ``(size, *item_shape)`` array with ``sharding`` whose row ``i`` is
  ``read(np.array([i]))[0]``: each device's rows are read by the process that holds it, so a
  process reads (e.g. from a memory-mapped file) only the rows of its own devices."""
  positions = np.arange(size)
  return jax.make_array_from_callback(
    (size, *item_shape), sharding, lambda index: read(positions[index[0]])
  )


def to_host(array: jax.Array) -> np.ndarray:
  """The whole value of ``array`` as NumPy on every process (an all-gather where the array
  spans several processes' devices)."""
  if isinstance(array, jax.Array) and not array.is_fully_addressable:
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))
  return np.asarray(jax.device_get(array))


def gather_rows(local: np.ndarray, positions: np.ndarray, size: int) -> np.ndarray:
  """Every process's rows of a ``(size, ...)`` host array, given ``local[k]`` is row
  ``positions[k]`` on this process; exact for any dtype (bytes travel, so float64 is not
  narrowed as JAX would without x64). Every process must have as many local devices.
  """
  local = np.asarray(local)
  if len(positions) == size:  # one process, or a batch not split over processes
    out = np.empty((size, *local.shape[1:]), local.dtype)
    out[positions] = local
    return out
  # Every process sends ``size`` rows (its own, then padding marked by position -1).
  row_bytes = local.dtype.itemsize * int(np.prod(local.shape[1:], dtype=int))
  data = np.zeros((size, row_bytes), np.uint8)
  data[: len(local)] = np.ascontiguousarray(local).view(np.uint8).reshape(len(local), row_bytes)
  where = np.full(size, -1, np.int32)
  where[: len(positions)] = positions
  data, where = multihost_utils.process_allgather((data, where), tiled=True)
  kept = where >= 0
  out = np.empty((size, row_bytes), np.uint8)
  out[where[kept]] = data[kept]
  return out.view(local.dtype).reshape(size, *local.shape[1:])
