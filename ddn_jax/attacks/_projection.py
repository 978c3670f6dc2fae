"""Projection of adversarial images into an L2 ball, on the grey-level grid."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _base


def _project_single(x, x_adv, eps, *, levels):
  x_adv = x + _base.project_ball(x_adv - x, eps)
  if levels is None:
    return x_adv
  nearest = _base.quantize(x_adv, levels)
  scaled = x_adv * (levels - 1)
  inward = jnp.where(x_adv > x, jnp.floor(scaled), jnp.ceil(scaled)) / (levels - 1)
  return jnp.where(_base.l2_norm(nearest - x) <= eps, nearest, inward)


@functools.partial(jax.jit, static_argnames=('levels',))
def project_l2_ball(
  inputs: jax.Array, adv: jax.Array, eps: jax.Array | float, *, levels: int | None = 256
) -> jax.Array:
  """Projects each ``adv - inputs`` into the L2 ball of radius ``eps``, then onto the grid.

  Rounding to the nearest of ``levels`` grey levels can leave the ball; for such an example
  the pixels are rounded towards the clean image instead, which for a clean image on the grid
  never lengthens any pixel's change, so the result stays inside the ball.

  Args:
    inputs: ``(N, H, W, C)`` clean images in [0, 1].
    adv: ``(N, H, W, C)`` images to project, in [0, 1].
    eps: radius of the ball (traced).
    levels: number of grey levels; None skips the rounding.

  Returns:
    ``(N, H, W, C)`` images in [0, 1] with ``||result - inputs|| <= eps`` per example.

  References:
    Rony et al., CVPR 2019, Section 5: DDN adversarial training projects into the ε-ball.
  """
  if inputs.shape != adv.shape or inputs.ndim != 4:
    raise ValueError(
      f'inputs and adv must both have shape (N, H, W, C), got {inputs.shape} and {adv.shape}.'
    )
  single = functools.partial(_project_single, levels=levels)
  return _base.map_examples(single, (inputs, adv), (eps,))
