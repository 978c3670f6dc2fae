"""Fast Adaptive Boundary (FAB, L2), minimum-norm, and its targeted variant FAB-T (AutoAttack's)."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _canonical_conv, _checks, _mapping, _numerics, _result

# adv-lib's constants: a coordinate whose weight is at most _W_FLOOR never moves; _BIG stands for
# "never hits the box"; the floors of the projection distances and of the gradient norms.
_W_FLOOR = 1e-8
_BIG = 1e12
_DISTANCE_FLOOR = 1e-8
_GRAD_FLOOR = 1e-12
# The radius of the random starts without eps (adv-lib's and AutoAttack's default for L2).
_DEFAULT_EPS = 1.0


def project_hyperplane_box(t: jax.Array, w: jax.Array, b: jax.Array) -> jax.Array:
  """The step ``d`` to the point of ``{z: w·z = b} ∩ [0, 1]^n`` nearest ``t`` in L2.

  adv-lib's ``projection_l2`` (AutoAttack's) for one flat point: moving along ``-λ w`` (``w``
  signed so that ``λ >= 0`` approaches the hyperplane), coordinate ``i`` stops at the box at
  ``λ = r_i``. The breakpoints ``r`` are sorted; a bisection (``ceil(log2 n)`` halvings) finds
  the interval of ``λ`` in which ``w·(t + d(λ)) = b``, and ``λ`` is solved for there. Where
  even the box's corner in the direction ``-w`` does not reach the hyperplane, ``d`` goes to
  that corner (the nearest the box gets). Coordinates with ``|w_i| <= 1e-8`` do not move.

  Args:
    t: ``(n,)`` point in [0, 1].
    w: ``(n,)`` normal of the hyperplane.
    b: its offset.

  Returns:
    ``(n,)`` the step ``d``: ``t + d`` is the projection.
  """
  n = t.shape[0]
  c = jnp.dot(w, t) - b
  sign = jnp.where(c >= 0, 1, -1).astype(t.dtype)
  w, c = w * sign, c * sign  # now c >= 0: the hyperplane is reached for λ > 0
  moves = jnp.abs(w) > _W_FLOOR
  safe_w = jnp.where(moves, w, 1)
  r = jnp.clip(jnp.maximum(t / safe_w, (t - 1) / safe_w), -_BIG, _BIG)
  r = jnp.where(moves & (r != -_BIG), r, _BIG)
  order = jnp.argsort(r)
  rs = r[order]
  rs2 = jnp.concatenate([rs[1:], jnp.zeros((1,), rs.dtype)])
  rs = jnp.where(rs == _BIG, 0, rs)
  rs2 = jnp.where(rs2 == _BIG, 0, rs2)
  w3s = jnp.square(w)[order]
  w5 = jnp.sum(w3s)
  ws = w5 - jnp.cumsum(w3s)  # squared weight of the coordinates not yet at the box
  d = jnp.where(moves, -r * w, 0)  # every coordinate at the box
  s = jnp.concatenate([(-w5 * rs[0])[None], jnp.cumsum((rs - rs2) * ws) - w5 * rs[0]])
  # The hyperplane is reached before any coordinate stops; or not even at the box's corner.
  before_any = s[0] + c < 0
  beyond_box = jnp.dot(d, w) + c > 0

  def halve(_, bounds):
    lb, ub = bounds
    mid = (lb + ub) // 2
    above = s[mid] + c > 0
    return jnp.where(above, mid, lb), jnp.where(above, ub, mid)

  zero = jnp.zeros((), jnp.int32)
  k, _ = jax.lax.fori_loop(0, math.ceil(math.log2(n)), halve, (zero, zero + n - 1))
  ws_k = ws[k]
  lam = jnp.where(ws_k == 0, 0, (s[k] + c) / jnp.where(ws_k == 0, 1, ws_k) + rs[k])
  within = jnp.where(lam > r, d, -lam * w)
  unclipped = -(c / jnp.where(w5 == 0, 1, w5)) * w
  d = jnp.where(before_any, unclipped, jnp.where(beyond_box, d, within))
  return jnp.where(moves, d, 0)


def _diff_fn(logits_fn, y, target, mode, num_classes):
  """Per-example ``x -> (f, (f, logits))``: the logit differences whose zero sets FAB projects
  onto.

  ``'untargeted'``: ``z_j - z_y`` for every class ``j ≠ y`` (ascending). ``'fab-t'``: ``z_t -
  z_y`` for the run's target. ``'targeted'`` (``y`` is the target): ``z_c - z_y``, ``c`` the
  likeliest other class at ``x``, the one the target must overtake.
  """

  def fn(x):
    z = _numerics.single_logits(logits_fn, x)
    if mode == 'untargeted':
      index = jnp.arange(num_classes - 1)
      other = index + (index >= y)
    elif mode == 'fab-t':
      other = target[None]
    else:
      others = jnp.where(jnp.arange(num_classes) == y, -jnp.inf, jax.lax.stop_gradient(z))
      other = jnp.argmax(others)[None]
    f = z[other] - z[y]
    return f, (f, z)

  return fn


def _fab_single(
  x, y, key, logits_fn, eps, alpha_max, beta, eta, *, mode, bounded, steps, restarts, num_targets
):
  """FAB (or FAB-T, with ``num_targets``) on one example; returns ``(point, runs made)``.

  Runs follow one another (``restarts`` of them, per target with FAB-T), the first from the
  input and the others from random starts, keeping the adversarial iterate of smallest norm;
  they stop once one is within ``eps`` (``bounded``), or at once where the input is already
  adversarial.
  """
  num_classes = jax.eval_shape(_numerics.single_logits, logits_fn, x).shape[-1]
  eps, alpha_max, beta, eta = (jnp.asarray(v, x.dtype) for v in (eps, alpha_max, beta, eta))
  clean = _numerics.single_logits(logits_fn, x)
  targeted = mode == 'targeted'
  is_adv = lambda z: _numerics.is_adversarial(z, y, targeted)
  targets = None
  if mode == 'fab-t':
    # The most likely classes other than the label, by the clean logits.
    others = jnp.where(jnp.arange(num_classes) == y, -jnp.inf, clean)
    targets = jax.lax.top_k(others, num_targets)[1]
  runs = restarts * (num_targets or 1)
  x0 = x.reshape(-1)
  project = jax.vmap(project_hyperplane_box, in_axes=(0, None, None))

  def fab_step(carry, jac_fn):
    x1, best, best_norm = carry
    jac, (f, _) = jac_fn(x1)
    g = jac.reshape(f.shape[0], -1)
    # adv-lib's choice: the boundary nearest in its linearisation (the first one on ties).
    ratio = jnp.abs(f) / jnp.maximum(jax.vmap(_numerics.l2_norm)(g), _GRAD_FLOOR)
    i = jnp.argmin(ratio)
    w, df = g[i], f[i]
    # A non-finite linearisation gives no step: nothing non-finite enters the iterate.
    usable = _numerics.all_finite(w) & jnp.isfinite(df)
    w, df = jnp.where(usable, w, 0), jnp.where(usable, df, 0)
    x1f = x1.reshape(-1)
    d = project(jnp.stack([x1f, x0]), w, jnp.dot(w, x1f) - df)
    a1, a2 = (jnp.maximum(_numerics.l2_norm(v), _DISTANCE_FLOOR) for v in d)
    alpha = jnp.clip(a1 / (a1 + a2), 0, alpha_max)
    moved = (x1f + eta * d[0]) * (1 - alpha) + (x0 + eta * d[1]) * alpha
    new = jnp.where(usable, jnp.clip(moved, 0, 1).reshape(x.shape), x1)
    adv = is_adv(_numerics.single_logits(logits_fn, new))
    norm = _numerics.l2_norm(new - x)
    better = adv & (norm < best_norm)
    # Back towards the input from an adversarial point, to look for a nearer one.
    x1 = jnp.where(adv, x + (new - x) * beta, new)
    return x1, jnp.where(better, new, best), jnp.where(better, norm, best_norm)

  def run(carry):
    r, best, best_norm = carry
    target = None if targets is None else targets[r // restarts]
    fn = _diff_fn(logits_fn, y, target, mode, num_classes)
    jac_fn = _canonical_conv.canonicalize_convolutions(jax.jacrev(fn, has_aux=True))
    # adv-lib's random start: norm half the best norm so far, at most half of eps.
    noise = jax.random.normal(jax.random.fold_in(key, r), x.shape, x.dtype)
    scale = jnp.minimum(best_norm, eps) / (2 * _numerics.l2_norm(noise))
    start = jnp.where(r % restarts > 0, jnp.clip(x + noise * scale, 0, 1), x)
    step = lambda _, c: fab_step(c, jac_fn)
    _, best, best_norm = jax.lax.fori_loop(0, steps, step, (start, best, best_norm))
    return r + 1, best, best_norm

  already = is_adv(clean)
  threshold = eps if bounded else 0
  init = (jnp.zeros((), jnp.int32), x, jnp.where(already, 0, jnp.inf).astype(x.dtype))
  made, best, best_norm = jax.lax.while_loop(
    lambda c: (c[0] < runs) & ~(c[2] <= threshold), run, init
  )
  found = (best_norm <= eps) if bounded else jnp.isfinite(best_norm)
  return jnp.where(found, best, x), made


@functools.partial(jax.jit, static_argnames=('mode', 'bounded', 'steps', 'restarts', 'num_targets'))
def _fab_l2(
  logits_fn,
  inputs,
  labels,
  key,
  eps,
  alpha_max,
  beta,
  eta,
  *,
  mode,
  bounded,
  steps,
  restarts,
  num_targets,
):
  single = functools.partial(
    _fab_single,
    mode=mode,
    bounded=bounded,
    steps=steps,
    restarts=restarts,
    num_targets=num_targets,
  )
  keys = _checks.example_keys(key, inputs.shape[0])
  adv, runs = _mapping.map_examples(
    single, (inputs, labels, keys), (logits_fn, eps, alpha_max, beta, eta)
  )
  rows = _num_classes(logits_fn, inputs) - 1 if mode == 'untargeted' else 1
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    runs * steps * rows,
    num_forwards=1 + runs * 2 * steps,
    targeted=mode == 'targeted',
    keep_failed=False,
  )


def _num_classes(logits_fn, inputs):
  example = jax.ShapeDtypeStruct((1, *inputs.shape[1:]), inputs.dtype)
  return jax.eval_shape(logits_fn, example).shape[-1]


def _check_options(steps, restarts, eps, alpha_max, beta, eta):
  if eps is not None:
    _checks.check_hyperparameter('eps', eps, low=0, low_inclusive=False)
  _checks.check_hyperparameter('alpha_max', alpha_max, low=0, high=1)
  _checks.check_hyperparameter('beta', beta, low=0, high=1)
  _checks.check_hyperparameter('eta', eta, low=0, low_inclusive=False)
  return _checks.check_count('steps', steps), _checks.check_count('restarts', restarts)


def _run(logits_fn, inputs, labels, key, eps, alpha_max, beta, eta, **static):
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _fab_l2(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    key,
    _DEFAULT_EPS if eps is None else eps,
    alpha_max,
    beta,
    eta,
    bounded=eps is not None,
    **static,
  )


def fab_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  steps: int = 100,
  eps: float | None = None,
  alpha_max: float = 0.1,
  beta: float = 0.9,
  eta: float = 1.05,
  restarts: int = 1,
  key: jax.Array | None = None,
) -> _result.AttackResult:
  """FAB: steps to the projection of the iterate onto its nearest linearised boundary, biased
  towards the projection of the input, and back towards the input from each adversarial point.

  At each of the ``steps`` iterations, with the Jacobian of the logit differences ``f_j = z_j
  - z_y`` (``j ≠ y``) at the iterate ``x_k``, the attack picks the boundary ``j`` nearest in
  its linearisation (smallest ``|f_j| / ||∇f_j||``) and projects both ``x_k`` and the input
  ``x`` onto that hyperplane within the box [0, 1] (`project_hyperplane_box`): steps ``d_k``
  and ``d_0``. With ``α = min(||d_k|| / (||d_k|| + ||d_0||), alpha_max)`` the next iterate is
  ``clip((1 - α)(x_k + η d_k) + α (x + η d_0), 0, 1)``. Where it is adversarial it is kept if
  its norm is the smallest so far, and the attack goes on from ``x + β (x_{k+1} - x)``.
  ``restarts`` runs follow one another, the first from the input, the others from random
  points at L2 distance ``min(best norm so far, eps) / 2`` (clipped to the box), keeping the
  smallest adversarial point of all. Targeted (``labels`` the targets), each step projects onto
  the boundary between the target and the likeliest other class at ``x_k`` instead.

  The untargeted algorithm is adv-lib 0.2.8's ``fab`` with ``norm=2`` (Croce & Hein's, as in
  AutoAttack): its projection, its floors, its random starts from the second run on; adv-lib's
  ``restarts=None`` is ``restarts=1``. adv-lib has no targeted FAB (it warns and returns the
  inputs); the targeted boundary choice here is ours. A minimum-norm attack: the returned point
  is the adversarial point of smallest norm found (the clean input where none was, or where the
  input is already adversarial; then no run is made); ``success`` is re-checked on it. With
  ``eps``, AutoAttack's criterion: only a point within ``eps`` counts, and an example stops
  once it has one. A non-finite linearisation gives no step; a point with non-finite logits is
  never adversarial.

  Each step costs one forward pass with ``K - 1`` backward passes (one per other class; one
  when ``targeted``) and one forward pass to check the new iterate. ``num_grads`` counts the
  backward passes, ``extras['num_forwards']`` the forward passes (1 for the clean input plus 2
  per step), besides the two of the final check.

  Float hyperparameters (``eps``, ``alpha_max``, ``beta``, ``eta``) are traced; ``targeted``,
  ``steps``, ``restarts`` and whether ``eps`` is given are static.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    targeted: make the model predict ``labels``.
    steps: iterations per run.
    eps: None (minimum-norm; random starts within radius 1), or the largest norm that counts
      as a success (also the random starts' radius).
    alpha_max: largest weight of the input's projection, in [0, 1].
    beta: factor by which an adversarial iterate's perturbation shrinks, in [0, 1].
    eta: overshoot of the projections (> 0; 1 lands on the linearised boundary).
    restarts: runs per example (the first from the input).
    key: PRNG key (``jax.random.key``) for the random starts, split per example; or a batch
      ``(N,)`` of per-example keys, which makes each example's starts independent of its batch.

  Returns:
    An :class:`AttackResult`; ``num_grads`` is ``(K - 1) steps`` (``steps`` when targeted) per
    run made, and ``extras['num_forwards']`` ``(N,)`` int32 counts the forward passes.

  References:
    Croce & Hein, `Minimally distorted adversarial examples with a fast adaptive boundary
    attack <https://arxiv.org/abs/1907.02044>`_, ICML 2020 (Algorithm 1).
  """
  steps, restarts = _check_options(steps, restarts, eps, alpha_max, beta, eta)
  key = _checks.default_key(key)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  if _num_classes(logits_fn, inputs) < 2:
    raise ValueError('fab_l2 needs a model with at least 2 classes.')
  return _run(
    logits_fn,
    inputs,
    labels,
    key,
    eps,
    alpha_max,
    beta,
    eta,
    mode='targeted' if targeted else 'untargeted',
    steps=steps,
    restarts=restarts,
    num_targets=None,
  )


def fab_targeted_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  steps: int = 100,
  num_targets: int = 9,
  eps: float | None = None,
  alpha_max: float = 0.1,
  beta: float = 0.9,
  eta: float = 1.05,
  restarts: int = 1,
  key: jax.Array | None = None,
) -> _result.AttackResult:
  """FAB-T: targeted FAB towards each of the likeliest other classes, AutoAttack's third attack.

  An untargeted attack (AutoAttack's ``FABAttack(targeted=True, n_target_classes=9)``): for
  each of the ``num_targets`` classes ``t`` other than the label with the highest clean
  logits, most likely first, ``restarts`` `fab_l2` runs project onto the linearised boundary
  ``z_t = z_y`` only (one backward pass per step), counting any misclassified iterate (of any
  class) as adversarial. Returns the adversarial point of smallest norm over all targets'
  runs. With ``eps``, as AutoAttack: only a point within ``eps`` counts, and an example stops
  at the first run that finds one. Random starts, floors and counts as in `fab_l2`.

  adv-lib 0.2.8's ``fab(..., targeted_restarts=True, restarts=num_targets)`` runs the same
  algorithm for ``restarts=1`` (adv-lib has no ``eps`` criterion: it always keeps the smallest
  point); AutoAttack starts each target's search afresh where adv-lib (and this attack) start
  the random starts within the best norm so far.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels.
    targeted: must be False (the attack picks its own targets).
    steps: iterations per run.
    num_targets: how many other classes to target, at most ``num_classes - 1``.
    eps: as in `fab_l2`.
    alpha_max: as in `fab_l2`.
    beta: as in `fab_l2`.
    eta: as in `fab_l2`.
    restarts: runs per target (the first from the input).
    key: PRNG key for the random starts, or a batch ``(N,)`` of per-example keys.

  Returns:
    An :class:`AttackResult`; ``num_grads`` is ``steps`` per run made, and
    ``extras['num_forwards']`` counts the forward passes (1 for the clean input, which also
    ranks the targets, plus 2 per step).

  References:
    Croce & Hein, `Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks <https://arxiv.org/abs/2003.01690>`_, ICML 2020 (Section 4.2).
  """
  if targeted:
    raise ValueError('fab_targeted_l2 is untargeted (it picks its own targets); use fab_l2.')
  steps, restarts = _check_options(steps, restarts, eps, alpha_max, beta, eta)
  num_targets = _checks.check_count('num_targets', num_targets)
  key = _checks.default_key(key)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  num_classes = _num_classes(logits_fn, inputs)
  if num_targets > num_classes - 1:
    raise ValueError(
      f'num_targets must be <= num_classes - 1 = {num_classes - 1}, got {num_targets}.'
    )
  return _run(
    logits_fn,
    inputs,
    labels,
    key,
    eps,
    alpha_max,
    beta,
    eta,
    mode='fab-t',
    steps=steps,
    restarts=restarts,
    num_targets=num_targets,
  )
