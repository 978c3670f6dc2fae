"""Optax training of the models, adversarial training, data parallelism and checkpoints.

``DATA_AXIS``, ``data_mesh``, ``replicate``, ``shard_batch`` (`ddn_jax.sharding`) and
``to_float_images`` (`ddn_jax.data`) are also found here, where training code looks for them.
"""

from ddn_jax.data import to_float_images
from ddn_jax.sharding import DATA_AXIS, data_mesh, replicate, shard_batch
from ddn_jax.training._adversarial import (
  Adversary,
  AdversaryResult,
  adversarial_train_step,
  ddn_adversary,
  madry_adversary,
  madry_step_size,
  make_adversary,
)
from ddn_jax.training._checkpoints import Checkpoint, load_checkpoint
from ddn_jax.training._fit import fit
from ddn_jax.training._optimizers import (
  Recipe,
  make_optimizer,
  paper_recipe,
  sgd,
  step_schedule,
)
from ddn_jax.training._output import make_output_dir
from ddn_jax.training._state import TrainState, create_train_state
from ddn_jax.training._step import evaluate, evaluate_state, train_step

__all__ = (
  'DATA_AXIS',
  'Adversary',
  'AdversaryResult',
  'Checkpoint',
  'Recipe',
  'TrainState',
  'adversarial_train_step',
  'create_train_state',
  'data_mesh',
  'ddn_adversary',
  'evaluate',
  'evaluate_state',
  'fit',
  'load_checkpoint',
  'madry_adversary',
  'madry_step_size',
  'make_adversary',
  'make_optimizer',
  'make_output_dir',
  'paper_recipe',
  'replicate',
  'sgd',
  'shard_batch',
  'step_schedule',
  'to_float_images',
  'train_step',
)
