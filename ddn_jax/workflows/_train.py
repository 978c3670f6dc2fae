"""Training a model into a run directory that records what it was trained on."""

from __future__ import annotations

import functools
import os
from typing import Any

import jax

from ddn_jax import data, models, training
from ddn_jax.workflows._inputs import batch_mesh


def train(
  out: str | os.PathLike[str],
  *,
  model: str = 'small_cnn',
  dataset: str = 'mnist',
  split: str = 'train',
  source: str = 'auto',
  num_train: int | None = None,
  num_eval: int = 0,
  epochs: int = 3,
  batch_size: int = 64,
  optimizer: str = 'adam',
  learning_rate: float = 1e-3,
  adversary: str | None = None,
  eps: float = 2.4,
  attack_steps: int = 100,
  gamma: float = 0.05,
  step_size: float | None = None,
  clean_weight: float | None = None,
  checkpoint_every: int | None = None,
  seed: int = 0,
  precision: str = 'float32',
  command: str | None = None,
) -> tuple[training.TrainState, list[dict[str, Any]]]:
  """Trains ``model`` (plainly, or adversarially with DDN or Madry's PGD) with checkpoints in ``out``.

  The first ``num_train`` images of the ``seed`` split of ``dataset``'s ``split``
  (`data.split_indices`) train it; the last ``num_eval`` are evaluated after each epoch. The run's
  settings are recorded in ``out/model.json`` (`models.save_model_info`) before training, so that
  `models.held_out_indices` later evaluates it on other images, and a rerun in the same ``out``
  resumes only the same run: a larger ``epochs`` continues it, other changes are refused.

  Args:
    out: the run directory (`training.make_output_dir`).
    model: a `models.build_model` architecture.
    dataset: a `data.load` dataset.
    split: its split.
    source: where its images come from (`data.load`).
    num_train: training images (None: all of the split but the ``num_eval``).
    num_eval: held-out images evaluated after each epoch.
    epochs: training epochs.
    batch_size: global batch size, a multiple of the number of devices.
    optimizer: ``'adam'`` or a `training.paper_recipe` (`training.make_optimizer`).
    learning_rate: Adam's learning rate.
    adversary: ``'ddn'``, ``'madry'``, or None / ``'none'`` (`training.make_adversary`).
    eps: the adversary's L2 budget.
    attack_steps: its steps.
    gamma: DDN's γ.
    step_size: PGD's step length (None: `training.madry_step_size`).
    clean_weight: weight α of the clean loss (Eq. 6; None: 0, Eq. 9).
    checkpoint_every: also checkpoint every this many steps.
    seed: seed of the split, the initial weights, the batch order and the adversary.
    precision: the compute precision of the model's passes (`training.TrainState.precision`).
    command: the command line to record.

  Returns:
    `training.fit`'s final state and per-epoch metrics.

  Raises:
    ValueError: more images asked for than the split has, or a run with other settings in
      ``out``.
  """
  out = training.make_output_dir(out)
  images, labels = data.load(dataset, split, source=source)
  num_train = len(images) - num_eval if num_train is None else num_train
  if num_train < 1 or num_train + num_eval > len(images):
    raise ValueError(
      f'--num-train {num_train} + --num-eval {num_eval} must fit in the {len(images)} images of '
      f'{dataset} {split}'
    )
  train_index, eval_index = data.split_indices(
    len(images), seed=seed, num_train=num_train, num_held_out=num_eval
  )
  module = models.build_model(model)
  settings: dict[str, Any] = {}
  if adversary == 'ddn':
    settings = {'eps': eps, 'attack_steps': attack_steps, 'gamma': gamma}
  elif adversary == 'madry':
    step_size = training.madry_step_size(eps, attack_steps) if step_size is None else step_size
    settings = {'eps': eps, 'attack_steps': attack_steps, 'step_size': step_size}
  # Recorded, and compared when rerun in the same out: only epochs may change (to continue).
  models.save_model_info(
    out,
    module,
    input_shape=images.shape[1:],
    dataset=dataset,
    source=source,
    split=split,
    num_train=num_train,
    seed=seed,
    split_fingerprint=data.fingerprint(images, labels),
    batch_size=batch_size,
    optimizer=optimizer,
    learning_rate=learning_rate if optimizer == 'adam' else None,
    adversary=adversary or 'none',
    **settings,
    clean_weight=clean_weight,
    # Recorded only when reduced, so that float32 runs saved before the option still resume.
    **({} if precision == 'float32' else {'precision': precision}),
    command=command,
  )
  state = training.create_train_state(
    module,
    rng=jax.random.key(seed),
    input_shape=(1, *images.shape[1:]),
    optimizer=training.make_optimizer(
      optimizer, num_train_examples=num_train, learning_rate=learning_rate, num_epochs=epochs
    ),
    precision=precision,
  )
  step_fn = functools.partial(
    training.adversarial_train_step,
    adversary=training.make_adversary(
      adversary, eps=eps, steps=attack_steps, gamma=gamma, step_size=step_size
    ),
    clean_weight=clean_weight,
  )
  return training.fit(
    state,
    (images[train_index], labels[train_index]),
    num_epochs=epochs,
    batch_size=batch_size,
    seed=seed,
    eval_data=(images[eval_index], labels[eval_index]) if num_eval else None,
    step_fn=step_fn,
    mesh=batch_mesh(batch_size),
    workdir=out,
    checkpoint_every_steps=checkpoint_every,
  )
