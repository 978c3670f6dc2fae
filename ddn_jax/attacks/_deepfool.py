"""DeepFool L2 attack (untargeted), linearising the model over its most likely classes."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ddn_jax.attacks import _base, _canonical_conv

# Floor on a boundary normal's norm (a flat logit difference would divide by zero), and the extra
# distance every step adds to move past the linearised boundary, as in the original code.
_MIN_NORM = 1e-6
_PAST_BOUNDARY = 1e-4


class _State(NamedTuple):
  """Per-example state of the DeepFool loop."""

  steps_taken: jax.Array  # int32, linearisation steps taken
  x_adv: jax.Array  # (H, W, C) current point
  r_total: jax.Array  # (H, W, C) sum of the minimal steps, before overshoot and clipping
  others: jax.Array  # (candidates - 1,) int32, competing classes, fixed at the clean input
  done: jax.Array  # bool, the current point is adversarial


def _deepfool_single(x, y, logits_fn, overshoot, *, steps, candidates, levels):
  """DeepFool on one example ``x`` ``(H, W, C)``; returns its last point and steps taken."""
  num_classes = jax.eval_shape(_base.single_logits, logits_fn, x).shape[-1]
  onehot_y = jax.nn.one_hot(y, num_classes, dtype=x.dtype)

  def linearise(x_adv, others, first):
    # One forward pass, then one backward pass per competing class (a vmapped VJP): rows are the
    # gradients of z_k - z_y, the normals of the linearised boundaries.
    logits, vjp = jax.vjp(functools.partial(_base.single_logits, logits_fn), x_adv)
    # The competing classes are the most likely ones at the clean input (the first call).
    top = jax.lax.top_k(jnp.where(onehot_y > 0, -jnp.inf, logits), candidates - 1)[1]
    others = jnp.where(first, top, others)
    cotangents = jax.nn.one_hot(others, num_classes, dtype=x.dtype) - onehot_y
    (normals,) = jax.vmap(vjp)(cotangents)
    return logits, others, cotangents @ logits, normals

  linearise = _canonical_conv.canonicalize_convolutions(linearise)

  def body(s: _State) -> _State:
    logits, others, diffs, normals = linearise(s.x_adv, s.others, s.steps_taken == 0)
    adv = _base.is_adversarial(logits, y, False)
    norms = jnp.maximum(jax.vmap(_base.l2_norm)(normals), _MIN_NORM)
    # Distance to each linearised boundary (diffs < 0 while not adversarial); cross the nearest.
    distances = jnp.abs(diffs) / norms + _PAST_BOUNDARY
    k = jnp.argmin(distances)
    r_total = s.r_total + (distances[k] / norms[k]) * normals[k]
    x_new = _base.quantize(jnp.clip(x + (1 + overshoot) * r_total, 0, 1), levels)
    keep = lambda new, old: jnp.where(adv, old, new)
    return _State(
      steps_taken=s.steps_taken + jnp.where(adv, 0, 1),
      x_adv=keep(x_new, s.x_adv),
      r_total=keep(r_total, s.r_total),
      others=others,
      done=adv,
    )

  init = _State(
    steps_taken=jnp.zeros((), jnp.int32),
    x_adv=x,
    r_total=jnp.zeros_like(x),
    others=jnp.zeros((candidates - 1,), jnp.int32),
    done=jnp.zeros((), bool),
  )
  # Under vmap the loop runs until every example is done; finished ones are frozen by a select.
  s = jax.lax.while_loop(lambda s: ~s.done & (s.steps_taken < steps), body, init)
  return s.x_adv, s.steps_taken


@functools.partial(jax.jit, static_argnames=('steps', 'candidates', 'levels'))
def _deepfool(logits_fn, inputs, labels, overshoot, *, steps, candidates, levels):
  single = functools.partial(_deepfool_single, steps=steps, candidates=candidates, levels=levels)
  adv, steps_taken = _base.map_examples(single, (inputs, labels), (logits_fn, overshoot))
  num_grads = steps_taken * (candidates - 1)
  return _base.finalize(
    logits_fn, inputs, labels, adv, num_grads, targeted=False, keep_failed=False
  )


def deepfool(
  logits_fn: _base.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  steps: int = 100,
  overshoot: float = 0.02,
  candidates: int = 10,
  levels: int | None = None,
) -> _base.AttackResult:
  """DeepFool L2 attack: repeatedly crosses the nearest boundary of a linearised model.

  The competing classes are the ``candidates - 1`` most likely classes other than the label at
  the clean input. At each step the logit differences ``f_k = z_k - z_y`` and their gradients
  ``w_k`` are evaluated at the current point; the step is the minimal L2 move onto the nearest
  linearised boundary, ``(|f_k| / ||w_k|| + 1e-4) w_k / ||w_k||``. The steps are summed into
  ``r`` and the current point is ``clip(x + (1 + overshoot) r, 0, 1)`` (quantised to ``levels``
  grey levels if set). An example stops as soon as it is misclassified, or after ``steps`` steps;
  the whole batch stops when every example has.

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
    levels: number of grey levels to quantise every point to; None (the original's behaviour)
      disables quantisation.

  Returns:
    An :class:`AttackResult`. ``num_grads`` counts backward passes: each step takes one forward
    pass and ``candidates - 1`` backward passes (one per logit difference, sharing that forward
    pass), so an example that needed ``k`` steps reports ``k * (candidates - 1)``; the forward
    pass that finds an example adversarial is not counted. With ``candidates = num_classes`` this
    is adv-lib's count of backward passes per example.

  Raises:
    ValueError: ``targeted`` is True, or ``candidates`` is outside ``[2, num_classes]``.

  References:
    Moosavi-Dezfooli et al., `DeepFool: a simple and accurate method to fool deep neural networks
    <https://arxiv.org/abs/1511.04599>`_, CVPR 2016 (Algorithm 2).
  """
  if targeted:
    raise ValueError('deepfool is an untargeted attack; targeted=True is not supported.')
  steps = _base.check_count('steps', steps)
  candidates = _base.check_count('candidates', candidates, minimum=2)
  if levels is not None:
    levels = _base.check_count('levels', levels, minimum=2)
  _base.check_hyperparameter('overshoot', overshoot, low=0)
  inputs, labels = _base.validate_inputs(logits_fn, inputs, labels)
  num_classes = jax.eval_shape(logits_fn, jax.ShapeDtypeStruct(inputs.shape, inputs.dtype)).shape[1]
  if candidates > num_classes:
    raise ValueError(
      f'candidates must be <= num_classes = {num_classes} (the label and the classes competing '
      f'with it), got {candidates}.'
    )
  return _deepfool(
    _base.as_pytree_fn(logits_fn),
    inputs,
    labels,
    overshoot,
    steps=steps,
    candidates=candidates,
    levels=levels,
  )
