"""The checkpoints of `fit`: checksums and finiteness of their arrays, and reading the newest
usable one.

Orbax stores the arrays (zstd-compressed) without checksums, so a flipped byte changes values
without any error. Each checkpoint therefore records a CRC of every array in its ``progress``
item, and a checkpoint is used only if it reads back completely and its arrays match their CRCs
and are finite.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import warnings
import zlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp

CHECKPOINTS = 'checkpoints'
# Unusable checkpoints that `fit` moves out of its way (kept for inspection, never deleted).
SET_ASIDE = 'unusable_checkpoints'


def _key_name(key: Any) -> str:
  for attribute in ('key', 'idx', 'name'):
    if hasattr(key, attribute):
      return str(getattr(key, attribute))
  return str(key)


def _leaves(tree: Any) -> dict[str, Any]:
  """``{'a/b/0/c': leaf}``: the same names whether a node is a NamedTuple or tuple (as saved) or
  the dict or list orbax restores it as without a target."""
  flat = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {'/'.join(_key_name(k) for k in path): leaf for path, leaf in flat}


def _host_copy(x: Any) -> np.ndarray:
  # One device's copy: a replicated array of several processes is not fully addressable.
  return np.asarray(x.addressable_data(0) if isinstance(x, jax.Array) else x)


def inspect(arrays: Any) -> tuple[list[str], dict[str, int]]:
  """The names of the leaves of ``arrays`` with non-finite values, and each leaf's CRC-32.

  The CRC detects any change of up to 32 consecutive bits. Runs on the host, at about 1 GB/s:
  no compilation, and the copy is the one a checkpoint makes anyway.
  """
  non_finite, checksums = [], {}
  for name, leaf in _leaves(arrays).items():
    array = np.ascontiguousarray(_host_copy(leaf))
    if jnp.issubdtype(array.dtype, jnp.inexact) and not np.isfinite(array).all():
      non_finite.append(name)
    checksums[name] = zlib.crc32(array.reshape(-1).view(np.uint8))
  return non_finite, checksums


def few(names: Sequence[str], limit: int = 3) -> str:
  """``'a, b, c and 4 more'``."""
  shown = ', '.join(names[:limit])
  return shown + (f' and {len(names) - limit} more' if len(names) > limit else '')


def manager(directory: pathlib.Path, *, max_to_keep: int | None = None) -> ocp.CheckpointManager:
  """An orbax manager of the ``state`` and ``progress`` items of ``directory``'s step folders.

  With ``max_to_keep`` it saves and creates ``directory``; without, it only reads.
  """
  options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=max_to_keep is not None)
  return ocp.CheckpointManager(
    directory.absolute(),
    options=options,
    item_handlers={
      'state': ocp.StandardCheckpointHandler(),
      'progress': ocp.JsonCheckpointHandler(),
    },
  )


class Checkpoint(NamedTuple):
  """A checkpoint read back by `load_checkpoint`.

  Attributes:
    step: its training step.
    state: ``{"step", "params", "batch_stats", "opt_state", "rng"}`` arrays (the PRNG key as
      its raw uint32 data).
    progress: what `fit` needs to resume: ``{"history": per-epoch metrics rows, "sums": metric
      sums of the current epoch, ...}``.
  """

  step: int
  state: dict[str, Any]
  progress: dict[str, Any]


class _Unusable(Exception):
  """Why a checkpoint cannot be used; ``mismatch`` if it is intact but of another structure."""

  def __init__(self, reason: str, *, mismatch: bool = False):
    super().__init__(reason)
    self.mismatch = mismatch


def _first_line(error: BaseException) -> str:
  text = str(error).strip().split('\n')[0].split(' See full TensorStore details')[0]
  text = text if len(text) <= 200 else text[:200] + '...'
  return f'{type(error).__name__}: {text}' if text else type(error).__name__


def _structure(tree: Any) -> dict[str, tuple[tuple[int, ...], str]]:
  return {k: (tuple(v.shape), np.dtype(v.dtype).name) for k, v in _leaves(tree).items()}


def _read(mngr: ocp.CheckpointManager, step: int, target: Any | None) -> Checkpoint:
  """Reads and checks one checkpoint; raises `_Unusable` saying what is wrong with it."""
  folder = pathlib.Path(mngr.directory) / str(step)
  for item in ('state/_METADATA', 'progress/'):
    if not (folder / item).exists():
      raise _Unusable(f'{item} is missing')
  try:
    metadata = mngr.item_metadata(step)['state']
  except Exception as e:  # orbax and tensorstore raise anything, even a bare Exception
    raise _Unusable(f'cannot read state/_METADATA ({_first_line(e)})') from e
  if metadata is None:
    raise _Unusable('cannot read state/_METADATA')
  if target is not None:
    expected, found = _structure(target), _structure(getattr(metadata, 'tree', metadata))
    if expected != found:
      differences = [f'missing {k}' for k in expected if k not in found]
      differences += [f'unexpected {k}' for k in found if k not in expected]
      differences += [
        f'{k} is {found[k][1]}{list(found[k][0])}, expected {expected[k][1]}{list(expected[k][0])}'
        for k in expected
        if k in found and found[k] != expected[k]
      ]
      raise _Unusable(f'saved for another model or optimizer ({few(differences)})', mismatch=True)
  try:
    progress = mngr.restore(step, args=ocp.args.Composite(progress=ocp.args.JsonRestore())).progress
  except Exception as e:
    raise _Unusable(f'cannot read progress/ ({_first_line(e)})') from e
  if not isinstance(progress, dict) or not {'history', 'sums'} <= progress.keys():
    raise _Unusable('progress/ holds no training progress')
  if target is None:  # each process reads it onto its first device: the devices (and processes)
    # it was saved from need not exist here, and orbax refuses another topology without a target
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      getattr(metadata, 'tree', metadata),
    )
  restore = ocp.args.StandardRestore(target)
  try:
    state = mngr.restore(step, args=ocp.args.Composite(state=restore)).state
  except Exception as e:
    raise _Unusable(f'cannot read the arrays in state/ ({_first_line(e)})') from e
  non_finite, checksums = inspect(state)
  recorded = progress.get('checksums')  # absent from checkpoints of older versions
  if recorded is not None and not isinstance(recorded, dict):
    raise _Unusable('progress/ holds malformed checksums')
  if recorded is not None:
    changed = sorted(
      k for k in recorded.keys() | checksums.keys() if recorded.get(k) != checksums.get(k)
    )
    if changed:
      raise _Unusable(f'the arrays {few(changed)} do not match their checksums: damaged files')
  if non_finite:
    raise _Unusable(f'non-finite values in {few(non_finite)}')
  return Checkpoint(step, state, progress)


def newest_usable(
  mngr: ocp.CheckpointManager, *, target: Any | None = None, step: int | None = None
) -> tuple[Checkpoint, dict[int, str]]:
  """The newest usable checkpoint (or that of ``step``), and why each newer one is not.

  Args:
    mngr: a `manager`.
    target: the arrays' abstract structure (``ocp.utils.to_shape_dtype_struct`` leaves), which
      the checkpoint must have; None to read it as saved.
    step: read only this step.

  Raises:
    FileNotFoundError: no checkpoint (of ``step``).
    ValueError: no usable one: one line naming each step folder and what is wrong with it.
  """
  directory = pathlib.Path(mngr.directory)
  steps = sorted(mngr.all_steps(), reverse=True)
  if not steps:
    raise FileNotFoundError(f'No checkpoint in {directory}.')
  if step is not None:
    if step not in steps:
      raise FileNotFoundError(
        f'No checkpoint of step {step} in {directory}; found {sorted(steps)}.'
      )
    steps = [step]
  problems: dict[int, _Unusable] = {}
  for candidate in steps:
    try:
      return _read(mngr, candidate, target), {s: str(e) for s, e in problems.items()}
    except _Unusable as e:
      problems[candidate] = e
  if all(e.mismatch for e in problems.values()):
    raise ValueError(
      f'The checkpoints in {directory} were {problems[steps[0]]}; use another directory for '
      'this model and optimizer.'
    )
  raise ValueError(
    f'No usable checkpoint in {directory}: '
    + '; '.join(f'{directory / str(s)}: {e}' for s, e in problems.items())
    + '.'
  )


def set_aside(mngr: ocp.CheckpointManager, steps: Sequence[int]) -> list[pathlib.Path]:
  """Moves the folders of ``steps`` from the checkpoints to `SET_ASIDE` beside them.

  Orbax saves no step below its latest one, so unusable newer checkpoints must go before a run
  resumed from an older one can save again; they are kept for inspection.

  Returns:
    Their new paths.
  """
  directory = pathlib.Path(mngr.directory)
  moved = []
  for step in steps:
    destination = directory.parent / SET_ASIDE / str(step)
    suffix = 1
    while destination.exists():
      destination = directory.parent / SET_ASIDE / f'{step}.{suffix}'
      suffix += 1
    destination.parent.mkdir(exist_ok=True)
    shutil.move(directory / str(step), destination)
    moved.append(destination)
  return moved


def load_checkpoint(workdir: str | os.PathLike, *, step: int | None = None) -> Checkpoint:
  """Reads the newest usable checkpoint of ``fit(..., workdir=workdir)``.

  A checkpoint is usable if all its files read back, its arrays match the checksums recorded
  when it was saved (checkpoints of older versions have none) and are finite. Unusable newer
  checkpoints (e.g. a save interrupted by a full disk, flipped bytes) are skipped with a
  warning naming each; nothing is modified.

  Args:
    workdir: the ``workdir`` of `fit`, holding ``checkpoints/``.
    step: read this step only (no fallback), default the newest usable one.

  Returns:
    The `Checkpoint`.

  Raises:
    FileNotFoundError: no checkpoint in ``workdir`` (of ``step``).
    ValueError: none is usable (or ``step`` is not); one line naming each step folder and why.
  """
  directory = pathlib.Path(workdir) / CHECKPOINTS
  if not directory.is_dir():
    raise FileNotFoundError(f'No checkpoint in {directory.absolute()}.')
  with manager(directory) as mngr:
    checkpoint, problems = newest_usable(mngr, step=step)
  for bad, reason in problems.items():
    warnings.warn(
      f'Skipped the unusable checkpoint {mngr.directory / str(bad)} ({reason}); using step '
      f'{checkpoint.step}.',
      stacklevel=2,
    )
  return checkpoint
