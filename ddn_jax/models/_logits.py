"""Pure logits functions for attacks, from Flax Linen or NNX models."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
from flax import nnx

from ddn_jax.models import _precision


class _Apply:
  """A model in inference mode as ``(variables, images) -> logits``; subclasses are hashable
  dataclasses, so equal models key the same compilation cache entry."""

  precision: str

  def full(self, variables: Any, images: jax.Array) -> jax.Array:
    raise NotImplementedError

  def reduced(self, variables: Any, images: jax.Array) -> jax.Array:
    raise NotImplementedError

  def __call__(self, variables: Any, images: jax.Array) -> jax.Array:
    if self.precision == 'float32':
      return self.full(variables, images)
    return _float32_value(self, variables, images)


@dataclasses.dataclass(frozen=True)
class _LinenApply(_Apply):
  model: nn.Module
  precision: str = 'float32'

  def full(self, variables, images):
    return self.model.apply(variables, images, train=False)

  def reduced(self, variables, images):
    return _precision.apply_in_precision(self.model, self.precision, variables, images, train=False)


@dataclasses.dataclass(frozen=True)
class _NnxApply(_Apply):
  """An NNX model split once into its graph (static, hashable) and its state (the traced
  leaves); merged again only when a computation is traced, never per call."""

  graphdef: Any
  precision: str = 'float32'

  def full(self, state, images):
    model = nnx.merge(self.graphdef, state)
    model.eval()  # on the merged copy: the user's module keeps its mode
    return model(images)

  def reduced(self, state, images):
    return _precision.call_in_precision(self.full, self.precision, state, images)


# The value is the float32 model's, the derivative the reduced-precision model's (module docstring
# of `_precision`): a custom VJP, so that any attack's loss, verdicts and gradients follow it.
@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _float32_value(apply: _Apply, variables, images):
  return apply.full(variables, images)


def _float32_value_fwd(apply, variables, images):
  _, vjp = jax.vjp(apply.reduced, variables, images)
  return _float32_value(apply, variables, images), vjp


def _float32_value_bwd(apply, vjp, cotangent):
  return vjp(cotangent)


_float32_value.defvjp(_float32_value_fwd, _float32_value_bwd)


def make_logits_fn(
  model: nn.Module | nnx.Module,
  variables: Mapping[str, Any] | None = None,
  *,
  precision: str = 'float32',
) -> jax.tree_util.Partial:
  """Binds `variables` to `model` in inference mode.

  Dropout is off and batch norm uses its running statistics, so the
  returned function is deterministic, side-effect free and differentiable
  with respect to its input.

  The result is a ``jax.tree_util.Partial`` whose leaves are the variables: passed to a jitted
  attack, the variables are traced arguments, so new variables (e.g. each training step's)
  reuse the compiled attack instead of being compiled in as constants. An NNX model is split
  once here into its graph and its state (``nnx.split``); its state is the traced leaves, so
  another instance of the same architecture with other weights reuses the compiled attack too.
  Later changes to the NNX model do not reach the function: make a new one.

  Args:
    model: a Linen module called as ``model.apply(variables, x, train=False)``,
      e.g. `SmallCNN`, `CifarCNN` or `WideResNet`; or an ``nnx.Module`` called as ``model(x)``
      (e.g. `NnxSmallCNN`), evaluated in eval mode (``model.eval()`` on a copy).
    variables: the Linen module's ``{"params": ..., "batch_stats": ...}`` collections; None
      for an NNX module, which holds its own.
    precision: ``'float32'``, or ``'bfloat16'``: the function's gradient is then computed by
      the model in that dtype (parameters and images cast inside the call), while its value,
      the logits, is always the float32 model's. Every attack therefore decides what is
      adversarial, keeps its best point and re-checks its result with the float32 model, and
      only follows the reduced-precision gradient; a differentiated call costs one float32
      forward more (see `ddn_jax.models.PRECISIONS`).

  Returns:
    A function mapping float images of shape (N, H, W, C) in [0, 1] to
    logits of shape (N, num_classes).

  Raises:
    TypeError: variables missing for a Linen module, or given for an NNX one.
  """
  precision = _precision.check_precision(precision)
  if isinstance(model, nnx.Module):
    if variables is not None:
      raise TypeError('an nnx.Module holds its own state: call make_logits_fn(model) alone.')
    graphdef, state = nnx.split(model)
    return jax.tree_util.Partial(_NnxApply(graphdef, precision), state)
  if variables is None:
    raise TypeError(
      f'make_logits_fn({type(model).__name__}) needs its variables: '
      'make_logits_fn(model, variables), e.g. the "params" and "batch_stats" of model.init.'
    )
  return jax.tree_util.Partial(_LinenApply(model, precision), variables)
