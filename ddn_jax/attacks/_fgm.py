"""Fast Gradient Method, L2 version (one step)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _checks, _mapping, _numerics, _result


def _fgm_single(x, y, logits_fn, eps, *, targeted):
  _, g = _numerics.loss_and_grad_fn(logits_fn, targeted)(x, y)
  # A zero or non-finite gradient gives no direction: the example stays where it is.
  return jnp.clip(x + eps * _numerics.normalize(g, jnp.zeros_like(g)), 0, 1)


@functools.partial(jax.jit, static_argnames=('targeted',))
def _fgm_l2(logits_fn, inputs, labels, eps, *, targeted):
  single = functools.partial(_fgm_single, targeted=targeted)
  adv = _mapping.map_examples(single, (inputs, labels), (logits_fn, eps))
  num_grads = jnp.ones(inputs.shape[:1], jnp.int32)
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


def fgm_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  eps: float,
  targeted: bool = False,
) -> _result.AttackResult:
  """One step of size ``eps`` along the L2-normalised gradient of the cross-entropy, clipped.

  ``x' = clip(x + ε ∇J / ||∇J||, 0, 1)`` (the paper's Eq. 4); targeted attacks step against the
  gradient of the target's cross-entropy. A bounded attack: ``adv`` is returned whether or not
  it is adversarial, and ``success`` says which ones are.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    eps: L2 size of the step (traced).
    targeted: make the model predict ``labels``.

  Returns:
    An :class:`AttackResult`; ``num_grads`` and ``extras['num_forwards']`` are 1. Where the gradient is zero or not finite the
    example stays at its clean input.

  References:
    Goodfellow et al., `Explaining and Harnessing Adversarial Examples
    <https://arxiv.org/abs/1412.6572>`_, ICLR 2015; the L2 form is Eq. 4 of Rony et al. 2019.
  """
  _checks.check_hyperparameter('eps', eps, low=0)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _fgm_l2(_checks.as_pytree_fn(logits_fn), inputs, labels, eps, targeted=bool(targeted))
