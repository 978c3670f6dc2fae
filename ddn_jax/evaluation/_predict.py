"""The model's predicted classes over a dataset, in batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from ddn_jax import attacks
from ddn_jax.data import to_float_images


def predict(logits_fn: Any, images: Any, *, batch_size: int = 256) -> np.ndarray:
  """``(N,)`` predicted classes of ``images`` (uint8, or float in [0, 1]), ``batch_size`` at a
  time; an example whose logits are not all finite is predicted as -1 (no class)."""
  predictions = []
  for start in range(0, len(images), batch_size):
    logits = logits_fn(to_float_images(np.asarray(images[start : start + batch_size])))
    predictions.append(np.asarray(attacks.predicted_class(logits)))
  return np.concatenate(predictions) if predictions else np.zeros(0, np.int64)
