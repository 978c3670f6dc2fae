"""Pure logits functions for attacks."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax

from ddn_jax.models import _precision


@dataclasses.dataclass(frozen=True)
class _InferenceApply:
  """``model.apply`` in inference mode; hashable, so it can key a compilation cache."""

  model: nn.Module
  precision: str = 'float32'

  def __call__(self, variables: Mapping[str, Any], images: jax.Array) -> jax.Array:
    if self.precision == 'float32':
      return self.model.apply(variables, images, train=False)
    return _float32_value(self, variables, images)

  def reduced(self, variables: Mapping[str, Any], images: jax.Array) -> jax.Array:
    return _precision.apply_in_precision(self.model, self.precision, variables, images, train=False)


# The value is the float32 model's, the derivative the reduced-precision model's (module docstring
# of `_precision`): a custom VJP, so that any attack's loss, verdicts and gradients follow it.
@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _float32_value(apply: _InferenceApply, variables, images):
  return apply.model.apply(variables, images, train=False)


def _float32_value_fwd(apply, variables, images):
  _, vjp = jax.vjp(apply.reduced, variables, images)
  return _float32_value(apply, variables, images), vjp


def _float32_value_bwd(apply, vjp, cotangent):
  return vjp(cotangent)


_float32_value.defvjp(_float32_value_fwd, _float32_value_bwd)


def make_logits_fn(
  model: nn.Module, variables: Mapping[str, Any], *, precision: str = 'float32'
) -> jax.tree_util.Partial:
  """Binds `variables` to `model` in inference mode.

  Dropout is off and batch norm uses its running statistics, so the
  returned function is deterministic, side-effect free and differentiable
  with respect to its input.

  The result is a ``jax.tree_util.Partial`` whose leaves are the variables: passed to a jitted
  attack, the variables are traced arguments, so new variables (e.g. each training step's)
  reuse the compiled attack instead of being compiled in as constants.

  Args:
    model: a module called as ``model.apply(variables, x, train=False)``,
      e.g. `SmallCNN`, `CifarCNN` or `WideResNet`.
    variables: its ``{"params": ..., "batch_stats": ...}`` collections.
    precision: ``'float32'``, or ``'bfloat16'``: the function's gradient is
      then computed by the model in that dtype (parameters and images cast inside the call),
      while its value, the logits, is always the float32 model's. Every attack therefore
      decides what is adversarial, keeps its best point and re-checks its result with the
      float32 model, and only follows the reduced-precision gradient; a differentiated call
      costs one float32 forward more (see `ddn_jax.models.PRECISIONS`).

  Returns:
    A function mapping float images of shape (N, H, W, C) in [0, 1] to
    logits of shape (N, num_classes).
  """
  precision = _precision.check_precision(precision)
  return jax.tree_util.Partial(_InferenceApply(model, precision), variables)
