"""Auto-PGD (APGD) in the L2 ball, and its targeted-DLR variant APGD-T (AutoAttack's)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddn_jax.attacks import _canonical_conv, _checks, _mapping, _numerics, _result

# adv-lib's (and AutoAttack's) floors on the gradient and perturbation norms, and the DLR's.
_TINY_NORM = 1e-12
_DLR_FLOOR = 1e-8
_MOMENTUM = 0.75
_LOSSES = ('ce', 'dlr')
_REDUCE_RULES = ('paper', 'adv_lib')


class _State(NamedTuple):
  """Per-example state of one APGD run."""

  x_adv: jax.Array  # (H, W, C) current point
  x_old: jax.Array  # (H, W, C) the point before it (for the momentum)
  grad: jax.Array  # (H, W, C) the loss's gradient at x_adv (at x_best after a restart from it)
  step_size: jax.Array  # L2 length of the gradient step
  x_best: jax.Array  # (H, W, C) point of the highest loss so far
  grad_best: jax.Array  # (H, W, C) the gradient there
  loss_best: jax.Array  # the highest loss so far (-inf before a finite one)
  losses: jax.Array  # (steps,) the loss at each iterate (0 before it is reached)
  found: jax.Array  # bool, some iterate was adversarial
  best_adv: jax.Array  # (H, W, C) the last adversarial iterate (x before one)
  loss_last_check: jax.Array  # loss_best at the previous checkpoint
  reduced_last_check: jax.Array  # bool, the step size was halved at the previous checkpoint


def _checkpoints(steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Per iteration: its index, the length of the interval it ends (0 if it ends none), and
  whether it comes after the first checkpoint.

  The first interval is 22% of ``steps``, each next one 3% shorter, none shorter than 6%: the
  checkpoints p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j - p_{j-1} - 0.03, 0.06), as adv-lib
  and AutoAttack round them.
  """
  length, shorter, shortest = (max(int(f * steps), 1) for f in (0.22, 0.03, 0.06))
  check_length = np.zeros(steps, np.int32)
  since = 0
  for i in range(steps):
    since += 1
    if since == length:
      check_length[i] = length
      length, since = max(length - shorter, shortest), 0
  after_first = np.cumsum(check_length > 0) - (check_length > 0) > 0
  return np.arange(steps, dtype=np.int32), check_length, after_first


def _loss_fn(logits_fn, y, target, loss, num_classes):
  """Per-example ``x -> (loss, logits)``, the loss APGD ascends.

  ``y`` is the label whose logit is decreased (untargeted) and ``target`` the class whose logit
  is increased, or None. Untargeted: the cross-entropy of ``y``, or minus the DLR
  ``(z_y - max_{j≠y} z_j) / (z_π1 - z_π3)``. Targeted with ``y`` None (adv-lib's, which has only
  the target): minus the cross-entropy of ``target``, or ``(z_t - max_{j≠t} z_j) /
  (z_π1 - (z_π3 + z_π4) / 2)``. Targeted with both (APGD-T, AutoAttack's): the paper's
  ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2)``.
  """

  def fn(x):
    z = _numerics.single_logits(logits_fn, x)
    if loss == 'ce':
      if target is None:
        return optax.softmax_cross_entropy_with_integer_labels(z, y), z
      return -optax.softmax_cross_entropy_with_integer_labels(z, target), z
    top = jax.lax.top_k(z, 3 if target is None else 4)[0]
    if target is None:
      onehot = jax.nn.one_hot(y, num_classes, dtype=z.dtype)
      margin = jnp.sum(z * onehot) - jnp.max(jnp.where(onehot > 0, -jnp.inf, z))
      return -margin / (top[0] - top[2] + _DLR_FLOOR), z
    scale = top[0] - (top[2] + top[3]) / 2 + _DLR_FLOOR
    z_t = jnp.sum(z * jax.nn.one_hot(target, num_classes, dtype=z.dtype))
    if y is None:
      onehot = jax.nn.one_hot(target, num_classes, dtype=z.dtype)
      return (z_t - jnp.max(jnp.where(onehot > 0, -jnp.inf, z))) / scale, z
    z_y = jnp.sum(z * jax.nn.one_hot(y, num_classes, dtype=z.dtype))
    return -(z_y - z_t) / scale, z

  return fn


def _project(x, x_adv, eps):
  """adv-lib's L2 projection of ``x_adv`` onto the ε-ball around ``x``, then onto [0, 1]."""
  delta = x_adv - x
  norm = _numerics.l2_norm(delta) + _TINY_NORM
  return jnp.clip(x + delta * (jnp.minimum(norm, eps) / norm), 0, 1)


def _apgd_run(x, key, loss_and_grad, is_adv, eps, rho, *, steps, reduce_rule, random_start):
  """One APGD run of ``steps`` iterations on one example, from a random start on the ε-sphere
  (or from ``x``). Returns the final `_State`; ``steps + 1`` gradient evaluations.
  """
  x_adv = x
  if random_start:
    direction = jax.random.normal(key, x.shape, x.dtype)
    x_adv = jnp.clip(x + direction * (eps / _numerics.l2_norm(direction)), 0, 1)
  (loss, logits), grad = loss_and_grad(x_adv)
  loss = jnp.where(jnp.isfinite(loss), loss, -jnp.inf)
  found = is_adv(logits)
  init = _State(
    x_adv=x_adv,
    x_old=x_adv,
    grad=grad,
    step_size=2 * eps,
    x_best=x_adv,
    grad_best=grad,
    loss_best=loss,
    losses=jnp.zeros((steps,), x.dtype),
    found=found,
    best_adv=jnp.where(found, x_adv, x),
    loss_last_check=loss,
    reduced_last_check=jnp.zeros((), bool),
  )

  def step(s: _State, schedule) -> tuple[_State, None]:
    i, check_length, after_first = schedule
    a = jnp.where(i > 0, _MOMENTUM, 1.0).astype(x.dtype)
    grad_norm = _numerics.l2_norm(s.grad)
    # A non-finite gradient gives no step (adv-lib would carry its NaN into the point).
    usable = jnp.isfinite(grad_norm)
    scale = s.step_size / (jnp.where(usable, grad_norm, 0) + _TINY_NORM)
    move = jnp.where(usable, s.grad * scale, 0)
    z = _project(x, s.x_adv + move, eps)
    # Momentum: x_k + a (z - x_k) + (1 - a) (x_k - x_{k-1}), projected again.
    x_adv = _project(x, z + (1 - a) * (s.x_adv - z) + (1 - a) * (s.x_adv - s.x_old), eps)
    (loss, logits), grad = loss_and_grad(x_adv)
    adv = is_adv(logits)
    losses = s.losses.at[i].set(loss)
    better = loss > s.loss_best  # False for a NaN loss: no non-finite point is kept.
    x_best = jnp.where(better, x_adv, s.x_best)
    grad_best = jnp.where(better, grad, s.grad_best)
    loss_best = jnp.where(better, loss, s.loss_best)
    # At a checkpoint: halve the step size where at most a fraction rho of the interval's steps
    # increased the loss (the step before the first one compares with losses[-1], 0 until the
    # last step, as in adv-lib and AutoAttack), or where the step size was not halved at the
    # last checkpoint and the best loss did not improve since; restart those from the best point.
    window = (i - jnp.arange(steps) < check_length) & (jnp.arange(steps) <= i)
    increases = jnp.sum(window & (losses > jnp.roll(losses, 1)))
    oscillates = increases <= check_length * rho
    if reduce_rule == 'paper':
      stalled = s.loss_last_check >= loss_best
    else:  # adv-lib 0.2.8 keeps loss_best itself, not a copy, from its first checkpoint on.
      stalled = after_first | (s.loss_last_check >= loss_best)
    at_check = check_length > 0
    reduce = at_check & (oscillates | (~s.reduced_last_check & stalled))
    new = _State(
      x_adv=jnp.where(reduce, x_best, x_adv),
      x_old=s.x_adv,
      grad=jnp.where(reduce, grad_best, grad),
      step_size=jnp.where(reduce, s.step_size / 2, s.step_size),
      x_best=x_best,
      grad_best=grad_best,
      loss_best=loss_best,
      losses=losses,
      found=s.found | adv,
      best_adv=jnp.where(adv, x_adv, s.best_adv),
      loss_last_check=jnp.where(at_check, loss_best, s.loss_last_check),
      reduced_last_check=jnp.where(at_check, reduce, s.reduced_last_check),
    )
    return new, None

  schedule = tuple(jnp.asarray(a) for a in _checkpoints(steps))
  return jax.lax.scan(step, init, schedule)[0]


def _apgd_single(
  x,
  y,
  key,
  logits_fn,
  eps,
  rho,
  *,
  targeted,
  steps,
  loss,
  restarts,
  num_targets,
  reduce_rule,
  random_start,
):
  """APGD (or APGD-T, with ``num_targets``) on one example; returns ``(point, num_grads)``.

  Runs follow one another until one finds an adversarial point: ``restarts`` of them, for each
  of the ``num_targets`` targets in turn with APGD-T. The point is the adversarial iterate of
  that run (its last one, as adv-lib returns), else the point of the highest loss of all runs.
  """
  num_classes = jax.eval_shape(_numerics.single_logits, logits_fn, x).shape[-1]
  eps, rho = jnp.asarray(eps, x.dtype), jnp.asarray(rho, x.dtype)
  if num_targets is None:
    runs, targets = restarts, None
    is_adv = lambda logits: _numerics.is_adversarial(logits, y, targeted)
  else:
    # The most likely classes other than the label, by the clean logits.
    clean = _numerics.single_logits(logits_fn, x)
    others = jnp.where(jnp.arange(num_classes) == y, -jnp.inf, clean)
    targets = jax.lax.top_k(others, num_targets)[1]
    runs = restarts * num_targets
    is_adv = lambda logits: _numerics.is_adversarial(logits, y, False)

  def run(carry):
    r, _, adv, best, best_loss, num_grads = carry
    if targets is None:  # labels are the targets when targeted
      fn = _loss_fn(logits_fn, *((None, y) if targeted else (y, None)), loss, num_classes)
    else:
      fn = _loss_fn(logits_fn, y, targets[r // restarts], loss, num_classes)
    loss_and_grad = _canonical_conv.canonicalize_convolutions(jax.value_and_grad(fn, has_aux=True))
    s = _apgd_run(
      x,
      jax.random.fold_in(key, r),
      loss_and_grad,
      is_adv,
      eps,
      rho,
      steps=steps,
      reduce_rule=reduce_rule,
      random_start=random_start,
    )
    better = s.loss_best > best_loss
    return (
      r + 1,
      s.found,
      jnp.where(s.found, s.best_adv, adv),
      jnp.where(better, s.x_best, best),
      jnp.where(better, s.loss_best, best_loss),
      num_grads + steps + 1,
    )

  init = (
    jnp.zeros((), jnp.int32),
    jnp.zeros((), bool),
    x,
    x,
    jnp.asarray(-jnp.inf, x.dtype),
    jnp.zeros((), jnp.int32),
  )
  _, found, adv, best, _, num_grads = jax.lax.while_loop(lambda c: (c[0] < runs) & ~c[1], run, init)
  return jnp.where(found, adv, best), num_grads


@functools.partial(
  jax.jit,
  static_argnames=(
    'targeted',
    'steps',
    'loss',
    'restarts',
    'num_targets',
    'reduce_rule',
    'random_start',
  ),
)
def _apgd_l2(
  logits_fn,
  inputs,
  labels,
  key,
  eps,
  rho,
  *,
  targeted,
  steps,
  loss,
  restarts,
  num_targets,
  reduce_rule,
  random_start,
):
  single = functools.partial(
    _apgd_single,
    targeted=targeted,
    steps=steps,
    loss=loss,
    restarts=restarts,
    num_targets=num_targets,
    reduce_rule=reduce_rule,
    random_start=random_start,
  )
  keys = _checks.example_keys(key, inputs.shape[0])
  adv, num_grads = _mapping.map_examples(single, (inputs, labels, keys), (logits_fn, eps, rho))
  # APGD-T's forward pass at the clean input picks its targets.
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    num_grads,
    num_forwards=num_grads + (num_targets is not None),
    targeted=targeted,
    keep_failed=True,
  )


def _num_classes(logits_fn, inputs):
  example = jax.ShapeDtypeStruct((1, *inputs.shape[1:]), inputs.dtype)
  return jax.eval_shape(logits_fn, example).shape[-1]


def _check_options(eps, rho, steps, reduce_rule):
  _checks.check_hyperparameter('eps', eps, low=0)
  _checks.check_hyperparameter('rho', rho, low=0, high=1)
  if reduce_rule not in _REDUCE_RULES:
    raise ValueError(f"reduce_rule must be 'paper' or 'adv_lib', got {reduce_rule!r}.")
  return _checks.check_count('steps', steps)


def apgd_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  eps: float,
  steps: int = 100,
  loss: str = 'dlr',
  restarts: int = 1,
  rho: float = 0.75,
  reduce_rule: str = 'paper',
  random_start: bool = True,
  key: jax.Array | None = None,
) -> _result.AttackResult:
  """Auto-PGD in the L2 ball of radius ``eps``: PGD with momentum and an adaptive step size.

  Each run starts at a random point on the ε-sphere around the input (clipped to [0, 1]),
  drawn per example from ``key`` (or at the input, without ``random_start``), with step size
  ``2 eps``. Each of its ``steps`` iterations
  takes the step ``z = P(x_k + η ∇L / ||∇L||)`` and the momentum step ``x_{k+1} = P(x_k +
  0.75 (z - x_k) + 0.25 (x_k - x_{k-1}))`` (none at the first iteration), P the projection onto
  the ε-ball and then [0, 1]. At the checkpoints (after 22% of the steps, then intervals 3%
  shorter, at least 6%) the step size is halved, and the run restarts from its best point,
  where at most a fraction ``rho`` of the interval's steps increased the loss, or where the step
  size was not halved at the previous checkpoint and the best loss has not improved since.
  ``restarts`` runs follow one another, from new random starts, until one finds an adversarial
  point. Losses: ``'ce'`` (cross-entropy) or ``'dlr'``, the difference of logits ratio
  ``-(z_y - max_{j≠y} z_j) / (z_π1 - z_π3)`` (z_π sorted logits); targeted, minus the target's
  cross-entropy or ``(z_t - max_{j≠t} z_j) / (z_π1 - (z_π3 + z_π4) / 2)`` (adv-lib's targeted
  DLR, which needs no true label).

  The algorithm is adv-lib 0.2.8's ``apgd`` with ``norm=2`` (its L2 projection with norm floor
  1e-12, its step-size start, its checkpoints, its last adversarial iterate), except that
  ``reduce_rule='paper'`` compares the best loss with its value at the previous checkpoint as
  the paper and AutoAttack do; ``'adv_lib'`` reproduces adv-lib 0.2.8, whose record of that
  value follows the running best loss from its first checkpoint on, so that it then halves the
  step size at least at every other checkpoint. A bounded attack: the returned point is an
  adversarial iterate if a run found one (the last adversarial iterate of the first run that
  found one), else the point of highest loss over the runs (the clean input where the model's
  logits there are not finite); ``success`` is re-checked on it. A non-finite gradient gives no
  step; a non-finite loss is never the best.

  Float hyperparameters (``eps``, ``rho``) are traced; ``targeted``, ``steps``, ``loss``,
  ``restarts`` and ``reduce_rule`` are static.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    targeted: make the model predict ``labels``.
    eps: radius of the L2 ball.
    steps: iterations per run.
    loss: ``'dlr'`` (needs at least 3 classes, 4 when targeted) or ``'ce'``.
    restarts: most runs per example.
    rho: fraction of loss-increasing steps below which a checkpoint halves the step size.
    reduce_rule: ``'paper'`` or ``'adv_lib'`` (see above).
    random_start: start each run at a random point on the ε-sphere (as adv-lib always does);
      else at the input, where every run is the same (then one run is enough).
    key: PRNG key (``jax.random.key``) for the random starts, split per example; or a batch
      ``(N,)`` of per-example keys, which makes each example's starts independent of its batch.

  Returns:
    An :class:`AttackResult`; ``num_grads`` and ``extras['num_forwards']`` are ``steps + 1``
    per run made.

  References:
    Croce & Hein, `Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks <https://arxiv.org/abs/2003.01690>`_, ICML 2020 (Algorithm 1).
  """
  steps = _check_options(eps, rho, steps, reduce_rule)
  restarts = _checks.check_count('restarts', restarts)
  if loss not in _LOSSES:
    raise ValueError(f"loss must be 'ce' or 'dlr', got {loss!r}.")
  key = _checks.default_key(key)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  num_classes = _num_classes(logits_fn, inputs)
  needed = 4 if targeted else 3
  if loss == 'dlr' and num_classes < needed:
    raise ValueError(
      f"loss='dlr' needs at least {needed} classes{' when targeted' if targeted else ''}, the "
      f"model has {num_classes}; use loss='ce'."
    )
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _apgd_l2(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    key,
    eps,
    rho,
    targeted=bool(targeted),
    steps=steps,
    loss=loss,
    restarts=restarts,
    num_targets=None,
    reduce_rule=reduce_rule,
    random_start=bool(random_start),
  )


def apgd_targeted_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  eps: float,
  steps: int = 100,
  num_targets: int = 9,
  rho: float = 0.75,
  reduce_rule: str = 'paper',
  random_start: bool = True,
  key: jax.Array | None = None,
) -> _result.AttackResult:
  """APGD-T: APGD with the targeted DLR loss against each of the likeliest other classes.

  An untargeted attack (AutoAttack's APGD-T): for each of the ``num_targets`` classes other
  than the label with the highest clean logits, most likely first, one `apgd_l2` run ascends
  the paper's targeted DLR ``-(z_y - z_t) / (z_π1 - (z_π3 + z_π4) / 2)`` towards target
  ``t``, until a run finds a misclassified point (of any class, as AutoAttack counts success).
  Returns as `apgd_l2`, the highest loss taken over all targets' runs.

  adv-lib 0.2.8's ``apgd_targeted`` differs in three ways: its loss is ``(z_t - max_{j≠t} z_j) /
  (...)``, the same until the point is misclassified; it counts a run's success only when the
  target is reached, and returns the clean input where none was; it skips the clean prediction
  rather than the label (the same for correctly classified inputs).

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``; at least 4 classes.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels.
    targeted: must be False (the attack picks its own targets).
    eps: radius of the L2 ball (traced).
    steps: iterations per target.
    num_targets: how many other classes to target, at most ``num_classes - 1``.
    rho: as in `apgd_l2`.
    reduce_rule: as in `apgd_l2`.
    random_start: as in `apgd_l2`.
    key: PRNG key for the random starts, or a batch ``(N,)`` of per-example keys.

  Returns:
    An :class:`AttackResult`; ``num_grads`` is ``steps + 1`` per target attacked, and
    ``extras['num_forwards']`` one more (the forward pass that ranks the targets).

  References:
    Croce & Hein, `Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks <https://arxiv.org/abs/2003.01690>`_, ICML 2020 (Section 4.2).
  """
  if targeted:
    raise ValueError('apgd_targeted_l2 is untargeted (it picks its own targets); use apgd_l2.')
  steps = _check_options(eps, rho, steps, reduce_rule)
  num_targets = _checks.check_count('num_targets', num_targets)
  key = _checks.default_key(key)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  num_classes = _num_classes(logits_fn, inputs)
  if num_classes < 4:
    raise ValueError(f'apgd_targeted_l2 needs at least 4 classes, the model has {num_classes}.')
  if num_targets > num_classes - 1:
    raise ValueError(
      f'num_targets must be <= num_classes - 1 = {num_classes - 1}, got {num_targets}.'
    )
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _apgd_l2(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    key,
    eps,
    rho,
    targeted=False,
    steps=steps,
    loss='dlr',
    restarts=1,
    num_targets=num_targets,
    reduce_rule=reduce_rule,
    random_start=bool(random_start),
  )
