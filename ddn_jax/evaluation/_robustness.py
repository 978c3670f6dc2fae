"""Robust accuracy against an L2 budget ε, from per-example minimal adversarial norms."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True, eq=False)
class RobustnessCurve:
  """Robust accuracy over a grid of budgets ε (Fig. 4 of the paper).

  Attributes:
    epsilons: ``(E,)`` float64 increasing budgets.
    accuracy: ``(E,)`` float64 robust accuracy at each ε: the fraction of examples whose minimal
      adversarial norm exceeds ε.
    area: the normalised area under the curve over ``[epsilons[0], epsilons[-1]]``: the exact
      integral of the step function ``ε -> mean(norms > ε)`` divided by the interval's width, so
      in [0, 1] and independent of the grid points in between (not a trapezoid over them). It
      is the mean over examples of ``(clip(norm, e0, e1) - e0) / (e1 - e0)``.
    num_examples: ``N``.
    num_nonfinite: examples with a NaN norm (the model's logits at the clean image are not
      finite): never robust, not even at ε = 0, where the curve is the clean accuracy; they
      count 0 in the area.
  """

  epsilons: np.ndarray
  accuracy: np.ndarray
  area: float
  num_examples: int
  num_nonfinite: int = 0


def _check_norms(norms: Any) -> np.ndarray:
  norms = np.asarray(norms, np.float64)
  if norms.ndim != 1 or not len(norms):
    raise ValueError(f'norms must have shape (N,) with N >= 1, got shape {norms.shape}.')
  if (norms < 0).any():
    raise ValueError(
      'norms must be >= 0 (inf for a failed attack, NaN for a non-finite model), got negative '
      'values.'
    )
  return norms


def _check_epsilons(epsilons: Any) -> np.ndarray:
  epsilons = np.asarray(epsilons, np.float64)
  if epsilons.ndim != 1 or not len(epsilons):
    raise ValueError(f'epsilons must be a non-empty 1-D sequence, got shape {epsilons.shape}.')
  if not np.isfinite(epsilons).all() or (epsilons < 0).any():
    raise ValueError(f'epsilons must be finite and >= 0, got {epsilons.tolist()}.')
  return epsilons


def _accuracy(norms: np.ndarray, epsilons: np.ndarray) -> np.ndarray:
  # An adversarial example at exactly ε is within the budget; a NaN norm is never robust.
  return np.mean(norms[None, :] > epsilons[:, None], axis=1)


def robust_accuracy(norms: Any, epsilons: Sequence[float]) -> dict[float, float]:
  """Accuracy against an attacker limited to L2 norm ε, for each ε.

  The fraction of examples whose minimal adversarial norm exceeds ε: correctly classified, and
  no adversarial example within ε (Fig. 4 of the paper).

  Args:
    norms: ``(N,)`` minimal adversarial norms (0 for a misclassified example, ``inf`` where the
      attack failed, NaN where the model's logits at the clean image are not finite: never
      robust), e.g. from `minimal_norms` or ``AttackEvaluation.norms``.
    epsilons: the budgets ε.

  Returns:
    ``{eps: accuracy}``.

  References:
    Rony et al., 2019, Section 6 and Fig. 4.
  """
  epsilons = _check_epsilons(epsilons)
  accuracy = _accuracy(_check_norms(norms), epsilons)
  return {float(e): float(a) for e, a in zip(epsilons, accuracy)}


def robustness_curve(norms: Any, epsilons: Sequence[float]) -> RobustnessCurve:
  """Robust accuracy over a grid of ε and its normalised area (see `RobustnessCurve`).

  Args:
    norms: ``(N,)`` minimal adversarial norms, e.g. ``combine_best(...).norms``; NaN (a
      non-finite model) is never robust and is counted in ``num_nonfinite``.
    epsilons: at least two strictly increasing budgets; the area is over their range.

  Returns:
    A :class:`RobustnessCurve`.

  References:
    Rony et al., 2019, Section 6 and Fig. 4.
  """
  norms, epsilons = _check_norms(norms), _check_epsilons(epsilons)
  if len(epsilons) < 2 or (np.diff(epsilons) <= 0).any():
    raise ValueError(
      f'epsilons must be at least two strictly increasing budgets, got {epsilons.tolist()}.'
    )
  low, high = epsilons[0], epsilons[-1]
  nonfinite = np.isnan(norms)
  area = float(np.mean((np.clip(np.where(nonfinite, low, norms), low, high) - low) / (high - low)))
  return RobustnessCurve(
    epsilons=epsilons,
    accuracy=_accuracy(norms, epsilons),
    area=area,
    num_examples=len(norms),
    num_nonfinite=int(nonfinite.sum()),
  )
