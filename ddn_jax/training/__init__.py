"""Optax training of the models, adversarial training, data parallelism and checkpoints."""

from ddn_jax.training._adversarial import Adversary
from ddn_jax.training._adversarial import AdversaryResult
from ddn_jax.training._adversarial import adversarial_train_step
from ddn_jax.training._adversarial import ddn_adversary
from ddn_jax.training._adversarial import madry_adversary
from ddn_jax.training._fit import fit
from ddn_jax.training._optimizers import Recipe
from ddn_jax.training._optimizers import paper_recipe
from ddn_jax.training._optimizers import sgd
from ddn_jax.training._optimizers import step_schedule
from ddn_jax.training._sharding import DATA_AXIS
from ddn_jax.training._sharding import data_mesh
from ddn_jax.training._sharding import replicate
from ddn_jax.training._sharding import shard_batch
from ddn_jax.training._state import TrainState
from ddn_jax.training._state import create_train_state
from ddn_jax.training._step import evaluate
from ddn_jax.training._step import evaluate_state
from ddn_jax.training._step import to_float_images
from ddn_jax.training._step import train_step

__all__ = (
  'DATA_AXIS',
  'Adversary',
  'AdversaryResult',
  'Recipe',
  'TrainState',
  'adversarial_train_step',
  'create_train_state',
  'data_mesh',
  'ddn_adversary',
  'evaluate',
  'evaluate_state',
  'fit',
  'madry_adversary',
  'paper_recipe',
  'replicate',
  'sgd',
  'shard_batch',
  'step_schedule',
  'to_float_images',
  'train_step',
)
