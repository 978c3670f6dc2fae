"""Data parallelism over one mesh axis, ``'data'``: the mesh, replicated trees, sharded batches.

Shared by training (data-parallel steps) and evaluation (attacks run per device inside
``jax.shard_map`` islands).
"""

from ddn_jax.sharding._mesh import (
  DATA_AXIS,
  check_batch_size,
  check_mesh,
  data_devices,
  data_mesh,
  replicate,
  shard_batch,
)

__all__ = (
  'DATA_AXIS',
  'check_batch_size',
  'check_mesh',
  'data_devices',
  'data_mesh',
  'replicate',
  'shard_batch',
)
