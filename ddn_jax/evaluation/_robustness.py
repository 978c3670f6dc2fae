"""Robust accuracy against an L2 budget ε, and AttackBench's optimality, from per-example minimal
adversarial norms."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
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


def optimality(norms: Mapping[str, Any]) -> dict[str, float]:
  """AttackBench's optimality score of each attack, from the per-example norms of all of them.

  For the per-example best ``d*_i = min_a d_{a,i}`` over the attacks given, and ``ε*`` the
  largest finite ``d*_i``, the area under attack ``a``'s robust-accuracy curve up to ``ε*`` is
  ``A_a = ∫_0^ε* mean_i(d_{a,i} > ε) dε = mean_i min(d_{a,i}, ε*)``, the exact integral of the
  step curve; ``A*`` is that of the best norms, and ``A_0 = clean accuracy × ε*`` that of an
  attack that finds nothing. The score is

      ``1 - (A_a - A*) / (A_0 - A*)``:

  1 for an attack that finds every best norm, 0 for one no better than finding nothing. It is a
  ratio of areas, so independent of the scale of the norms, and it compares the attacks given
  on these examples only: adding an attack that finds smaller norms lowers the others' scores.
  AttackBench's code integrates with trapezoids between the distinct norms; the exact area
  differs from it by O(ε*/N).

  Norms follow `robustness_curve`: 0 for a misclassified example, ``inf`` where the attack
  failed, NaN where the model's logits at the clean image are not finite. NaN examples are never
  robust (norm 0 for every attack, as in `robustness_curve`), so they weigh on no attack.

  Args:
    norms: ``{attack name: (N,) norms}`` of the attacks on the same examples, e.g.
      ``{e.name: e.norms for e in evaluations}`` of `evaluate_attack`'s evaluations.

  Returns:
    ``{attack name: score}``; every score is NaN where no example separates the attacks
    (``A_0 = A*``: no correctly classified example, or all best norms equal to ``ε*``, e.g. a
    single one).

  Raises:
    ValueError: no attacks, norms that are not ``(N,)`` and ``>= 0``, attacks on different numbers
      of examples, or NaN (non-finite model) at different examples for different attacks.

  References:
    Cinà et al., `AttackBench: Evaluating Gradient-based Attacks for Adversarial Examples
    <https://arxiv.org/abs/2404.19460>`_, AAAI 2025 (Section 3, optimality).
  """
  if not norms:
    raise ValueError('optimality needs the norms of at least one attack, got none.')
  names = list(norms)
  stacked = [_check_norms(norms[n]) for n in names]
  for name, d in zip(names[1:], stacked[1:]):
    if d.shape != stacked[0].shape:
      raise ValueError(
        f'all attacks must cover the same examples: {names[0]!r} has {len(stacked[0])}, '
        f'{name!r} has {len(d)}.'
      )
    if not np.array_equal(np.isnan(d), np.isnan(stacked[0])):
      raise ValueError(
        f'{names[0]!r} and {name!r} disagree on where the model is non-finite (NaN norms): '
        'were they run on the same model and images?'
      )
  d = np.nan_to_num(np.stack(stacked), nan=0.0, posinf=np.inf)
  best = d.min(axis=0)
  finite = best[np.isfinite(best)]
  eps_star = float(finite.max()) if len(finite) else 0.0
  area = lambda x: float(np.mean(np.minimum(x, eps_star), axis=-1))
  best_area = area(best)
  worst_area = float(np.mean(best > 0)) * eps_star
  span = worst_area - best_area
  return {
    name: float('nan') if span <= 0 else 1 - (area(x) - best_area) / span
    for name, x in zip(names, d)
  }
