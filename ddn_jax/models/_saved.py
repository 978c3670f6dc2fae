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
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import numpy as np

from ddn_jax._atomic import write_text_atomically
from ddn_jax.data import fingerprint, split_indices
from ddn_jax.models._cifar_cnn import CifarCNN
from ddn_jax.models._dm_preact_resnet import DMPreActResNet
from ddn_jax.models._dm_wide_resnet import DMWideResNet
from ddn_jax.models._preact_resnet import PreActResNet18
from ddn_jax.models._resnet import ResNet
from ddn_jax.models._small_cnn import SmallCNN
from ddn_jax.models._wide_resnet import WideResNet

INFO_FILE = 'model.json'
# The names also used by `ddn_jax.interop`.
ARCHITECTURES: dict[str, type[nn.Module]] = {
  'small_cnn': SmallCNN,
  'cifar_cnn': CifarCNN,
  'wide_resnet': WideResNet,
  'preact_resnet18': PreActResNet18,
  'dm_wide_resnet': DMWideResNet,
  'dm_preact_resnet': DMPreActResNet,
  'resnet': ResNet,
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
  """The architecture ``name``, a key of `ARCHITECTURES` (e.g. ``'wide_resnet'``).

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


def _read_info(path: pathlib.Path) -> dict[str, Any]:
  """The contents of a ``model.json``; a one-line ValueError naming it if it is not one."""
  text = path.read_text()
  if not text.strip():
    raise ValueError(f'{path} is empty; it should describe the model (`save_model_info`).')
  try:
    info = json.loads(text)
  except ValueError as e:
    raise ValueError(f'{path} is not valid JSON ({e}).') from e
  if not isinstance(info, dict) or not isinstance(info.get('model'), str):
    raise ValueError(  # noqa: TRY004 (a file with the wrong content, not a wrong argument)
      f'{path} does not describe a model: it has no "model" name.'
    )
  return info


def _shown(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 24 else text[:21] + '...'


def _has_checkpoints(directory: pathlib.Path) -> bool:
  checkpoints = directory / 'checkpoints'
  return checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())


def save_model_info(
  directory: str | os.PathLike,
  model: nn.Module,
  *,
  input_shape: Sequence[int],
  dataset: str | None = None,
  **extra: Any,
) -> pathlib.Path:
  """Writes ``directory/model.json`` describing ``model``; call it beside ``fit(workdir=...)``.

  If ``directory`` already holds checkpoints and a ``model.json``, the description must be the
  recorded one (``command`` aside; entries the file lacks are added): a training run is only
  resumed with its own settings, and its ``model.json`` is never rewritten with another's.

  Args:
    directory: the training run's ``workdir``.
    model: a `SmallCNN`, `CifarCNN`, `WideResNet` or `PreActResNet18`.
    input_shape: ``(H, W, C)`` of one image.
    dataset: the `ddn_jax.data` dataset it was trained on, if any.
    **extra: other JSON-serialisable facts to record: the training settings, and the command
      that ran it as ``command``. `held_out_indices` reads ``split``, ``num_train``, ``seed``
      (the model was trained on the first ``num_train`` images of the ``seed`` permutation of
      ``dataset``'s ``split``) and ``split_fingerprint`` (`ddn_jax.data.fingerprint` of that
      split).

  Returns:
    The path written.

  Raises:
    ValueError: ``directory`` holds the checkpoints of a run described otherwise (the message
      names each difference), or an unreadable ``model.json`` beside checkpoints.
  """
  name, kwargs = _architecture(model)
  shape = [int(d) for d in input_shape]
  if len(shape) != 3:
    raise ValueError(f'input_shape must be (H, W, C), got {tuple(input_shape)}.')
  directory = pathlib.Path(directory)
  path = directory / INFO_FILE
  info = {'model': name, 'model_kwargs': kwargs, 'input_shape': shape, 'dataset': dataset, **extra}
  # Through JSON, as it will be read back (tuples become lists).
  info = json.loads(json.dumps(info))
  if path.is_file() and _has_checkpoints(directory):
    recorded = _read_info(path)
    differences = [
      f'{k} {_shown(value)} then, {_shown(info[k]) if k in info else "unset"} now'
      for k, value in recorded.items()
      if k != 'command' and (k not in info or info[k] != value)
    ]
    if differences:
      raise ValueError(
        f'{directory} holds the checkpoints of another run: {"; ".join(differences)} '
        f'({path.name} records the first value). Resume it with the same settings, or use '
        'another directory.'
      )
  if jax.process_index() == 0:  # every process checks; one writes, whole or not at all
    directory.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(info, indent=1) + '\n')
  return path


def load_model(directory: str | os.PathLike, *, step: int | None = None) -> SavedModel:
  """Rebuilds the model saved in ``directory`` from its ``model.json`` and checkpoint.

  The checkpoint is read with `ddn_jax.training.load_checkpoint`: an unusable newest one
  (unreadable, damaged, non-finite) is skipped with a warning naming it.

  Args:
    directory: a directory with ``model.json`` (`save_model_info`) and the ``checkpoints/``
      that ``ddn_jax.training.fit(..., workdir=directory)`` writes.
    step: the checkpoint to load, default the newest usable one.

  Returns:
    A `SavedModel`.

  Raises:
    FileNotFoundError: no ``model.json`` or no checkpoint (of ``step``) in ``directory``.
    ValueError: ``model.json`` describes no model, or no checkpoint (or that of ``step``) is
      usable; one line naming the file.
  """
  from ddn_jax import training  # pylint: disable=g-import-not-at-top (training imports models)

  directory = pathlib.Path(directory)
  info_path = directory / INFO_FILE
  if not info_path.is_file():
    raise FileNotFoundError(
      f'{info_path} not found: expected a directory written by `ddn-jax train` '
      '(or by `fit(workdir=...)` with `save_model_info`).'
    )
  info = _read_info(info_path)
  model = build_model(info['model'], **info.get('model_kwargs', {}))
  checkpoint = training.load_checkpoint(directory, step=step)
  state = checkpoint.state
  variables = {'params': state['params']}
  if state.get('batch_stats'):
    variables['batch_stats'] = state['batch_stats']
  variables = jax.tree.map(lambda a: jax.numpy.asarray(np.asarray(a)), variables)
  return SavedModel(model, variables, {**info, 'step': checkpoint.step})


def held_out_indices(
  info: Mapping[str, Any],
  images: np.ndarray,
  labels: np.ndarray,
  *,
  dataset: str,
  split: str,
  num: int,
  seed: int,
) -> np.ndarray:
  """Which of a split's images to evaluate a saved model on: never one it was trained on.

  Without a training record for these images (``info`` of another dataset or split, or of a
  model from elsewhere), the last ``num`` of a ``seed`` permutation (all if fewer). On the
  split the model was trained on (``info``'s ``dataset``, ``split``, ``num_train``, ``seed``,
  and ``split_fingerprint`` to recognise the images; see `save_model_info`), the images
  outside its first ``num_train`` of the training permutation: the last ``num`` of them, in
  that order if ``seed`` is the training seed, else reshuffled by ``seed``. If fewer are held
  out, all of them, with a warning saying how many.

  Args:
    info: the model's ``model.json`` record (`SavedModel.info`).
    images: ``(N, ...)`` the split's images.
    labels: ``(N,)`` their labels.
    dataset: the `ddn_jax.data` dataset they come from.
    split: their split.
    num: the number of images wanted.
    seed: the selection seed.

  Returns:
    Indices into ``images``.

  Raises:
    ValueError: the model was trained on every image of the split, or on these images in
      another order or version, so that its held-out ones cannot be told apart.
  """
  num_train, train_seed = info.get('num_train'), info.get('seed')
  if num_train is None or train_seed is None or info.get('dataset') != dataset:
    return split_indices(len(images), seed=seed, num_held_out=num)[1]
  trained_split = info.get('split')
  if trained_split != split:
    if trained_split is not None and trained_split.split('[')[0] == split.split('[')[0]:
      warnings.warn(
        f'The model was trained on {dataset} {trained_split!r}; these images of {split!r} may '
        'include some of its training images.',
        stacklevel=2,
      )
    return split_indices(len(images), seed=seed, num_held_out=num)[1]
  recorded = info.get('split_fingerprint')
  if recorded is not None and recorded != fingerprint(images, labels):
    raise ValueError(
      f'These {len(images)} images of {dataset} {split} are not those the model was trained '
      f'on (source {info.get("source")!r}), so its training images cannot be excluded: use its '
      'source, or another split.'
    )
  held_out = split_indices(len(images), seed=train_seed, num_train=num_train)[1]
  if not len(held_out):
    raise ValueError(
      f'The model was trained on all {len(images)} images of {dataset} {split}: none is held '
      'out. Evaluate it on another split, e.g. test.'
    )
  if seed != train_seed:
    held_out = held_out[np.random.default_rng(seed).permutation(len(held_out))]
  if num > len(held_out):
    warnings.warn(
      f'Only {len(held_out)} of the {len(images)} images of {dataset} {split} are not among '
      f'the {num_train} the model was trained on: evaluating those {len(held_out)}, not {num}.',
      stacklevel=2,
    )
  return held_out[-num:]
