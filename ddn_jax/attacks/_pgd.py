"""Projected Gradient Descent in the L2 ball (the Madry et al. attack)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _checks, _mapping, _numerics, _result


def _random_in_ball(key, x, eps):
  """A point uniformly distributed in the L2 ball of radius ``eps`` around 0."""
  direction_key, radius_key = jax.random.split(key)
  radius = eps * jax.random.uniform(radius_key, dtype=x.dtype) ** (1 / x.size)
  return radius * _numerics.random_unit(direction_key, x)


def _pgd_single(x, y, key, logits_fn, eps, step_size, *, targeted, steps, random_start):
  loss_and_grad = _numerics.loss_and_grad_fn(logits_fn, targeted)
  zero = jnp.zeros_like(x)
  start = jnp.clip(x + _random_in_ball(key, x, eps), 0, 1) if random_start else x

  def step(x_adv, _):
    _, g = loss_and_grad(x_adv, y)
    # A zero or non-finite gradient gives no step.
    x_adv = x_adv + step_size * _numerics.normalize(g, zero)
    return jnp.clip(x + _numerics.project_ball(x_adv - x, eps), 0, 1), None

  return jax.lax.scan(step, start, None, length=steps)[0]


@functools.partial(jax.jit, static_argnames=('targeted', 'steps', 'random_start'))
def _pgd_l2(logits_fn, inputs, labels, key, eps, step_size, *, targeted, steps, random_start):
  single = functools.partial(_pgd_single, targeted=targeted, steps=steps, random_start=random_start)
  keys = _checks.example_keys(key, inputs.shape[0])
  adv = _mapping.map_examples(single, (inputs, labels, keys), (logits_fn, eps, step_size))
  num_grads = jnp.full(inputs.shape[:1], steps, jnp.int32)
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    num_grads,
    num_forwards=num_grads,
    targeted=targeted,
    keep_failed=True,
  )


def pgd_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  eps: float,
  steps: int,
  step_size: float,
  random_start: bool = True,
  key: jax.Array | None = None,
  targeted: bool = False,
) -> _result.AttackResult:
  """Projected gradient ascent of the cross-entropy inside the L2 ball of radius ``eps``.

  Starts from a point drawn uniformly in the ball (``random_start``) or from the input, then
  takes ``steps`` steps of L2 size ``step_size`` along the normalised gradient, each followed by
  projection onto the ball and clipping to [0, 1]. A bounded attack: the last iterate is
  returned whether or not it is adversarial (the clean input if the model's logits there are
  not finite), and ``success`` says which ones are. A zero or non-finite gradient gives no step.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    eps: radius of the L2 ball (traced).
    steps: number of gradient steps (static).
    step_size: L2 length of each step (traced).
    random_start: start from a uniform random point in the ball.
    key: PRNG key (``jax.random.key``) for the random start, split per example; or a batch
      ``(N,)`` of per-example keys, which makes each example's start independent of its batch.
    targeted: make the model predict ``labels``.

  Returns:
    An :class:`AttackResult`; ``num_grads`` and ``extras['num_forwards']`` are ``steps``.

  References:
    Madry et al., `Towards Deep Learning Models Resistant to Adversarial Attacks
    <https://arxiv.org/abs/1706.06083>`_, ICLR 2018.
  """
  steps = _checks.check_count('steps', steps)
  _checks.check_hyperparameter('eps', eps, low=0)
  _checks.check_hyperparameter('step_size', step_size, low=0)
  key = _checks.default_key(key)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _pgd_l2(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    key,
    eps,
    step_size,
    targeted=bool(targeted),
    steps=steps,
    random_start=bool(random_start),
  )
