"""Per-example numerics the attacks share: norms, directions, the adversarial criterion, the
cross-entropy gradient, projection, quantisation and step-size schedules."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddn_jax.attacks import _canonical_conv

# A pure function from images (N, H, W, C) in [0, 1] to logits (N, num_classes).
LogitsFn = Callable[[jax.Array], jax.Array]


def l2_norm(x: jax.Array) -> jax.Array:
  """L2 norm of one example (any shape), as a scalar."""
  return jnp.sqrt(jnp.sum(jnp.square(x)))


def batch_l2_norm(x: jax.Array) -> jax.Array:
  """``(N, ...) -> (N,)`` per-example L2 norms."""
  return jax.vmap(l2_norm)(x)


def single_logits(logits_fn: LogitsFn, x: jax.Array) -> jax.Array:
  """Logits ``(K,)`` of one example ``x``; batched into one model call under ``vmap``."""
  return logits_fn(x[None])[0]


def all_finite(x: jax.Array, axis: int | tuple[int, ...] | None = None) -> jax.Array:
  """Whether every value of ``x`` (along ``axis``; all of them for None) is finite."""
  return jnp.all(jnp.isfinite(x), axis=axis)


def predicted_class(logits: jax.Array) -> jax.Array:
  """The predicted class of logits ``(..., K)``: their argmax, or -1 (no class) where any logit
  is not finite, so that a broken model is never counted as right (or as fooled)."""
  return jnp.where(all_finite(logits, axis=-1), jnp.argmax(logits, axis=-1), -1)


def is_adversarial(logits: jax.Array, label: jax.Array, targeted: bool) -> jax.Array:
  """Whether logits ``(..., K)`` are adversarial for ``label`` (the target when ``targeted``).

  Only finite logits can be: ``argmax`` would pick a NaN or an infinity, so a broken model
  would look fooled everywhere.
  """
  pred = jnp.argmax(logits, axis=-1)
  criterion = pred == label if targeted else pred != label
  return all_finite(logits, axis=-1) & criterion


def loss_and_grad_fn(logits_fn: LogitsFn, targeted: bool):
  """Per-example ``(x, y) -> (logits, g)``: ``g`` is the gradient of the cross-entropy to ascend.

  Untargeted attacks ascend the cross-entropy of the true label; targeted ones descend that of
  the target, so ``g`` is the negated gradient for them. One forward+backward pass per call.
  """
  sign = -1.0 if targeted else 1.0

  def loss(x, y):
    logits = single_logits(logits_fn, x)
    return sign * optax.softmax_cross_entropy_with_integer_labels(logits, y), logits

  grad_fn = _canonical_conv.canonicalize_convolutions(jax.grad(loss, has_aux=True))

  def fn(x, y):
    g, logits = grad_fn(x, y)
    return logits, g

  return fn


def normalize(g: jax.Array, fallback: jax.Array) -> jax.Array:
  """``g / ||g||``, or ``fallback`` (a unit vector) where ``g`` is zero or not finite.

  A non-finite gradient (NaN or infinite anywhere, so its norm is too) gives no direction,
  like a zero one: it never enters the attack's state.
  """
  norm = l2_norm(g)
  usable = jnp.isfinite(norm) & (norm > 0)
  return jnp.where(usable, g / jnp.where(usable, norm, 1), fallback)


def random_unit(key: jax.Array, like: jax.Array) -> jax.Array:
  d = jax.random.normal(key, like.shape, like.dtype)
  return d / l2_norm(d)


def project_ball(delta: jax.Array, eps: jax.Array) -> jax.Array:
  """Projects one perturbation onto the L2 ball of radius ``eps``."""
  norm = l2_norm(delta)
  return delta * jnp.minimum(1, eps / jnp.where(norm > 0, norm, 1))


def quantize(x: jax.Array, levels: int | None) -> jax.Array:
  """Rounds ``x`` in ``[0, 1]`` to the nearest of ``levels`` grey levels (no-op for None)."""
  if levels is None:
    return x
  return jnp.round(x * (levels - 1)) / (levels - 1)


def cosine_schedule(
  steps: int, alpha_init: jax.Array, alpha_final: jax.Array, schedule: str = 'paper'
) -> jax.Array:
  """``(steps,)`` values cosine-annealed from ``alpha_init`` towards ``alpha_final``.

  ``'paper'`` reaches ``alpha_final`` at the last step (t = i / (steps - 1)), as the DDN paper
  states; ``'adv_lib'`` uses t = i / steps like adv-lib and the official DDN and FMN code, whose
  last step is ``alpha_final + (alpha_init - alpha_final) * (1 - cos(π / steps)) / 2``, not
  ``alpha_final``.
  """
  denominator = max(steps - 1, 1) if schedule == 'paper' else steps
  # The cosine factor in float64 at trace time (steps is static), as the references compute it.
  factor = 0.5 * (1 + np.cos(np.pi * np.arange(steps) / denominator))
  return alpha_final + (alpha_init - alpha_final) * jnp.asarray(factor, jnp.float32)
