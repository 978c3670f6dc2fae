"""Augmented Lagrangian Method for Adversarial attacks (ALMA), with the L2 distance."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _canonical_conv, _checks, _mapping, _numerics, _result

# adv-lib's floors: the DLR's denominator, RMSProp's, and the range it clamps μ to.
_DLR_FLOOR = 1e-8
_RMS_FLOOR = 1e-8
_MULTIPLIER_RANGE = (1e-6, 1e12)
PENALTIES = ('P2', 'P1', 'P3', 'PHRQuad')


def _penalty(name, y, rho, mu):
  """Penalty-Lagrangian ``P(y, ρ, μ)`` of the constraint ``y <= 0`` (adv-lib's formulas).

  Each branch is evaluated on the side of 0 where it is selected, so the other branch's
  gradient stays finite (``jnp.where`` multiplies it by 0, and 0 times inf is NaN).
  """
  pos, neg = jnp.where(y >= 0, y, 0), jnp.where(y < 0, y, 0)
  if name == 'PHRQuad':
    return (jnp.square(jax.nn.relu(mu + rho * y)) - jnp.square(mu)) / (2 * rho)
  if name == 'P1':
    sup = mu * pos + 0.5 * rho * pos**2 + rho**2 * pos**3
    mid = mu * neg + 0.5 * rho * neg**2
    return jnp.where(y >= 0, sup, jnp.where(y <= -mu / rho, -(mu**2) / (2 * rho), mid))
  sup = mu * pos + mu * rho * pos**2
  if name == 'P2':
    sup = sup + 1 / 6 * rho**2 * pos**3
  return jnp.where(y >= 0, sup, mu * neg / (1 - rho * neg))


def _lerp(start, end, weight):
  """``torch.lerp``, whose two formulas (by ``weight``) round differently."""
  return jnp.where(weight < 0.5, start + weight * (end - start), end - (end - start) * (1 - weight))


def _distance(delta):
  """L2 norm whose gradient at 0 is 0 (as PyTorch's), not NaN."""
  squares = jnp.sum(jnp.square(delta))
  return jnp.where(squares > 0, jnp.sqrt(jnp.where(squares > 0, squares, 1)), 0)


class _State(NamedTuple):
  """Per-example state of the ALMA loop."""

  delta: jax.Array  # (H, W, C) current perturbation
  square_avg: jax.Array  # (H, W, C) RMSProp's running mean of squared gradients (starts at 1)
  velocity: jax.Array  # (H, W, C) RMSProp's momentum buffer
  multiplier: jax.Array  # μ, the Lagrange multiplier of the constraint
  penalty: jax.Array  # ρ, the penalty parameter
  last_check: jax.Array  # the constraint's value at the previous check of ρ
  found: jax.Array  # bool, some point so far was adversarial
  step_found: jax.Array  # the step of the first adversarial point (steps + 1 before)
  best_l2: jax.Array  # lowest adversarial norm so far (inf before)
  best_adv: jax.Array  # (H, W, C) the point with that norm (x before)


def _alma_single(
  x,
  y,
  logits_fn,
  learning_rate,
  learning_rate_reduction,
  multiplier_init,
  penalty_init,
  improvement_rate,
  penalty_growth,
  multiplier_smoothing,
  rms_smoothing,
  momentum,
  logit_tolerance,
  *,
  targeted,
  steps,
  check_steps,
  penalty,
  levels,
):
  """ALMA on one example ``x`` ``(H, W, C)``; returns the lowest-norm adversarial point found."""
  num_classes = jax.eval_shape(_numerics.single_logits, logits_fn, x).shape[-1]
  onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
  as_float = lambda v: jnp.asarray(v, x.dtype)
  mu_decay = 1 - as_float(multiplier_smoothing)

  def constraint(logits):
    """adv-lib's DLR, ``<= 0`` where adversarial: ``(z_y - max_{j≠y} z_j + tol) / (z_π1 -
    z_π3)``; targeted, ``(max_{j≠t} z_j - z_t + tol) / (z_π1 - (z_π3 + z_π4) / 2)``."""
    top = jax.lax.top_k(logits, 4 if targeted else 3)[0]
    scale = top[0] - ((top[2] + top[3]) / 2 if targeted else top[2]) + _DLR_FLOOR
    margin = jnp.sum(logits * onehot) - jnp.max(jnp.where(onehot > 0, -jnp.inf, logits))
    return ((-margin if targeted else margin) + logit_tolerance) / scale

  penalty_grad = jax.grad(functools.partial(_penalty, penalty))

  def objective(delta, s: _State, i):
    x_adv = x + delta
    logits = _numerics.single_logits(logits_fn, x_adv)
    l2 = _distance(x_adv - x)
    dlr = constraint(logits)
    value = jax.lax.stop_gradient(dlr)
    usable = _numerics.all_finite(logits) & jnp.isfinite(value)
    # Every check_steps steps, ρ grows where no adversarial point was found before this step
    # and the constraint did not improve by the factor τ since the last check.
    check = (i > 0) & ((i + 1) % check_steps == 0) & usable
    stalled = ~(s.found | (value < improvement_rate * s.last_check))
    rho = jnp.where(check & stalled, penalty_growth * s.penalty, s.penalty)
    last_check = jnp.where(((i == 0) & usable) | check, value, s.last_check)
    # μ moves towards the penalty's derivative (from the first step on, with the new ρ).
    mu = jnp.clip(
      _lerp(s.multiplier, penalty_grad(value, rho, s.multiplier), mu_decay), *_MULTIPLIER_RANGE
    )
    mu = jnp.where((i > 0) & usable, mu, s.multiplier)
    # The first step minimises the penalty alone.
    loss = jnp.where(i > 0, l2, 0) + _penalty(penalty, dlr, rho, mu)
    return loss, (logits, l2, value, usable, rho, mu, last_check)

  grad_fn = _canonical_conv.canonicalize_convolutions(jax.grad(objective, has_aux=True))

  def step(s: _State, i) -> tuple[_State, None]:
    g, (logits, l2, value, usable, rho, mu, last_check) = grad_fn(s.delta, s, i)
    adv = usable & (value < 0) & _numerics.is_adversarial(logits, y, targeted)
    better = adv & (l2 < s.best_l2)
    step_found = jnp.where(~s.found & adv, i.astype(x.dtype), s.step_found)
    # After the first adversarial point, the learning rate decays exponentially to
    # learning_rate * learning_rate_reduction at the last step.
    elapsed = jnp.maximum(i - step_found, 0) / (steps - step_found)
    lr = learning_rate * jnp.power(as_float(learning_rate_reduction), elapsed)
    # RMSProp with momentum, as adv-lib's: its running mean starts at 1, not 0.
    square_avg = rms_smoothing * s.square_avg + (1 - rms_smoothing) * (g * g)
    velocity = momentum * s.velocity + g / (jnp.sqrt(square_avg) + _RMS_FLOOR)
    delta = s.delta - velocity * lr
    # Where the model's logits or the gradient are not finite (e.g. far from the input),
    # retreat halfway towards the input and forget the momentum that led there.
    finite = usable & _numerics.all_finite(g)
    delta = jnp.where(finite, delta, s.delta / 2)
    x_adv = _numerics.quantize(jnp.clip(x + delta, 0, 1), levels)
    keep = lambda new, old: jnp.where(finite, new, old)
    return _State(
      delta=x_adv - x,
      square_avg=keep(square_avg, s.square_avg),
      velocity=keep(velocity, jnp.zeros_like(velocity)),
      multiplier=mu,
      penalty=rho,
      last_check=last_check,
      found=s.found | adv,
      step_found=step_found,
      best_l2=jnp.where(better, l2, s.best_l2),
      best_adv=jnp.where(better, x + s.delta, s.best_adv),
    ), None

  init = _State(
    delta=jnp.zeros_like(x),
    square_avg=jnp.ones_like(x),
    velocity=jnp.zeros_like(x),
    multiplier=as_float(multiplier_init),
    penalty=as_float(penalty_init),
    last_check=as_float(jnp.inf),
    found=jnp.zeros((), bool),
    step_found=as_float(steps + 1),
    best_l2=as_float(jnp.inf),
    best_adv=x,
  )
  s, _ = jax.lax.scan(step, init, jnp.arange(steps))
  return s.best_adv


@functools.partial(
  jax.jit, static_argnames=('targeted', 'steps', 'check_steps', 'penalty', 'levels')
)
def _alma_l2(
  logits_fn,
  inputs,
  labels,
  hyperparameters,
  *,
  targeted,
  steps,
  check_steps,
  penalty,
  levels,
):
  single = functools.partial(
    _alma_single,
    targeted=targeted,
    steps=steps,
    check_steps=check_steps,
    penalty=penalty,
    levels=levels,
  )
  adv = _mapping.map_examples(single, (inputs, labels), (logits_fn, *hyperparameters))
  num_grads = jnp.full(inputs.shape[:1], steps, jnp.int32)
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    num_grads,
    num_forwards=num_grads,
    targeted=targeted,
    keep_failed=False,
  )


def alma_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  steps: int = 1000,
  learning_rate: float = 0.1,
  learning_rate_reduction: float = 0.01,
  multiplier_init: float = 1.0,
  penalty_init: float = 1.0,
  check_steps: int = 10,
  improvement_rate: float = 0.95,
  penalty_growth: float = 1.2,
  multiplier_smoothing: float = 0.9,
  rms_smoothing: float | None = None,
  momentum: float | None = None,
  logit_tolerance: float = 1e-4,
  penalty: str = 'P2',
  levels: int | None = None,
) -> _result.AttackResult:
  """ALMA: minimum-norm L2 adversarial examples by an augmented Lagrangian method.

  Minimises ``||δ||`` subject to ``g(x + δ) <= 0``, ``g`` the difference of logits ratio (DLR)
  ``(z_y - max_{j≠y} z_j + tol) / (z_π1 - z_π3)`` (targeted: ``(max_{j≠t} z_j - z_t + tol) /
  (z_π1 - (z_π3 + z_π4) / 2)``; z_π the sorted logits, ``tol`` = ``logit_tolerance``, a margin
  beyond the boundary). Each of the ``steps`` iterations takes one forward+backward pass of
  ``||δ|| + P(g, ρ, μ)`` (the penalty alone at the first step), ``P`` a penalty-Lagrangian
  function (``penalty``), then one step of RMSProp with momentum on δ (its running mean starts
  at 1), and clips ``x + δ`` to [0, 1] (and quantises it to ``levels`` grey levels if set).
  μ, the multiplier, moves towards ``∂P/∂g`` by the factor ``1 - multiplier_smoothing`` every
  step, clamped to [1e-6, 1e12]; ρ, the penalty parameter, grows by ``penalty_growth`` every
  ``check_steps`` steps where no adversarial point was found yet and ``g`` did not fall below
  ``improvement_rate`` times its value at the previous check. After the first adversarial
  point the learning rate decays exponentially to ``learning_rate * learning_rate_reduction``
  at the last step. The lowest-norm adversarial point seen is returned. Where the model's
  logits or the gradient are not finite, the point is not adversarial, μ and ρ do not change,
  and δ retreats halfway towards the input, its momentum reset.

  The algorithm is adv-lib 0.2.8's ``alma`` with the L2 distance, whose arguments map as
  ``num_steps`` = ``steps``, ``lr_init`` = ``learning_rate``, ``lr_reduction`` =
  ``learning_rate_reduction``, ``μ_init`` = ``multiplier_init``, ``ρ_init`` = ``penalty_init``,
  ``check_steps`` (M), ``τ`` = ``improvement_rate``, ``γ`` = ``penalty_growth``, ``α`` =
  ``multiplier_smoothing``, ``α_rms`` = ``rms_smoothing``, ``momentum``, ``logit_tolerance``,
  ``penalty`` = ``all_penalties[penalty]`` and ``levels``; its ``init_lr_distance`` (a line
  search for the first learning rate) is not supported. Differences: adv-lib adds the
  tolerance so that a targeted point counts as adversarial up to ``tol`` before reaching the
  target (ours demands the margin on the right side; with ``logit_tolerance=0`` both are the
  same), and it has no guard against non-finite logits.

  Float hyperparameters are traced (no recompilation, ``vmap``-able); ``targeted``, ``steps``,
  ``check_steps``, ``penalty`` and ``levels`` are static.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``; at least 3 classes (4 when ``targeted``), for the DLR.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    targeted: make the model predict ``labels``.
    steps: number of iterations (gradient evaluations) per example.
    learning_rate: RMSProp's learning rate until the first adversarial point.
    learning_rate_reduction: factor of the learning rate at the last step, in (0, 1].
    multiplier_init: initial μ, > 0.
    penalty_init: initial ρ, > 0.
    check_steps: steps between the checks that grow ρ (M in the paper).
    improvement_rate: τ, the factor the constraint must fall by between checks, in [0, 1].
    penalty_growth: γ, the factor ρ grows by, >= 1.
    multiplier_smoothing: α, the weight of the old μ in its moving average, in [0, 1].
    rms_smoothing: RMSProp's smoothing constant, in [0, 1]; None means
      ``multiplier_smoothing``.
    momentum: RMSProp's momentum, in [0, 1]; None means ``multiplier_smoothing``.
    logit_tolerance: margin in logits beyond the boundary that the constraint asks for, >= 0
      (an argmax tie is then never the goal).
    penalty: the penalty-Lagrangian function: ``'P2'`` (the paper's choice), ``'P1'``,
      ``'P3'`` or ``'PHRQuad'`` (adv-lib's definitions).
    levels: number of grey levels to quantise every point to; None disables quantisation.

  Returns:
    An :class:`AttackResult`; ``num_grads`` and ``extras['num_forwards']`` are ``steps`` for
    every example.

  Raises:
    ValueError / TypeError: bad inputs or hyperparameters, or too few classes.

  References:
    Rony et al., `Augmented Lagrangian Adversarial Attacks
    <https://arxiv.org/abs/2011.11857>`_, ICCV 2021 (Algorithm 1).
  """
  steps = _checks.check_count('steps', steps)
  check_steps = _checks.check_count('check_steps', check_steps)
  if levels is not None:
    levels = _checks.check_count('levels', levels, minimum=2)
  if penalty not in PENALTIES:
    raise ValueError(f'penalty must be one of {PENALTIES}, got {penalty!r}.')
  rms_smoothing = multiplier_smoothing if rms_smoothing is None else rms_smoothing
  momentum = multiplier_smoothing if momentum is None else momentum
  _checks.check_hyperparameter('learning_rate', learning_rate, low=0, low_inclusive=False)
  _checks.check_hyperparameter(
    'learning_rate_reduction', learning_rate_reduction, low=0, high=1, low_inclusive=False
  )
  _checks.check_hyperparameter('multiplier_init', multiplier_init, low=0, low_inclusive=False)
  _checks.check_hyperparameter('penalty_init', penalty_init, low=0, low_inclusive=False)
  _checks.check_hyperparameter('improvement_rate', improvement_rate, low=0, high=1)
  _checks.check_hyperparameter('penalty_growth', penalty_growth, low=1)
  for name, value in (
    ('multiplier_smoothing', multiplier_smoothing),
    ('rms_smoothing', rms_smoothing),
    ('momentum', momentum),
  ):
    _checks.check_hyperparameter(name, value, low=0, high=1)
  _checks.check_hyperparameter('logit_tolerance', logit_tolerance, low=0)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  example = jax.ShapeDtypeStruct((1, *inputs.shape[1:]), inputs.dtype)
  num_classes = jax.eval_shape(logits_fn, example).shape[-1]
  needed = 4 if targeted else 3
  if num_classes < needed:
    raise ValueError(
      f'alma_l2 needs at least {needed} classes{" when targeted" if targeted else ""} (its '
      f'constraint is the DLR), the model has {num_classes}.'
    )
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  hyperparameters = (
    learning_rate,
    learning_rate_reduction,
    multiplier_init,
    penalty_init,
    improvement_rate,
    penalty_growth,
    multiplier_smoothing,
    rms_smoothing,
    momentum,
    logit_tolerance,
  )
  return _alma_l2(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    hyperparameters,
    targeted=bool(targeted),
    steps=steps,
    check_steps=check_steps,
    penalty=penalty,
    levels=levels,
  )
