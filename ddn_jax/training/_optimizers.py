"""SGD with weight decay, step schedules and the paper's training recipes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import optax


def step_schedule(
  learning_rate: float,
  *,
  steps_per_epoch: int,
  decay_epochs: Sequence[int],
  decay_factor: float,
) -> optax.Schedule:
  """Multiplies the learning rate by ``decay_factor`` at each decay epoch.

  Args:
    learning_rate: the initial learning rate.
    steps_per_epoch: optimizer steps per epoch.
    decay_epochs: epochs at whose start the rate is decayed.
    decay_factor: the multiplier, e.g. 0.1.

  Returns:
    An optax schedule of the step count.
  """
  return optax.piecewise_constant_schedule(
    learning_rate, {epoch * steps_per_epoch: decay_factor for epoch in decay_epochs}
  )


def sgd(
  learning_rate: float | optax.Schedule,
  *,
  momentum: float = 0.9,
  nesterov: bool = False,
  weight_decay: float = 0.0,
) -> optax.GradientTransformation:
  """SGD with momentum and L2 weight decay added to the gradient.

  The decay term ``weight_decay * params`` is added before momentum, as
  PyTorch's ``torch.optim.SGD`` does, and applies to all parameters.
  """
  return optax.chain(
    optax.add_decayed_weights(weight_decay),
    optax.sgd(learning_rate, momentum=momentum, nesterov=nesterov),
  )


class Recipe(NamedTuple):
  """An optimizer with the number of epochs and batch size it is meant for, and its schedule."""

  optimizer: optax.GradientTransformation
  num_epochs: int
  batch_size: int
  learning_rate: optax.Schedule


def paper_recipe(name: str, *, num_train_examples: int, num_epochs: int | None = None) -> Recipe:
  """Training recipes of the paper (Section 6) and its references.

  * ``"mnist"``: `SmallCNN`, 50 epochs, batch 128, SGD momentum 0.9,
    learning rate 0.01 for 30 epochs then 0.001 for 20 (Section 6).
    Weight decay 1e-6 is our choice; the paper gives none.
  * ``"cifar10_cnn"``: `CifarCNN` as in Carlini & Wagner (2017, Table 2):
    50 epochs, batch 128, SGD momentum 0.9, learning rate 0.01 halved every
    10 epochs.
  * ``"cifar10_wrn"``: `WideResNet` 28-10 as in Zagoruyko & Komodakis
    (2016): 200 epochs, batch 128, SGD Nesterov momentum 0.9, weight decay
    5e-4, learning rate 0.1 multiplied by 0.2 at epochs 60, 120 and 160.
  * ``"cifar10_wrn_adversarial"``: the paper's 30 epochs of DDN
    adversarial training after ``"cifar10_wrn"``, at its final learning
    rate 0.0008.

  Args:
    name: one of the recipe names above.
    num_train_examples: training set size, to convert epochs to steps
      (incomplete batches are dropped).
    num_epochs: train for this many epochs instead of the recipe's, with its
      learning-rate decays at the same fractions of training (rounded to
      whole epochs): ``"mnist"`` with 10 epochs decays at epoch 6, as the
      paper's 50 do at 30. None: the recipe's own epochs.

  Returns:
    The `Recipe`.

  Raises:
    ValueError: an unknown name, or ``num_epochs`` < 1.

  References:
    Rony et al., 2019, Sections 4 and 6.
  """
  recipes = {  # name: (learning rate, its decay epochs, decay factor, epochs, SGD options)
    'mnist': (0.01, [30], 0.1, 50, {'weight_decay': 1e-6}),
    'cifar10_cnn': (0.01, [10, 20, 30, 40], 0.5, 50, {}),
    'cifar10_wrn': (0.1, [60, 120, 160], 0.2, 200, {'nesterov': True, 'weight_decay': 5e-4}),
    'cifar10_wrn_adversarial': (
      0.1 * 0.2**3,
      [],
      1.0,
      30,
      {'nesterov': True, 'weight_decay': 5e-4},
    ),
  }
  if name not in recipes:
    raise ValueError(f'Unknown recipe {name!r}; expected one of {list(recipes)}.')
  learning_rate, decay_epochs, decay_factor, epochs, options = recipes[name]
  if num_epochs is not None:
    if num_epochs < 1:
      raise ValueError(f'num_epochs must be at least 1; got {num_epochs}.')
    decay_epochs = [round(e * num_epochs / epochs) for e in decay_epochs]
    epochs = num_epochs
  batch_size = 128
  schedule = step_schedule(
    learning_rate,
    steps_per_epoch=num_train_examples // batch_size,
    decay_epochs=decay_epochs,
    decay_factor=decay_factor,
  )
  return Recipe(sgd(schedule, **options), epochs, batch_size, schedule)


def make_optimizer(
  name: str,
  *,
  num_train_examples: int,
  learning_rate: float | None = None,
  num_epochs: int | None = None,
) -> optax.GradientTransformation:
  """The optimizer called ``name``: ``'adam'`` with ``learning_rate``, or a `paper_recipe`'s.

  Args:
    name: ``'adam'`` or a `paper_recipe` name.
    num_train_examples: training set size (the recipes' schedules count epochs).
    learning_rate: Adam's learning rate (required for ``'adam'``, unused by the recipes).
    num_epochs: the epochs a recipe's schedule spans (`paper_recipe`; unused by Adam).

  Returns:
    The optax optimizer.

  Raises:
    ValueError: an unknown name, or ``'adam'`` without a learning rate.
  """
  if name == 'adam':
    if learning_rate is None:
      raise ValueError("make_optimizer('adam') needs a learning_rate.")
    return optax.adam(learning_rate)
  return paper_recipe(name, num_train_examples=num_train_examples, num_epochs=num_epochs).optimizer
