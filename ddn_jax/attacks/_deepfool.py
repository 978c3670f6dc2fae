"""DeepFool L2 attack (untargeted), linearising the model over its most likely classes."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _canonical_conv, _checks, _mapping, _numerics, _result

# Floor on a boundary normal's norm (a flat logit difference would divide by zero), and the extra
# distance every step adds to move past the linearised boundary, as in the original code.
_MIN_NORM = 1e-6
_PAST_BOUNDARY = 1e-4


class _State(NamedTuple):
  """Per-example state of the DeepFool loop."""

  x: jax.Array  # (H, W, C) clean input
  y: jax.Array  # int32 label
  steps_taken: jax.Array  # int32, linearisation steps taken
  num_forwards: jax.Array  # int32, linearisations made (the last one may find it adversarial)
  x_adv: jax.Array  # (H, W, C) current point
  r_total: jax.Array  # (H, W, C) sum of the minimal steps, before overshoot and clipping
  others: jax.Array  # (candidates - 1,) int32, competing classes, fixed at the clean input
  done: jax.Array  # bool, the current point is adversarial, or no finite step leaves it


def _step(s: _State, logits_fn, overshoot, *, candidates, levels) -> _State:
  """One DeepFool step of one example (a finished example's step is discarded by the loop)."""
  num_classes = jax.eval_shape(_numerics.single_logits, logits_fn, s.x).shape[-1]
  onehot_y = jax.nn.one_hot(s.y, num_classes, dtype=s.x.dtype)

  def linearise(x_adv, others, first):
    # One forward pass, then one backward pass per competing class (a vmapped VJP): rows are the
    # gradients of z_k - z_y, the normals of the linearised boundaries.
    logits, vjp = jax.vjp(functools.partial(_numerics.single_logits, logits_fn), x_adv)
    # The competing classes are the most likely ones at the clean input (the first call).
    top = jax.lax.top_k(jnp.where(onehot_y > 0, -jnp.inf, logits), candidates - 1)[1]
    others = jnp.where(first, top, others)
    cotangents = jax.nn.one_hot(others, num_classes, dtype=s.x.dtype) - onehot_y
    (normals,) = jax.vmap(vjp)(cotangents)
    return logits, others, cotangents @ logits, normals

  linearise = _canonical_conv.canonicalize_convolutions(linearise)
  logits, others, diffs, normals = linearise(s.x_adv, s.others, s.steps_taken == 0)
  adv = _numerics.is_adversarial(logits, s.y, False)
  norms = jnp.maximum(jax.vmap(_numerics.l2_norm)(normals), _MIN_NORM)
  # Distance to each linearised boundary (diffs < 0 while not adversarial); cross the nearest.
  distances = jnp.abs(diffs) / norms + _PAST_BOUNDARY
  k = jnp.argmin(distances)
  r_total = s.r_total + (distances[k] / norms[k]) * normals[k]
  x_new = _numerics.quantize(jnp.clip(s.x + (1 + overshoot) * r_total, 0, 1), levels)
  # Non-finite logits or gradients give no step; the next one would see the same point, so the
  # example stops there (its backward passes are counted).
  stuck = ~adv & ~(_numerics.all_finite(logits) & _numerics.all_finite(r_total))
  keep = lambda new, old: jnp.where(adv | stuck, old, new)
  return s._replace(
    steps_taken=s.steps_taken + jnp.where(adv, 0, 1),
    num_forwards=s.num_forwards + 1,
    x_adv=keep(x_new, s.x_adv),
    r_total=keep(r_total, s.r_total),
    others=others,
    done=adv | stuck,
  )


def _deepfool_batch(inputs, labels, logits_fn, overshoot, *, steps, candidates, levels):
  """DeepFool on a batch; returns the last points, the steps each example took and its forward
  passes."""
  init = _State(
    x=inputs,
    y=labels,
    steps_taken=jnp.zeros(labels.shape, jnp.int32),
    num_forwards=jnp.zeros(labels.shape, jnp.int32),
    x_adv=inputs,
    r_total=jnp.zeros_like(inputs),
    others=jnp.zeros((len(labels), candidates - 1), jnp.int32),
    done=jnp.zeros(labels.shape, bool),
  )
  step = functools.partial(_step, candidates=candidates, levels=levels)
  body = lambda s: jax.vmap(step, in_axes=(0, None, None))(s, logits_fn, overshoot)
  running = lambda s: ~s.done & (s.steps_taken < steps)
  # Examples need from one to ``steps`` steps: the few slow ones run in a smaller batch.
  s = _mapping.compacting_while_loop(running, body, init)
  return s.x_adv, s.steps_taken, s.num_forwards


@functools.partial(jax.jit, static_argnames=('steps', 'candidates', 'levels'))
def _deepfool(logits_fn, inputs, labels, overshoot, *, steps, candidates, levels):
  batch = functools.partial(_deepfool_batch, steps=steps, candidates=candidates, levels=levels)
  adv, steps_taken, num_forwards = _mapping.map_batches(
    batch, (inputs, labels), (logits_fn, overshoot)
  )
  num_grads = steps_taken * (candidates - 1)
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    num_grads,
    num_forwards=num_forwards,
    targeted=False,
    keep_failed=False,
  )


def deepfool(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  steps: int = 100,
  overshoot: float = 0.02,
  candidates: int | None = None,
  levels: int | None = None,
) -> _result.AttackResult:
  """DeepFool L2 attack: repeatedly crosses the nearest boundary of a linearised model.

  The competing classes are the ``candidates - 1`` most likely classes other than the label at
  the clean input. At each step the logit differences ``f_k = z_k - z_y`` and their gradients
  ``w_k`` are evaluated at the current point; the step is the minimal L2 move onto the nearest
  linearised boundary, ``(|f_k| / ||w_k|| + 1e-4) w_k / ||w_k||``. The steps are summed into
  ``r`` and the current point is ``clip(x + (1 + overshoot) r, 0, 1)`` (quantised to ``levels``
  grey levels if set). An example stops as soon as it is misclassified, or after ``steps`` steps;
  once few examples are still running they continue in a smaller batch
  (`compacting_while_loop`), so slow examples do not keep the whole batch busy. An example
  whose logits or step are not finite stops where it is.

  ``overshoot`` is traced (new values do not recompile); ``steps``, ``candidates`` and
  ``levels`` are static.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels.
    targeted: must be False: DeepFool is an untargeted attack (the argument keeps the attacks'
      common signature).
    steps: maximum number of linearisation steps per example.
    overshoot: relative overshoot of the summed perturbation past the linearised boundary.
    candidates: number of classes linearised, the label included; in ``[2, num_classes]``.
      None (the default) means ``min(10, num_classes)``.
    levels: number of grey levels to quantise every point to; None (the original's behaviour)
      disables quantisation.

  Returns:
    An :class:`AttackResult`. ``num_grads`` counts backward passes: each step takes one forward
    pass and ``candidates - 1`` backward passes (one per logit difference, sharing that forward
    pass), so an example that needed ``k`` steps reports ``k * (candidates - 1)``; the forward
    pass that finds an example adversarial is not counted. With ``candidates = num_classes`` this
    is adv-lib's count of backward passes per example. ``extras['num_forwards']`` counts the
    forward passes: one per step, plus the one that finds the point adversarial (``k + 1``,
    at most ``steps``; the first step's at the clean input also picks the classes).

  Raises:
    ValueError: ``targeted`` is True, or ``candidates`` is outside ``[2, num_classes]``.

  References:
    Moosavi-Dezfooli et al., `DeepFool: a simple and accurate method to fool deep neural networks
    <https://arxiv.org/abs/1511.04599>`_, CVPR 2016 (Algorithm 2).
  """
  if targeted:
    raise ValueError('deepfool is an untargeted attack; targeted=True is not supported.')
  steps = _checks.check_count('steps', steps)
  if candidates is not None:
    candidates = _checks.check_count('candidates', candidates, minimum=2)
  if levels is not None:
    levels = _checks.check_count('levels', levels, minimum=2)
  _checks.check_hyperparameter('overshoot', overshoot, low=0)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  one = jax.ShapeDtypeStruct((1, *inputs.shape[1:]), inputs.dtype)
  num_classes = jax.eval_shape(logits_fn, one).shape[1]
  if candidates is None:
    candidates = min(10, num_classes)
  if candidates > num_classes:
    raise ValueError(
      f'candidates must be <= num_classes = {num_classes} (the label and the classes competing '
      f'with it), got {candidates}.'
    )
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _deepfool(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    overshoot,
    steps=steps,
    candidates=candidates,
    levels=levels,
  )
