"""Models saved by training runs: a ``model.json`` beside `ddn_jax.training.fit`'s checkpoints.

A directory holding ``model.json`` (the architecture by name and its constructor arguments, the
dataset and the input shape) and the ``checkpoints/`` that ``fit(..., workdir=directory)``
writes is all that is needed to rebuild the trained model, e.g. for ``ddn-jax attack
--checkpoint DIR``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import numpy as np

from ddn_jax.models._cifar_cnn import CifarCNN
from ddn_jax.models._small_cnn import SmallCNN
from ddn_jax.models._wide_resnet import WideResNet

INFO_FILE = 'model.json'
# The names also used by `ddn_jax.interop`.
ARCHITECTURES: dict[str, type[nn.Module]] = {
  'small_cnn': SmallCNN,
  'cifar_cnn': CifarCNN,
  'wide_resnet': WideResNet,
}


class SavedModel(NamedTuple):
  """A trained model rebuilt from a directory.

  Attributes:
    model: the Flax module.
    variables: its ``{"params": ..., "batch_stats": ...}`` collections (at the latest
      checkpoint), ready for `make_logits_fn`.
    info: the contents of ``model.json``, plus ``"step"``, the checkpoint's training step.
  """

  model: nn.Module
  variables: dict[str, Any]
  info: dict[str, Any]


def build_model(name: str, **kwargs: Any) -> nn.Module:
  """The architecture ``name`` (``'small_cnn'``, ``'cifar_cnn'``, ``'wide_resnet'``).

  Args:
    name: architecture name.
    **kwargs: constructor arguments, e.g. ``depth=28, width=10`` for ``'wide_resnet'``.

  Raises:
    ValueError: unknown name or argument.
  """
  if name not in ARCHITECTURES:
    raise ValueError(f'Unknown model {name!r}; expected one of {sorted(ARCHITECTURES)}.')
  cls = ARCHITECTURES[name]
  fields = {f.name for f in dataclasses.fields(cls)} - {'parent', 'name'}
  unknown = sorted(set(kwargs) - fields)
  if unknown:
    raise ValueError(
      f'Unknown argument(s) {unknown} for {name!r}; expected some of {sorted(fields)}.'
    )
  # JSON turns tuples into lists; modules must stay hashable (they key compilation caches).
  kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
  return cls(**kwargs)


def _architecture(model: nn.Module) -> tuple[str, dict[str, Any]]:
  for name, cls in ARCHITECTURES.items():
    if type(model) is cls:
      kwargs = {
        f.name: getattr(model, f.name)
        for f in dataclasses.fields(cls)
        if f.name not in ('parent', 'name')
      }
      return name, {k: list(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
  raise TypeError(
    f'Cannot save a {type(model).__name__}; expected one of '
    f'{[cls.__name__ for cls in ARCHITECTURES.values()]}.'
  )


def save_model_info(
  directory: str | os.PathLike,
  model: nn.Module,
  *,
  input_shape: Sequence[int],
  dataset: str | None = None,
  **extra: Any,
) -> pathlib.Path:
  """Writes ``directory/model.json`` describing ``model``; call it beside ``fit(workdir=...)``.

  Args:
    directory: the training run's ``workdir``.
    model: a `SmallCNN`, `CifarCNN` or `WideResNet`.
    input_shape: ``(H, W, C)`` of one image.
    dataset: the `ddn_jax.data` dataset it was trained on, if any.
    **extra: other JSON-serialisable facts to record (e.g. the training command).

  Returns:
    The path written.
  """
  name, kwargs = _architecture(model)
  shape = [int(d) for d in input_shape]
  if len(shape) != 3:
    raise ValueError(f'input_shape must be (H, W, C), got {tuple(input_shape)}.')
  path = pathlib.Path(directory) / INFO_FILE
  path.parent.mkdir(parents=True, exist_ok=True)
  info = {'model': name, 'model_kwargs': kwargs, 'input_shape': shape, 'dataset': dataset, **extra}
  path.write_text(json.dumps(info, indent=1) + '\n')
  return path


def load_model(directory: str | os.PathLike, *, step: int | None = None) -> SavedModel:
  """Rebuilds the model saved in ``directory`` from its ``model.json`` and checkpoint.

  Args:
    directory: a directory with ``model.json`` (`save_model_info`) and the ``checkpoints/``
      that ``ddn_jax.training.fit(..., workdir=directory)`` writes.
    step: the checkpoint to load, default the latest.

  Returns:
    A `SavedModel`.

  Raises:
    FileNotFoundError: no ``model.json`` or no checkpoint in ``directory``.
  """
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

  directory = pathlib.Path(directory)
  info_path = directory / INFO_FILE
  if not info_path.is_file():
    raise FileNotFoundError(
      f'{info_path} not found: expected a directory written by `ddn-jax train` '
      '(or by `fit(workdir=...)` with `save_model_info`).'
    )
  info = json.loads(info_path.read_text())
  model = build_model(info['model'], **info.get('model_kwargs', {}))
  checkpoints = (directory / 'checkpoints').absolute()
  with ocp.CheckpointManager(checkpoints, item_names=('state', 'progress')) as manager:
    steps = manager.all_steps() if checkpoints.is_dir() else []
    if not steps:
      raise FileNotFoundError(f'No checkpoint in {checkpoints}.')
    step = max(steps) if step is None else step
    if step not in steps:
      raise FileNotFoundError(f'No checkpoint of step {step} in {checkpoints}; found {steps}.')
    state = manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state
  variables = {'params': state['params']}
  if state.get('batch_stats'):
    variables['batch_stats'] = state['batch_stats']
  variables = jax.tree.map(lambda a: jax.numpy.asarray(np.asarray(a)), variables)
  return SavedModel(model, variables, {**info, 'step': int(step)})
