"""A linear classifier whose minimal L2 adversarial perturbation is known in closed form."""

from __future__ import annotations

import jax
import numpy as np


class LinearProblem:
  """Logits ``z = flatten(x) @ w + b`` with examples built so one boundary is the nearest.

  Example ``i`` with label ``y`` has clean logits (up to a shared constant) ``z_y = 0``,
  ``z_near = -m_i`` and ``-2 m_i`` for every other class, ``m_i`` in [8, 12]. Its minimal
  untargeted perturbation, and its minimal perturbation targeting ``near``, cross the single
  hyperplane ``z_y = z_near``: norm ``m_i / ||w_y - w_near||``, direction ``w_near - w_y``.
  The constructor checks that this point beats every other class, so the reference is exact.
  The weights are sign patterns, so the images and the perturbation spread evenly over the
  pixels and stay far from the box edges. Large logit gaps keep the softmax on the two classes
  that matter, where the cross-entropy gradient points along the boundary normal.
  """

  def __init__(
    self,
    batch_size: int,
    *,
    num_classes: int = 10,
    shape=(28, 28, 1),
    distance: float = 0.5,
    seed: int = 0,
  ):
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape))
    # ||w_i - w_j|| is about sqrt(2) * scale, so a gap of 10 sits at about `distance`.
    scale = 10 / (distance * np.sqrt(2))
    w = rng.choice([-1.0, 1.0], size=(dim, num_classes)) * scale / np.sqrt(dim)
    b = -0.5 * w.sum(axis=0)
    labels = rng.integers(0, num_classes, size=batch_size)
    near = (labels + rng.integers(1, num_classes, size=batch_size)) % num_classes
    margins = rng.uniform(8, 12, size=batch_size)
    images = []
    for y, j, m in zip(labels, near, margins):
      want = np.full(num_classes, -2 * m)
      want[y], want[j] = 0.0, -m
      want -= want.mean()  # Softmax ignores a shared shift; centring keeps the image near 0.5.
      base = rng.uniform(0.45, 0.55, size=dim)
      # Least-norm change of `base` that gives exactly the wanted logits.
      images.append(base + np.linalg.lstsq(w.T, want - base @ w - b, rcond=None)[0])
    x = np.stack(images)
    assert 0.3 < x.min() and x.max() < 0.7, (x.min(), x.max())
    normal = (w[:, near] - w[:, labels]).T  # (N, dim)
    self.min_norm = margins / np.linalg.norm(normal, axis=1)
    # The exact minimiser lands on z_y = z_near, inside the box, with every other class below.
    x_star = x + (self.min_norm / np.linalg.norm(normal, axis=1))[:, None] * normal
    assert 0.2 < x_star.min() and x_star.max() < 0.8
    z = x_star @ w + b
    rows = np.arange(batch_size)
    np.testing.assert_allclose(z[rows, labels], z[rows, near], atol=1e-6)
    others = z.copy()
    others[rows, labels] = others[rows, near] = -np.inf
    assert (others.max(axis=1) < z[rows, near] - 1).all()
    self.w, self.b = w.astype(np.float32), b.astype(np.float32)
    self.inputs = x.reshape(batch_size, *shape).astype(np.float32)
    self.labels, self.near = labels.astype(np.int32), near.astype(np.int32)

  def logits_fn(self, x: jax.Array) -> jax.Array:
    return x.reshape(x.shape[0], -1) @ self.w + self.b
