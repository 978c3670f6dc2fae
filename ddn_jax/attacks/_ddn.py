"""Decoupled Direction and Norm (DDN) L2 attack."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _checks, _mapping, _numerics, _projection, _result

ALPHA_SCHEDULES = ('paper', 'adv_lib')


def _ddn_single(x, y, key, logits_fn, gamma, init_norm, alphas, *, targeted, levels):
  """DDN on one example ``x`` ``(H, W, C)``; returns the best adversarial and whether found."""
  loss_and_grad = _numerics.loss_and_grad_fn(logits_fn, targeted)
  worst_norm = _numerics.l2_norm(jnp.maximum(x, 1 - x))
  fallback = _numerics.random_unit(key, x)

  def step(carry, alpha):
    x_adv, norm, best_adv, best_l2 = carry
    logits, g = loss_and_grad(x_adv, y)
    delta = x_adv - x
    l2 = _numerics.l2_norm(delta)
    adv = _numerics.is_adversarial(logits, y, targeted)
    better = adv & (l2 < best_l2)
    best_adv = jnp.where(better, x_adv, best_adv)
    best_l2 = jnp.where(better, l2, best_l2)
    # Step along the unit gradient (a random direction where it is zero or not finite), then
    # rescale onto the sphere of the updated norm.
    delta = delta + alpha * _numerics.normalize(g, fallback)
    # Where the model's logits are not finite (e.g. far from the input), retreat: the norm
    # shrinks as after an adversarial point.
    shrink = adv | ~_numerics.all_finite(logits)
    norm = jnp.minimum(norm * jnp.where(shrink, 1 - gamma, 1 + gamma), worst_norm)
    delta_norm = _numerics.l2_norm(delta)
    delta = delta * (norm / jnp.where(delta_norm > 0, delta_norm, 1))
    # The point itself (not the delta) is carried so that it stays exactly on the grey-level grid.
    x_adv = _numerics.quantize(jnp.clip(x + delta, 0, 1), levels)
    return (x_adv, norm, best_adv, best_l2), None

  init = (x, jnp.asarray(init_norm, x.dtype), x, jnp.asarray(jnp.inf, x.dtype))
  (_, _, best_adv, best_l2), _ = jax.lax.scan(step, init, alphas)
  return best_adv, jnp.isfinite(best_l2)


@functools.partial(jax.jit, static_argnames=('targeted', 'steps', 'levels', 'alpha_schedule'))
def _ddn(
  logits_fn,
  inputs,
  labels,
  key,
  gamma,
  init_norm,
  alpha_init,
  alpha_final,
  eps,
  *,
  targeted,
  steps,
  levels,
  alpha_schedule,
):
  alphas = _numerics.cosine_schedule(steps, alpha_init, alpha_final, alpha_schedule)
  keys = _checks.example_keys(key, inputs.shape[0])
  single = functools.partial(_ddn_single, targeted=targeted, levels=levels)
  best_adv, found = _mapping.map_examples(
    single, (inputs, labels, keys), (logits_fn, gamma, init_norm, alphas)
  )
  adv = jnp.where(found[:, None, None, None], best_adv, inputs)
  if eps is not None:
    adv = _projection._project_l2_ball(inputs, adv, eps, levels=levels)
  num_grads = jnp.full(inputs.shape[:1], steps, jnp.int32)
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    num_grads,
    num_forwards=num_grads,
    targeted=targeted,
    keep_failed=eps is not None,
  )


def ddn(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  steps: int = 100,
  gamma: float = 0.05,
  init_norm: float = 1.0,
  alpha_init: float = 1.0,
  alpha_final: float = 0.01,
  alpha_schedule: str = 'paper',
  levels: int | None = 256,
  eps: float | None = None,
  key: jax.Array | None = None,
  max_norm: float | None = None,
) -> _result.AttackResult:
  """Decoupled Direction and Norm attack: minimum-norm L2 adversarial examples.

  Each of the ``steps`` iterations takes one forward+backward pass: a step of size α (cosine
  annealed from ``alpha_init`` to ``alpha_final`` at the last step) along the normalised
  gradient of the cross-entropy, then a projection of the perturbation onto the sphere of radius
  ε, where ε shrinks by ``(1 - gamma)`` while the current point is adversarial and grows by
  ``(1 + gamma)`` otherwise (never beyond the largest perturbation the box allows). Each point is
  clipped to [0, 1] and quantised to ``levels`` grey levels; the lowest-norm adversarial point
  seen is returned. Where the model's logits are not finite the point is not adversarial and ε
  shrinks; a gradient that is not finite is replaced by a random direction, as a zero one.

  Float hyperparameters are traced: new values do not recompile, and the attack can be
  ``jax.vmap``-ped over them. ``targeted``, ``steps``, ``levels`` and ``alpha_schedule`` are
  static.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``. Pass ``jax.tree_util.Partial(apply_fn, params)`` to keep the
      parameters traced rather than compiled in as constants.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    targeted: make the model predict ``labels`` instead of anything but ``labels``.
    steps: number of iterations (gradient evaluations) per example.
    gamma: multiplicative norm update, in (0, 1).
    init_norm: initial ε.
    alpha_init: first step size.
    alpha_final: step size at the last iteration.
    alpha_schedule: ``'paper'`` (α reaches ``alpha_final`` at the last iteration) or
      ``'adv_lib'`` (α_i = cosine at i / steps, as adv-lib and the official code: it stops one
      step short of ``alpha_final``); use ``'adv_lib'`` to reproduce the reference.
    levels: number of grey levels to quantise to every step; None disables quantisation.
    eps: if set, the result is projected into the L2 ball of this radius (for DDN
      adversarial training), as `project_l2_ball` does; the projected point is returned even
      when no longer adversarial (unless the model's logits there are not finite).
    key: PRNG key (``jax.random.key``) for the random direction used where a gradient is zero
      or not finite, split per example; or a batch ``(N,)`` of per-example keys.
    max_norm: the older name of ``eps``, still accepted.

  Returns:
    An :class:`AttackResult`; ``num_grads`` and ``extras['num_forwards']`` are ``steps`` for
    every example.

  Raises:
    ValueError / TypeError: bad inputs or hyperparameters, a ``key`` that is not one PRNG key,
      or both ``eps`` and ``max_norm``.

  References:
    Rony et al., `Decoupling Direction and Norm for Efficient Gradient-Based L2 Adversarial
    Attacks and Defenses <https://arxiv.org/abs/1811.09600>`_, CVPR 2019 (Algorithm 1).
  """
  steps = _checks.check_count('steps', steps)
  if alpha_schedule not in ALPHA_SCHEDULES:
    raise ValueError(f'alpha_schedule must be one of {ALPHA_SCHEDULES}, got {alpha_schedule!r}.')
  if levels is not None:
    levels = _checks.check_count('levels', levels, minimum=2)
  _checks.check_hyperparameter(
    'gamma', gamma, low=0, high=1, low_inclusive=False, high_inclusive=False
  )
  _checks.check_hyperparameter('init_norm', init_norm, low=0, low_inclusive=False)
  _checks.check_hyperparameter('alpha_init', alpha_init, low=0)
  _checks.check_hyperparameter('alpha_final', alpha_final, low=0)
  eps = _checks.renamed('eps', eps, 'max_norm', max_norm)
  if eps is not None:
    _checks.check_hyperparameter('eps', eps, low=0)
  key = _checks.default_key(key)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _ddn(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    key,
    gamma,
    init_norm,
    alpha_init,
    alpha_final,
    eps,
    targeted=bool(targeted),
    steps=steps,
    levels=levels,
    alpha_schedule=alpha_schedule,
  )
