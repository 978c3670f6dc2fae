"""Robustness of a trained model: DDN's minimal adversarial norms and accuracy within ε."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks
from ddn_jax.training._step import to_float_images


def minimal_norms(
  logits_fn: Callable[[jax.Array], jax.Array],
  images: np.ndarray,
  labels: np.ndarray,
  *,
  steps: int = 1000,
  batch_size: int = 500,
  key: jax.Array | None = None,
  **ddn_kwargs: Any,
) -> np.ndarray:
  """Per-example L2 norm of the smallest adversarial perturbation DDN finds.

  Args:
    logits_fn: images (B, H, W, C) float in [0, 1] -> logits (B, K), e.g.
      ``make_logits_fn(model, variables)``.
    images: (N, H, W, C) uint8 or float in [0, 1].
    labels: (N,) int.
    steps: DDN iterations (the paper evaluates defences with DDN 1000).
    batch_size: examples per attack call (the last batch may be smaller).
    key: PRNG key of DDN's zero-gradient fallback; batch ``i`` uses ``fold_in(key, i)``.
    **ddn_kwargs: other arguments of `ddn_jax.attacks.ddn`.

  Returns:
    ``(N,)`` float64 norms: 0 where the clean image is misclassified, ``inf`` where DDN found
    no adversarial example.

  References:
    Rony et al., 2019, Section 6.
  """
  key = jax.random.key(0) if key is None else key
  norms = []
  for i, start in enumerate(range(0, len(images), batch_size)):
    result = attacks.ddn(
      logits_fn,
      to_float_images(images[start : start + batch_size]),
      labels[start : start + batch_size],
      steps=steps,
      key=jax.random.fold_in(key, i),
      **ddn_kwargs,
    )
    success, l2 = jax.device_get((result.success, result.l2))
    norms.append(np.where(success, l2.astype(np.float64), np.inf))
  return np.concatenate(norms)


def robust_accuracy(norms: np.ndarray, epsilons: Sequence[float]) -> dict[float, float]:
  """Accuracy against an attacker limited to L2 norm ε, for each ε.

  The fraction of examples whose minimal adversarial norm exceeds ε: correctly classified, and
  no adversarial example within ε (Fig. 4 of the paper).

  Args:
    norms: ``(N,)`` minimal adversarial norms, e.g. from `minimal_norms`.
    epsilons: the budgets ε.

  Returns:
    ``{eps: accuracy}``.

  References:
    Rony et al., 2019, Section 6 and Fig. 4.
  """
  norms = np.asarray(norms)
  return {float(eps): float(np.mean(norms > eps)) for eps in epsilons}
