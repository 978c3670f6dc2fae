"""The training state and its creation."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from ddn_jax import models


@struct.dataclass
class TrainState:
  """Everything a training step reads and writes.

  Attributes:
    step: number of optimizer steps taken, int32 scalar.
    params: the model's ``"params"`` collection.
    batch_stats: its ``"batch_stats"`` collection (``{}`` without batch norm).
    opt_state: the optimizer state.
    rng: base PRNG key; step ``s`` uses ``jax.random.fold_in(rng, s)``, so
      the randomness of a step does not depend on how the run got there.
    model: the Flax module (static).
    tx: the optimizer (static).
    precision: the compute precision of the model's passes (static): ``'float32'``, or
      ``'bfloat16'`` for the forward and backward of training and of the attacks' gradients,
      with float32 parameters, optimizer state and logits (`ddn_jax.models.make_logits_fn`).
  """

  step: jax.Array
  params: Any
  batch_stats: Any
  opt_state: optax.OptState
  rng: jax.Array
  model: nn.Module = struct.field(pytree_node=False)
  tx: optax.GradientTransformation = struct.field(pytree_node=False)
  precision: str = struct.field(pytree_node=False, default='float32')

  @property
  def variables(self) -> dict[str, Any]:
    """The variables for ``model.apply``."""
    if self.batch_stats:
      return {'params': self.params, 'batch_stats': self.batch_stats}
    return {'params': self.params}

  def logits_fn(self) -> jax.tree_util.Partial:
    """The current model in inference mode, in the state's precision, for the attacks
    (`ddn_jax.models.make_logits_fn`)."""
    return models.make_logits_fn(self.model, self.variables, precision=self.precision)


def create_train_state(
  model: nn.Module,
  *,
  rng: jax.Array,
  input_shape: Sequence[int],
  optimizer: optax.GradientTransformation,
  precision: str = 'float32',
) -> TrainState:
  """Initialises the model's variables and the optimizer.

  Args:
    model: a module called as ``model.apply(variables, x, train=...)``.
    rng: a PRNG key, e.g. ``jax.random.key(0)`` (legacy uint32 keys are
      converted).
    input_shape: shape of an input batch, e.g. ``(1, 28, 28, 1)``.
    optimizer: any optax optimizer, e.g. `sgd` or ``optax.adam(1e-3)``.
    precision: `TrainState.precision`; the parameters are float32 either way.

  Returns:
    A `TrainState` at step 0.
  """
  if not jnp.issubdtype(rng.dtype, jax.dtypes.prng_key):
    rng = jax.random.wrap_key_data(rng)  # a legacy uint32 `PRNGKey`
  params_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
  # Jitted: initialising op by op is much slower to dispatch.
  variables = jax.jit(functools.partial(model.init, train=False))(
    {'params': params_rng, 'dropout': dropout_rng}, jnp.zeros(input_shape, jnp.float32)
  )
  params = variables['params']
  return TrainState(
    step=jnp.zeros((), jnp.int32),
    params=params,
    batch_stats=variables.get('batch_stats', {}),
    opt_state=optimizer.init(params),
    rng=state_rng,
    model=model,
    tx=optimizer,
    precision=models.check_precision(precision),
  )
