"""Projection of adversarial images into an L2 ball, on the grey-level grid."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _checks, _mapping, _numerics


def _project_single(x, x_adv, eps, *, levels):
  x_adv = x + _numerics.project_ball(x_adv - x, eps)
  if levels is None:
    return x_adv
  nearest = _numerics.quantize(x_adv, levels)
  scaled = x_adv * (levels - 1)
  inward = jnp.where(x_adv > x, jnp.floor(scaled), jnp.ceil(scaled)) / (levels - 1)
  inside = lambda point: _numerics.l2_norm(point - x) <= eps
  # Rounding towards a clean image on the grid never lengthens a pixel's change; off the grid it
  # can, and then (e.g. for eps = 0) no grid point may be inside: keep the unrounded point.
  on_grid = jnp.all(_numerics.quantize(x, levels) == x)
  return jnp.where(inside(nearest), nearest, jnp.where(on_grid | inside(inward), inward, x_adv))


@functools.partial(jax.jit, static_argnames=('levels',))
def _project_l2_ball(inputs, adv, eps, *, levels):
  single = functools.partial(_project_single, levels=levels)
  return _mapping.map_examples(single, (inputs, adv), (eps,))


def project_l2_ball(
  inputs: jax.Array, adv: jax.Array, eps: jax.Array | float, *, levels: int | None = 256
) -> jax.Array:
  """Projects each ``adv - inputs`` into the L2 ball of radius ``eps``, then onto the grid.

  Rounding to the nearest of ``levels`` grey levels can leave the ball; for such an example
  the pixels are rounded towards the clean image instead, which for a clean image on the grid
  never lengthens any pixel's change, so the result stays inside the ball. For a clean image
  off the grid, where that rounding too can leave the ball, the example keeps the projected
  point unrounded (off the grid).

  Args:
    inputs: ``(N, H, W, C)`` clean images in [0, 1].
    adv: ``(N, H, W, C)`` images to project, in [0, 1].
    eps: radius of the ball, >= 0 (traced; checked when concrete).
    levels: number of grey levels, >= 2 (static); None skips the rounding.

  Returns:
    ``(N, H, W, C)`` images in [0, 1] with ``||result - inputs|| <= eps`` per example (up to
    float32 rounding of the norm).

  Raises:
    ValueError: mismatched shapes, a negative ``eps`` or ``levels < 2``.

  References:
    Rony et al., CVPR 2019, Section 5: DDN adversarial training projects into the ε-ball.
  """
  if inputs.shape != adv.shape or inputs.ndim != 4:
    raise ValueError(
      f'inputs and adv must both have shape (N, H, W, C), got {inputs.shape} and {adv.shape}.'
    )
  _checks.check_hyperparameter('eps', eps, low=0)
  if levels is not None:
    levels = _checks.check_count('levels', levels, minimum=2)
  return _project_l2_ball(inputs, adv, eps, levels=levels)
