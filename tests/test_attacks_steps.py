"""DDN's iterates, each recomputed from the previous one by the paper's Algorithm 1 in NumPy.

The model is a small tanh network, so the gradient turns along the path (on a linear model it
keeps one direction and the step size would leave no trace); its cross-entropy gradient is
written out in float64 NumPy, independently of JAX. The attack's iterates are recorded through
a ``jax.debug.callback`` in the model. Each step is checked from the recorded previous point:
the norm ε grows by (1 + γ) or shrinks by (1 - γ) depending on whether that point was adversarial,
the step size α follows the documented cosine schedule, and the point is clipped and quantised.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks

_STEPS, _GAMMA, _INIT_NORM, _ALPHA_INIT, _ALPHA_FINAL = 30, 0.05, 1.0, 1.0, 0.01


class TanhModel:
  """``logits = tanh(flatten(x) @ a) @ b``, with its cross-entropy gradient in NumPy."""

  def __init__(self, seed, shape=(8, 8, 1), hidden=16, num_classes=10):
    rng = np.random.default_rng(seed)
    dim = int(np.prod(shape))
    self.a = rng.normal(0, 3 / np.sqrt(dim), (dim, hidden))
    self.b = rng.normal(0, 3 / np.sqrt(hidden), (hidden, num_classes))

  def logits_fn(self, x):
    hidden = jnp.tanh(x.reshape(x.shape[0], -1) @ self.a.astype(np.float32))
    return hidden @ self.b.astype(np.float32)

  def logits(self, x):
    return np.tanh(x.reshape(-1) @ self.a) @ self.b

  def grad(self, x, y):
    hidden = np.tanh(x.reshape(-1) @ self.a)
    logits = hidden @ self.b
    p = np.exp(logits - logits.max())
    p /= p.sum()
    p[y] -= 1
    return (self.a @ ((self.b @ p) * (1 - hidden**2))).reshape(x.shape)


def _alphas(schedule):
  """The documented schedules: 'paper' reaches alpha_final at the last step, 'adv_lib' at k = K."""
  k = np.arange(_STEPS)
  t = k / (_STEPS - 1) if schedule == 'paper' else k / _STEPS
  return _ALPHA_FINAL + (_ALPHA_INIT - _ALPHA_FINAL) * (1 + np.cos(np.pi * t)) / 2


@pytest.mark.parametrize('levels', [None, 256])
@pytest.mark.parametrize('schedule', ['paper', 'adv_lib'])
def test_ddn_iterates_follow_algorithm_1(schedule, levels):
  model = TanhModel(seed=0)
  rng = np.random.default_rng(1)
  points = []

  def recorded(x):
    jax.debug.callback(lambda v: points.append(np.asarray(v, np.float64)), x)
    return model.logits_fn(x)

  adversarial_steps = 0
  for _ in range(3):
    x = rng.uniform(0.3, 0.7, (1, 8, 8, 1)).astype(np.float32)
    x = np.round(x * 255) / 255 if levels else x
    y = np.int32(np.argmax(model.logits(x[0].astype(np.float64))))
    points.clear()
    r = attacks.ddn(
      recorded,
      x,
      np.array([y]),
      steps=_STEPS,
      gamma=_GAMMA,
      init_norm=_INIT_NORM,
      alpha_init=_ALPHA_INIT,
      alpha_final=_ALPHA_FINAL,
      alpha_schedule=schedule,
      levels=levels,
    )
    # One model call per step on the current point, one on the clean input for `model_finite`
    # (XLA may run it before or after the loop: it does not depend on it), and one on the
    # returned point. The clean input is also the first iterate: drop its second occurrence.
    clean = [i for i, p in enumerate(points) if np.array_equal(p, x.astype(np.float64))]
    assert len(clean) >= 2 and clean[0] == 0, clean
    del points[clean[1]]
    assert len(points) == _STEPS + 1
    x0 = x[0].astype(np.float64)
    worst = np.linalg.norm(np.maximum(x0, 1 - x0))
    eps = _INIT_NORM
    for k, alpha in enumerate(_alphas(schedule)[:-1]):
      current, following = points[k][0], points[k + 1][0]
      logits = model.logits(current)
      runner_up = np.max(np.delete(logits, y))
      if abs(runner_up - logits[y]) < 1e-4:  # float32 may decide either way: skip the example
        break
      adversarial = runner_up > logits[y]
      adversarial_steps += adversarial
      g = model.grad(current, y)
      delta = current - x0 + alpha * g / np.linalg.norm(g)
      eps = min(eps * (1 - _GAMMA if adversarial else 1 + _GAMMA), worst)
      expected = np.clip(x0 + delta * eps / np.linalg.norm(delta), 0, 1)
      if levels is None:
        np.testing.assert_allclose(following, expected, atol=1e-5, err_msg=f'step {k}')
      else:  # the nearest grey level of the exact point
        np.testing.assert_allclose(following * 255, np.round(following * 255), atol=1e-3)
        assert np.abs(following - expected).max() <= 0.5 / 255 + 1e-5, f'step {k}'
    # The result is the lowest-norm adversarial iterate.
    norms = [np.linalg.norm(p[0] - x0) for p in points[:-1]]
    adversarial = [np.argmax(model.logits(p[0])) != y for p in points[:-1]]
    best = min((n for n, a in zip(norms, adversarial) if a), default=0.0)
    assert float(r.l2[0]) == pytest.approx(best, rel=1e-5)
  # The norm was driven both ways: the check saw both branches of the update.
  assert 10 < adversarial_steps < 3 * (_STEPS - 1) - 10
