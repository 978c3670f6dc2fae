"""Per-attack summary statistics (the columns of the paper's Table 1)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ddn_jax.attacks import AttackResult


@dataclasses.dataclass(frozen=True)
class AttackSummary:
  """One row of a Table-1-style report.

  Attributes:
    attack: the attack's name.
    num_examples: examples attacked.
    success_rate: fraction of examples made adversarial.
    mean_l2: mean L2 norm over the successful examples (NaN if none).
    median_l2: median L2 over all examples, a failure counting as the worst case: the
      distance from the image to a uniform grey image.
    mean_grads: mean gradient evaluations per example.
    seconds: wall time of the attack, if measured.
  """

  attack: str
  num_examples: int
  success_rate: float
  mean_l2: float
  median_l2: float
  mean_grads: float
  seconds: float | None = None


def summarize(
  result: AttackResult, inputs: np.ndarray, *, attack: str, seconds: float | None = None
) -> AttackSummary:
  """Summarises an :class:`AttackResult` on ``inputs`` ``(N, H, W, C)``.

  References:
    Rony et al., CVPR 2019, Section 4 (the worst case for failures).
  """
  success = np.asarray(result.success)
  l2 = np.asarray(result.l2, np.float64)
  inputs = np.asarray(inputs, np.float64)
  worst = np.linalg.norm((inputs - 0.5).reshape(len(inputs), -1), axis=1)
  return AttackSummary(
    attack=attack,
    num_examples=len(success),
    success_rate=float(success.mean()),
    mean_l2=float(l2[success].mean()) if success.any() else float('nan'),
    median_l2=float(np.median(np.where(success, l2, worst))),
    mean_grads=float(np.asarray(result.num_grads).mean()),
    seconds=seconds,
  )
