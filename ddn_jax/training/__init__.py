"""Optax training of the models, with checkpoints and a hook for attacks."""

from ddn_jax.training._fit import fit
from ddn_jax.training._optimizers import Recipe
from ddn_jax.training._optimizers import paper_recipe
from ddn_jax.training._optimizers import sgd
from ddn_jax.training._optimizers import step_schedule
from ddn_jax.training._state import TrainState
from ddn_jax.training._state import create_train_state
from ddn_jax.training._step import evaluate
from ddn_jax.training._step import evaluate_state
from ddn_jax.training._step import to_float_images
from ddn_jax.training._step import train_step

__all__ = (
  'Recipe',
  'TrainState',
  'create_train_state',
  'evaluate',
  'evaluate_state',
  'fit',
  'paper_recipe',
  'sgd',
  'step_schedule',
  'to_float_images',
  'train_step',
)
