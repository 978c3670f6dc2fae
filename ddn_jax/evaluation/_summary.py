"""Per-attack summary statistics (the columns of the paper's Table 1)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class AttackSummary:
  """One row of a Table-1-style report.

  Attributes:
    attack: the attack's name.
    num_examples: examples attacked.
    success_rate: fraction of examples made adversarial; an example where the model's logits
      at the clean image are not finite never is (it counts as a failure).
    mean_l2: mean L2 norm over the successful examples (NaN if none).
    median_l2: median L2 over all examples, a failure counting as the worst case: the
      distance from the image to a uniform grey image.
    mean_grads: mean gradient evaluations per example.
    mean_forwards: mean forward passes of the model per example (``extras['num_forwards']``);
      None where the result has no count. ``mean_grads + mean_forwards`` is AttackBench's
      mean number of queries.
    seconds: total wall time of the attack, if measured.
    first_batch_seconds: wall time of the first batch, compilation included, if measured.
    num_nonfinite: examples where the model's logits at the clean image are not finite
      (`AttackResult.model_finite`); a broken model shows here, not as a success.
  """

  attack: str
  num_examples: int
  success_rate: float
  mean_l2: float
  median_l2: float
  mean_grads: float
  mean_forwards: float | None = None
  seconds: float | None = None
  first_batch_seconds: float | None = None
  num_nonfinite: int = 0


def worst_case_l2(images: Any) -> np.ndarray:
  """``(N,)`` float64 L2 distance of each image to the uniform grey image (all pixels 0.5).

  The worst-case norm a failed attack counts as in the median (Rony et al., 2019, Section 4,
  after Carlini et al., 2019).

  Args:
    images: ``(N, H, W, C)`` uint8 (converted to float32 / 255 first), or float in [0, 1].
  """
  images = np.asarray(images)
  if np.issubdtype(images.dtype, np.integer):  # as the attacks see them (`to_float_images`)
    images = images.astype(np.float32) / 255.0
  return np.linalg.norm((images.astype(np.float64) - 0.5).reshape(len(images), -1), axis=1)


def num_forwards_of(result: Any) -> Any:
  """The per-example forward passes of a result: ``extras['num_forwards']`` of an `AttackResult`,
  ``num_forwards`` of an `AttackEvaluation`; None where unknown (a result built by hand)."""
  extras = getattr(result, 'extras', None) or {}
  if 'num_forwards' in extras:
    return extras['num_forwards']
  return getattr(result, 'num_forwards', None)


def summarize(
  result: Any, inputs: Any, *, attack: str, seconds: float | None = None
) -> AttackSummary:
  """Summarises an :class:`AttackResult` on ``inputs`` ``(N, H, W, C)``.

  Args:
    result: anything with per-example ``success``, ``l2`` and ``num_grads`` ``(N,)``, e.g. an
      `ddn_jax.attacks.AttackResult` (its ``model_finite`` and ``extras['num_forwards']`` are
      used if set) or an `AttackEvaluation` (its ``num_forwards``).
    inputs: the attacked images, uint8 or float in [0, 1]; they set the worst case.
    attack: the row's name.
    seconds: wall time, if measured.

  References:
    Rony et al., CVPR 2019, Section 4 (the worst case for failures).
  """
  return summary_from_arrays(
    result.success,
    result.l2,
    worst_case_l2(inputs),
    result.num_grads,
    attack=attack,
    seconds=seconds,
    model_finite=getattr(result, 'model_finite', None),
    num_forwards=num_forwards_of(result),
  )


def summary_from_arrays(
  success: Any,
  l2: Any,
  worst_l2: Any,
  num_grads: Any,
  *,
  attack: str,
  seconds: float | None = None,
  first_batch_seconds: float | None = None,
  model_finite: Any = None,
  num_forwards: Any = None,
) -> AttackSummary:
  """The summary of per-example ``(N,)`` arrays; ``worst_l2`` replaces ``l2`` for failures.

  ``model_finite`` (None: all True) says where the model's logits at the clean image are
  finite; elsewhere an example counts as a failure, and as one of ``num_nonfinite``.
  ``num_forwards`` (None: unknown, and so is ``mean_forwards``) counts forward passes.
  """
  success = np.asarray(success, bool)
  l2 = np.asarray(l2, np.float64)
  worst_l2 = np.asarray(worst_l2, np.float64)
  num_grads = np.asarray(num_grads)
  model_finite = np.ones_like(success) if model_finite is None else np.asarray(model_finite, bool)
  forwards = None if num_forwards is None else np.asarray(num_forwards)
  arrays = (success, l2, worst_l2, num_grads, model_finite)
  shapes = {a.shape for a in (*arrays, *(() if forwards is None else (forwards,)))}
  if len(shapes) != 1 or len(success.shape) != 1:
    raise ValueError(
      'success, l2, worst_l2, num_grads, model_finite and num_forwards (if given) must all have '
      f'shape (N,), got shapes {", ".join(str(a.shape) for a in arrays)} and '
      f'{None if forwards is None else forwards.shape}.'
    )
  if not len(success):
    raise ValueError(f'Cannot summarise {attack!r} over 0 examples.')
  success = success & model_finite
  return AttackSummary(
    attack=attack,
    num_examples=len(success),
    success_rate=float(success.mean()),
    mean_l2=float(l2[success].mean()) if success.any() else float('nan'),
    median_l2=float(np.median(np.where(success, l2, worst_l2))),
    mean_grads=float(num_grads.mean()),
    mean_forwards=None if forwards is None else float(forwards.mean()),
    seconds=None if seconds is None else float(seconds),
    first_batch_seconds=None if first_batch_seconds is None else float(first_batch_seconds),
    num_nonfinite=int(np.sum(~model_finite)),
  )
