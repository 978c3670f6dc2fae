"""Fast Minimum-Norm (FMN) L2 attack."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax.attacks import _canonical_conv, _checks, _mapping, _numerics, _result

# Floor on the gradient norm, which divides both the step and the boundary-distance estimate.
_MIN_GRAD_NORM = 1e-12


class _State(NamedTuple):
  """Per-example state of the FMN loop."""

  x_adv: jax.Array  # (H, W, C) current point, x + δ
  eps: jax.Array  # radius of the L2 ball δ is projected onto
  adv_found: jax.Array  # bool, some point so far was adversarial
  best_l2: jax.Array  # lowest adversarial norm so far (the largest possible norm before)
  best_adv: jax.Array  # (H, W, C) the point with that norm (x before)


def _fmn_single(
  x, y, start, logits_fn, alphas, gammas, *, targeted, binary_search_steps, levels, projection
):
  """FMN on one example ``x`` ``(H, W, C)``; returns the lowest-norm adversarial point found.

  ``start`` is None (start from ``x``) or an adversarial point to search the boundary towards.
  """
  num_classes = jax.eval_shape(_numerics.single_logits, logits_fn, x).shape[-1]
  onehot = jax.nn.one_hot(y, num_classes, dtype=x.dtype)
  # The loss is increased towards the boundary: the best other logit minus the label's one when
  # untargeted, the target's logit minus the best other one when targeted.
  sign = 1.0 if targeted else -1.0

  def loss(x_adv):
    logits = _numerics.single_logits(logits_fn, x_adv)
    margin = jnp.sum(logits * onehot) - jnp.max(jnp.where(onehot > 0, -jnp.inf, logits))
    return sign * margin, logits

  loss_and_grad = _canonical_conv.canonicalize_convolutions(jax.value_and_grad(loss, has_aux=True))

  x_adv = x
  if start is not None:
    # Bisect the segment from x to the starting point for the adversarial point nearest to x.
    def bisect(bounds, _):
      lower, upper = bounds
      mid = (lower + upper) / 2
      adv = _numerics.is_adversarial(
        _numerics.single_logits(logits_fn, x + mid * (start - x)), y, targeted
      )
      return (jnp.where(adv, lower, mid), jnp.where(adv, mid, upper)), None

    bounds = (jnp.zeros((), x.dtype), jnp.ones((), x.dtype))
    (_, upper), _ = jax.lax.scan(bisect, bounds, None, length=binary_search_steps)
    x_adv = x + upper * (start - x)

  worst_l2 = _numerics.l2_norm(jnp.maximum(x, 1 - x))

  def step(s: _State, schedule) -> tuple[_State, None]:
    alpha, gamma = schedule
    (value, logits), g = loss_and_grad(s.x_adv)
    l2 = _numerics.l2_norm(s.x_adv - x)
    adv = _numerics.is_adversarial(logits, y, targeted)
    better = adv & (l2 < s.best_l2)
    adv_found = s.adv_found | adv
    best_l2 = jnp.where(better, l2, s.best_l2)
    g_norm = jnp.maximum(_numerics.l2_norm(g), _MIN_GRAD_NORM)
    # Shrink ε while adversarial; before the first adversarial point, jump to the boundary of the
    # loss's linearisation; after it, grow ε geometrically.
    eps = jnp.where(
      adv,
      jnp.minimum(s.eps * (1 - gamma), best_l2),
      jnp.where(adv_found, s.eps * (1 + gamma), l2 + jnp.abs(value) / g_norm),
    )
    # Where the logits or the gradient are not finite (e.g. far from the input), retreat: no
    # gradient step, and ε shrinks below the current norm.
    finite = _numerics.all_finite(logits) & jnp.isfinite(g_norm)
    eps = jnp.where(finite, eps, jnp.minimum(s.eps, l2) * (1 - gamma))
    eps = jnp.minimum(eps, worst_l2)
    delta = s.x_adv - x + jnp.where(finite, alpha * g / g_norm, 0)
    if projection == 'ball':
      delta = _numerics.project_ball(delta, eps)
    else:  # adv-lib 0.2.8 rescales onto the sphere, enlarging a short δ too.
      delta = delta * (eps / jnp.maximum(_numerics.l2_norm(delta), 1e-12))
    return _State(
      x_adv=_numerics.quantize(jnp.clip(x + delta, 0, 1), levels),
      eps=eps,
      adv_found=adv_found,
      best_l2=best_l2,
      best_adv=jnp.where(better, s.x_adv, s.best_adv),
    ), None

  init = _State(
    x_adv=x_adv,
    eps=jnp.asarray(jnp.inf, x.dtype),
    adv_found=jnp.zeros((), bool),
    best_l2=worst_l2,
    best_adv=x,
  )
  s, _ = jax.lax.scan(step, init, (alphas, gammas))
  return s.best_adv


@functools.partial(
  jax.jit, static_argnames=('targeted', 'steps', 'binary_search_steps', 'levels', 'projection')
)
def _fmn_l2(
  logits_fn,
  inputs,
  labels,
  starting_points,
  alpha_init,
  alpha_final,
  gamma_init,
  gamma_final,
  *,
  targeted,
  steps,
  binary_search_steps,
  levels,
  projection,
):
  # FMN's code anneals with t = i / steps: its last step stops short of the final value.
  alphas = _numerics.cosine_schedule(steps, alpha_init, alpha_final, 'adv_lib')
  gammas = _numerics.cosine_schedule(steps, gamma_init, gamma_final, 'adv_lib')
  single = functools.partial(
    _fmn_single,
    targeted=targeted,
    binary_search_steps=binary_search_steps,
    levels=levels,
    projection=projection,
  )
  adv = _mapping.map_examples(
    single, (inputs, labels, starting_points), (logits_fn, alphas, gammas)
  )
  num_grads = jnp.full(inputs.shape[:1], steps, jnp.int32)
  # The bisection towards the starting points adds a forward pass per step.
  bisections = 0 if starting_points is None else binary_search_steps
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    num_grads,
    num_forwards=num_grads + bisections,
    targeted=targeted,
    keep_failed=False,
  )


def _check_starting_points(logits_fn, inputs, labels, starting_points, targeted):
  """Checks that ``starting_points`` are images like ``inputs`` and adversarial for the model."""
  if not hasattr(starting_points, 'dtype'):
    starting_points = np.asarray(starting_points)
  if starting_points.shape != inputs.shape or not jnp.issubdtype(
    starting_points.dtype, jnp.floating
  ):
    raise ValueError(
      f'starting_points must be float images of the shape of inputs, {inputs.shape}, got '
      f'{starting_points.shape} {starting_points.dtype}.'
    )
  starting_points = jnp.asarray(starting_points, inputs.dtype)
  if _checks.is_concrete(starting_points) and _checks.is_concrete(labels) and inputs.size:
    with jax.ensure_compile_time_eval():  # eagerly, even inside a caller's trace
      stats = _checks.input_stats(starting_points, labels)
      adv = _numerics.is_adversarial(logits_fn(starting_points), labels, targeted)
    lo, hi, has_nan, _, _ = jax.device_get(stats)
    if has_nan or lo < 0 or hi > 1:
      raise ValueError(f'starting_points must have pixels in [0, 1], got [{lo:g}, {hi:g}].')
    # The model's parameters may be traced (a caller's jit over them): then only the pixels.
    if _checks.is_concrete(adv) and not np.asarray(adv).all():
      adv = np.asarray(adv)
      raise ValueError(
        f'starting_points must all be adversarial; examples {np.flatnonzero(~adv).tolist()} '
        'are not.'
      )
  return starting_points


def fmn_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  steps: int = 100,
  alpha_init: float = 1.0,
  alpha_final: float | None = None,
  gamma_init: float = 0.05,
  gamma_final: float = 0.001,
  starting_points: jax.Array | None = None,
  binary_search_steps: int = 10,
  levels: int | None = None,
  projection: str = 'ball',
) -> _result.AttackResult:
  """Fast Minimum-Norm L2 attack: gradient steps on a logit margin inside an adaptive ε-ball.

  Each of the ``steps`` iterations takes one forward+backward pass of the logit margin (the best
  other logit minus the label's; the target's minus the best other's when ``targeted``) at the
  current point ``x + δ``, then updates the radius ε: while the point is adversarial,
  ``ε = min(ε (1 - γ), best norm)``; before any adversarial point was found, ``ε = ||δ|| +
  |margin| / ||∇margin||`` (the boundary of the margin's linearisation); afterwards
  ``ε = ε (1 + γ)``; ε never exceeds the largest perturbation the box allows. Then δ takes a step
  of L2 size α along the normalised gradient, is projected onto the ε-ball, and ``x + δ`` is
  clipped to [0, 1] (and quantised to ``levels`` grey levels if set). α and γ are
  cosine-annealed from their initial towards their final values. The lowest-norm adversarial
  point seen is returned. Where the model's logits or their gradient are not finite, the point
  is not adversarial, no step is taken and ε shrinks below its norm.

  With ``starting_points`` (adversarial images, e.g. from another attack), the attack first
  bisects the segment from each input to its starting point for ``binary_search_steps`` steps
  and starts from the adversarial end of the final interval.

  Float hyperparameters are traced (no recompilation, ``vmap``-able); ``targeted``, ``steps``,
  ``binary_search_steps``, ``levels`` and ``projection`` are static, as is whether
  ``starting_points`` is given.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    targeted: make the model predict ``labels``.
    steps: number of iterations (gradient evaluations) per example.
    alpha_init: first step size.
    alpha_final: step size the cosine schedule anneals towards; None means ``alpha_init / 100``.
    gamma_init: first relative ε update, in (0, 1].
    gamma_final: relative ε update the schedule anneals towards, in [0, 1].
    starting_points: optional ``(N, H, W, C)`` adversarial images in [0, 1] to start from.
    binary_search_steps: bisection steps towards ``starting_points`` (unused without them).
    levels: number of grey levels to quantise every point to; None (the original's behaviour)
      disables quantisation.
    projection: ``'ball'`` projects δ into the ε-ball, as the paper's Algorithm 1; ``'sphere'``
      rescales δ onto the ε-sphere every step, as adv-lib 0.2.8's FMN does (use it to compare
      with adv-lib exactly; on MNIST it also breaks more examples in 100 steps).

  Returns:
    An :class:`AttackResult`; ``num_grads`` is ``steps`` for every example, and
    ``extras['num_forwards']`` ``steps``, plus ``binary_search_steps`` with ``starting_points``
    (the bisection's forward passes; checking that the starting points are adversarial, before
    the attack, is not counted).

  Raises:
    ValueError: ``starting_points`` has the wrong shape or dtype, is outside [0, 1], or is not
      adversarial everywhere.

  References:
    Pintor et al., `Fast Minimum-norm Adversarial Attacks through Adaptive Norm Constraints
    <https://arxiv.org/abs/2102.12827>`_, NeurIPS 2021 (Algorithm 1).
  """
  steps = _checks.check_count('steps', steps)
  binary_search_steps = _checks.check_count('binary_search_steps', binary_search_steps)
  if levels is not None:
    levels = _checks.check_count('levels', levels, minimum=2)
  if alpha_final is None:
    alpha_final = alpha_init / 100
  _checks.check_hyperparameter('alpha_init', alpha_init, low=0, low_inclusive=False)
  _checks.check_hyperparameter('alpha_final', alpha_final, low=0)
  _checks.check_hyperparameter('gamma_init', gamma_init, low=0, high=1, low_inclusive=False)
  _checks.check_hyperparameter('gamma_final', gamma_final, low=0, high=1)
  if projection not in ('ball', 'sphere'):
    raise ValueError(f"projection must be 'ball' or 'sphere', got {projection!r}.")
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  if starting_points is not None:
    starting_points = _check_starting_points(
      logits_fn, inputs, labels, starting_points, bool(targeted)
    )
  return _fmn_l2(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    starting_points,
    alpha_init,
    alpha_final,
    gamma_init,
    gamma_final,
    targeted=bool(targeted),
    steps=steps,
    binary_search_steps=binary_search_steps,
    levels=levels,
    projection=projection,
  )
