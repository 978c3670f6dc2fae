"""What every attack returns, and the final check that assembles it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ddn_jax.attacks._numerics import LogitsFn, all_finite, batch_l2_norm, is_adversarial


class AttackResult(NamedTuple):
  """What every attack returns; all fields are batched along the first axis.

  Attributes:
    adv: ``(N, H, W, C)`` adversarial images, finite and in ``[0, 1]``. Minimum-norm attacks
      return the clean input for an example they failed on. Bounded attacks (FGM, PGD, DDN with
      ``eps``) return their point in the ε-ball whether or not it is adversarial, since that
      point is what adversarial training uses, except where the model's logits there are not
      finite: then the clean input. ``success`` says which ones are adversarial.
    l2: ``(N,)`` L2 norm of ``adv - inputs``, computed from the returned ``adv``.
    success: ``(N,)`` bool, whether ``logits_fn(adv)`` is adversarial (all logits finite, and
      misclassified, or classified as the target when ``targeted``), re-checked on the returned
      ``adv``.
    num_grads: ``(N,)`` int32, backward passes the algorithm spent on each example.
    model_finite: ``(N,)`` bool, whether the model's logits at the clean input are all finite
      (None for a result built by hand: taken as all finite). Where they are not, the model
      has no prediction to attack: evaluations report these examples and count none of them
      as a success, nor as correct.
    extras: per-example ``(N,)`` outputs by name: ``'num_forwards'`` (int32, every attack: the
      forward passes of the model the algorithm made on each example), and attack-specific
      ones, e.g. C&W's ``'best_const'``.

  A query, as AttackBench counts them, is one forward or one backward pass of the model on one
  example: a ``value_and_grad`` of a loss of the logits is 1 forward and 1 backward, a Jacobian
  of ``k`` logit differences 1 forward and ``k`` backward. The forward passes of `finalize`'s
  re-check of the result are the library's evaluation, not the attack's, and are not counted
  (AttackBench evaluates the returned points outside its query counter too). The counts are the
  algorithm's: work the compiled program does and discards is not a query (the lanes of finished
  examples in a vmapped loop, the VJPs DeepFool evaluates at the step that finds its point
  adversarial, C&W's gradient at an iteration that ends its search step), as an eager
  implementation such as adv-lib's would not make those passes.

  References:
    Cinà et al., `AttackBench: Evaluating Gradient-based Attacks for Adversarial Examples
    <https://arxiv.org/abs/2404.19460>`_, AAAI 2025 (queries: forward plus backward passes).
  """

  adv: jax.Array
  l2: jax.Array
  success: jax.Array
  num_grads: jax.Array
  model_finite: jax.Array | None = None
  extras: dict[str, jax.Array] = {}  # noqa: RUF012 (never mutated; attacks pass their own)

  @property
  def num_queries(self) -> jax.Array:
    """``(N,)`` int32 AttackBench queries per example: ``num_grads + extras['num_forwards']``.

    Raises:
      ValueError: a result built by hand without ``extras['num_forwards']``.
    """
    if 'num_forwards' not in self.extras:
      raise ValueError(
        "this result has no extras['num_forwards'] (every attack sets it; a result built by "
        'hand must too) to count its queries.'
      )
    return self.num_grads + self.extras['num_forwards']


def finalize(
  logits_fn: LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  adv: jax.Array,
  num_grads: jax.Array,
  *,
  num_forwards: jax.Array,
  targeted: bool,
  keep_failed: bool,
  extras: dict[str, jax.Array] | None = None,
) -> AttackResult:
  """Re-checks ``adv`` on the model and assembles the batched :class:`AttackResult`.

  Success needs a finite image and finite logits (`is_adversarial`); a non-finite image is
  never kept (the clean input replaces it), so no attack returns one.

  Args:
    num_grads: ``(N,)`` backward passes the attack made per example.
    num_forwards: ``(N,)`` forward passes the attack made per example (this re-check's are not
      counted), as ``extras['num_forwards']``.
    keep_failed: bounded attacks keep a non-adversarial point (not one where the model's
      logits are non-finite); minimum-norm attacks reset a failed example to its clean input.
    extras: attack-specific per-example outputs for `AttackResult.extras`.
  """
  clean_logits = logits_fn(inputs)
  adv_logits = logits_fn(adv)
  finite_image = all_finite(adv, axis=(1, 2, 3))
  success = finite_image & is_adversarial(adv_logits, labels, targeted)
  # Each norm is computed as it always was, so a finite model's results stay bit-identical.
  if keep_failed:
    keep = finite_image & all_finite(adv_logits, axis=-1)
    success = jnp.where(keep, success, is_adversarial(clean_logits, labels, targeted))
    l2 = jnp.where(keep, batch_l2_norm(adv - inputs), 0)  # the clean input's norm is 0
    adv = jnp.where(keep[:, None, None, None], adv, inputs)
  else:
    adv = jnp.where(success[:, None, None, None], adv, inputs)
    l2 = batch_l2_norm(adv - inputs)
  return AttackResult(
    adv=adv,
    l2=l2,
    success=success,
    num_grads=num_grads.astype(jnp.int32),
    model_finite=all_finite(clean_logits, axis=-1),
    extras={'num_forwards': jnp.asarray(num_forwards, jnp.int32), **(extras or {})},
  )


def empty_result(inputs: jax.Array, extras: Sequence[str] = ()) -> AttackResult:
  """The result of an attack on an empty batch ``(0, H, W, C)``: no model call at all.

  ``extras`` names the attack-specific float extras; ``'num_forwards'`` is always there.
  """
  zeros = lambda dtype: jnp.zeros((0,), dtype)
  return AttackResult(
    adv=inputs,
    l2=zeros(inputs.dtype),
    success=zeros(bool),
    num_grads=zeros(jnp.int32),
    model_finite=zeros(bool),
    extras={'num_forwards': zeros(jnp.int32), **{name: zeros(inputs.dtype) for name in extras}},
  )
