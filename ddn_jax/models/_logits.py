"""Pure logits functions for attacks."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax


@dataclasses.dataclass(frozen=True)
class _InferenceApply:
  """``model.apply`` in inference mode; hashable, so it can key a compilation cache."""

  model: nn.Module

  def __call__(self, variables: Mapping[str, Any], images: jax.Array) -> jax.Array:
    return self.model.apply(variables, images, train=False)


def make_logits_fn(model: nn.Module, variables: Mapping[str, Any]) -> jax.tree_util.Partial:
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

  Returns:
    A function mapping float images of shape (N, H, W, C) in [0, 1] to
    logits of shape (N, num_classes).
  """
  return jax.tree_util.Partial(_InferenceApply(model), variables)
