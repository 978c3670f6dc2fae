"""Sanity checks of a model before trusting a robustness evaluation (AutoAttack's flags)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax.data import to_float_images

# A logit that moves by more than this between two calls on the same input is randomness,
# not rounding (float32 logits of the same program on the same input are bit-identical).
_RANDOM_ATOL = 1e-6
# Reported when at least this fraction of examples has an exactly zero loss gradient.
_ZERO_GRADIENT_FRACTION = 0.01


def model_warnings(logits_fn: Any, images: Any, labels: Any) -> list[str]:
  """What makes a gradient-based robustness evaluation of this model unreliable, with evidence.

  In the spirit of AutoAttack's checks, on the given (few) examples:

  * the outputs are probabilities (every row in [0, 1] and summing to 1): the model ends in a
    softmax, whose saturation hides the gradient: pass the logits;
  * two calls on the same inputs differ: the model is randomised (dropout left on, a
    stochastic defence) and each attack sees another model;
  * the gradient of the cross-entropy is exactly zero at some examples (saturated or
    masked gradients): gradient attacks cannot move from there.

  Args:
    logits_fn: images ``(B, H, W, C)`` float in [0, 1] -> ``(B, K)``.
    images: ``(B, H, W, C)`` uint8 or float in [0, 1], a batch (e.g. 100 examples).
    labels: ``(B,)`` int labels.

  Returns:
    One line per problem found (empty: none).
  """
  x = jnp.asarray(to_float_images(np.asarray(images)))
  y = jnp.asarray(labels)
  first, second = np.asarray(logits_fn(x)), np.asarray(logits_fn(x))
  found = []
  finite = np.all(np.isfinite(first), axis=1)
  probability_rows = finite & np.all((first >= 0) & (first <= 1), axis=1)
  probability_rows &= np.abs(first.sum(axis=1) - 1) < 1e-4
  if probability_rows.all():
    found.append(
      f'the outputs look like probabilities (all {len(first)} rows in [0, 1] summing to 1): '
      'attack the logits, before the softmax.'
    )
  moved = np.max(np.abs(np.where(finite[:, None], first - second, 0.0)))
  if moved > _RANDOM_ATOL:
    found.append(
      f'two calls on the same inputs differ by up to {moved:.3g} in a logit: the model is '
      'randomised (dropout in training mode, a stochastic defence); evaluate it with '
      'expectation over transformations, or make it deterministic.'
    )

  def loss(inputs):
    logits = logits_fn(inputs)
    return jnp.sum(-jax.nn.log_softmax(logits)[jnp.arange(len(y)), y])

  gradients = np.asarray(jax.grad(loss)(x)).reshape(len(y), -1)
  zero = np.all(gradients == 0, axis=1) & finite
  if zero.mean() >= _ZERO_GRADIENT_FRACTION:
    found.append(
      f'the loss gradient is exactly zero at {int(zero.sum())} of {len(y)} examples: '
      'gradient-based attacks cannot start there (saturated or masked gradients); add a '
      'score-based attack (Square) and check those examples.'
    )
  return found
