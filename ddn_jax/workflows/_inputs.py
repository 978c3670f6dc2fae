"""What the commands attack: a saved or PyTorch model, and images it was not trained on."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from ddn_jax import data, models, sharding


class ModelToAttack(NamedTuple):
  """A model loaded for evaluation.

  Attributes:
    logits_fn: ``models.make_logits_fn`` of the model, for the attacks.
    model: the Flax module.
    variables: its variables.
    info: what is known of it: ``model`` (its name), ``dataset`` (what its images come from),
      ``precision`` (of the attacks' gradients) and ``model_info``, the ``model.json`` record
      (`models.SavedModel.info`) or, for a PyTorch state dict,
      ``{'model', 'state_dict', 'dataset': None}``.
  """

  logits_fn: Any
  model: Any
  variables: Any
  info: dict[str, Any]


def load_model_to_attack(
  *,
  checkpoint: str | None = None,
  state_dict: str | None = None,
  model: str = 'small_cnn',
  dataset: str | None = None,
  precision: str = 'float32',
) -> ModelToAttack:
  """Loads a model saved by ``ddn-jax train``/``demo``, or a PyTorch state dict of ``model``.

  Args:
    checkpoint: a directory with ``model.json`` and ``checkpoints/`` (`models.load_model`).
    state_dict: a PyTorch ``state_dict`` file of the architecture ``model`` (needs torch).
    model: the architecture of ``state_dict``.
    dataset: the dataset of the images (default: the one the checkpoint was trained on).
    precision: the attacks' gradient precision (`models.make_logits_fn`); verdicts and
      reported results are always the float32 model's.

  Returns:
    A `ModelToAttack`.

  Raises:
    ValueError: not exactly one of ``checkpoint`` and ``state_dict``, or no dataset known.
  """
  if bool(checkpoint) == bool(state_dict):
    raise ValueError('give exactly one of --checkpoint DIR and --state-dict FILE')
  if checkpoint:
    saved = models.load_model(checkpoint)
    info, module, variables = saved.info, saved.model, saved.variables
  else:
    from ddn_jax import interop  # pylint: disable=g-import-not-at-top  (torch, when needed)

    variables = interop.load_torch_state_dict(model, state_dict)
    module = models.build_model(model)
    info = {'model': model, 'state_dict': state_dict, 'dataset': None}
  dataset = dataset or info.get('dataset')
  if dataset is None:
    raise ValueError('--dataset is required with --state-dict')
  info = {**info, 'dataset': dataset, 'precision': precision, 'model_info': info}
  logits_fn = models.make_logits_fn(module, variables, precision=precision)
  return ModelToAttack(logits_fn, module, variables, info)


def images_to_attack(
  info: dict[str, Any], *, split: str, source: str, num_images: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
  """Images of ``info['dataset']`` to attack: never the model's training images.

  The selection is `models.held_out_indices`' (it warns where fewer are held out than asked).

  Args:
    info: a `ModelToAttack`'s info.
    split: the dataset split.
    source: where the images come from (`data.load`).
    num_images: how many.
    seed: the selection seed.

  Returns:
    ``(images, labels)``, as `data.load` gives them.

  Raises:
    ValueError: the images do not have the shape the model was trained on.
  """
  images, labels = data.load(info['dataset'], split, source=source)
  expected = info['model_info'].get('input_shape')
  if expected is not None and list(images.shape[1:]) != list(expected):
    raise ValueError(
      f'the model takes images of shape {tuple(expected)} but {info["dataset"]!r} has '
      f'{tuple(images.shape[1:])}'
    )
  index = models.held_out_indices(
    info['model_info'],
    images,
    labels,
    dataset=info['dataset'],
    split=split,
    num=num_images,
    seed=seed,
  )
  return images[index], labels[index]


def batch_mesh(batch_size: int) -> jax.sharding.Mesh | None:
  """A ``'data'`` mesh over every device for batches of ``batch_size`` (None on one device).

  Raises:
    ValueError: ``batch_size`` does not split over the devices.
  """
  if jax.device_count() == 1:
    return None
  mesh = sharding.data_mesh()
  sharding.check_batch_size(batch_size, mesh)
  return mesh
