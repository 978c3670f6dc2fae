"""Data parallelism: a 'data' mesh axis, replicated trees and batches sharded along it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

DATA_AXIS = 'data'


def data_mesh(devices: Sequence[jax.Device] | None = None) -> jax.sharding.Mesh:
  """A one-axis mesh ``'data'`` over ``devices`` (default: all devices of all processes).

  The axis is explicit (`jax.sharding.AxisType.Explicit`), so arrays carry their sharding in
  their type; the attacks read it to run per device inside ``jax.shard_map``.
  """
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh(
    (len(devices),), (DATA_AXIS,), axis_types=(jax.sharding.AxisType.Explicit,), devices=devices
  )


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
  """Places every array of ``tree`` (e.g. a `TrainState`) on all devices of ``mesh``.

  With a mesh over several processes, each process passes the same ``tree`` (e.g. read from the
  same checkpoint) and places its own copy on its own devices.
  """
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  if sharding.is_fully_addressable:
    return jax.device_put(tree, sharding)

  # device_put refuses an array committed to one of this process's devices for a sharding over
  # other processes' devices too; a global array made from each process's copy is what it means.
  def put(leaf):
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
      return jax.random.wrap_key_data(
        put(jax.random.key_data(leaf)), impl=jax.random.key_impl(leaf)
      )
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
      return jax.device_put(leaf, sharding)  # already global: a reshard
    host = np.asarray(jax.device_get(leaf))
    return jax.make_array_from_process_local_data(sharding, host, host.shape)

  return jax.tree.map(put, tree)


def shard_batch(batch: Mapping[str, np.ndarray], mesh: jax.sharding.Mesh) -> dict[str, jax.Array]:
  """Builds global arrays split along the mesh's ``'data'`` axis from this process's examples.

  With several processes, each passes its own share of the global batch, e.g. from
  ``ddn_jax.data.batches(..., process_index=jax.process_index(),
  process_count=jax.process_count())``; the global batch is their concatenation in process
  order.

  Args:
    batch: ``{"image": (b, H, W, C), "label": (b,)}``, this process's ``b`` examples.
    mesh: a mesh with a ``'data'`` axis, e.g. from `data_mesh`.

  Returns:
    The same keys as global arrays of ``b * jax.process_count()`` examples.

  Raises:
    ValueError: the global batch is not a multiple of the size of the ``'data'`` axis.
  """
  sizes = {k: len(v) for k, v in batch.items()}
  if len(set(sizes.values())) != 1:
    raise ValueError(f'The arrays of a batch must have the same length, got {sizes}.')
  global_size = len(batch['label']) * jax.process_count()
  check_batch_size(global_size, mesh)
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))
  return {
    k: jax.make_array_from_process_local_data(sharding, np.asarray(v), (global_size, *v.shape[1:]))
    for k, v in batch.items()
  }


def check_batch_size(batch_size: int, mesh: jax.sharding.Mesh) -> None:
  """Raises a ValueError naming both numbers if a global batch does not split over the mesh."""
  num_shards = mesh.shape[DATA_AXIS]
  if batch_size % num_shards:
    raise ValueError(
      f'A global batch of {batch_size} examples does not split evenly over the {num_shards} '
      f'devices of mesh axis {DATA_AXIS!r}; use a batch size that is a multiple of {num_shards}.'
    )


def data_devices(mesh: jax.sharding.Mesh | None) -> int:
  """The number of devices a batch is split over (1 without a mesh); checks the ``'data'`` axis."""
  if mesh is None:
    return 1
  if DATA_AXIS not in mesh.axis_names:
    raise ValueError(
      f'The mesh must have a {DATA_AXIS!r} axis to shard batches over, got axes '
      f'{mesh.axis_names}; use ddn_jax.sharding.data_mesh().'
    )
  return mesh.shape[DATA_AXIS]


def check_mesh(mesh: jax.sharding.Mesh | None, batch_size: int) -> int:
  """`data_devices`, and raises if ``batch_size`` does not split over them."""
  num_devices = data_devices(mesh)
  if mesh is not None:
    check_batch_size(batch_size, mesh)
  return num_devices
