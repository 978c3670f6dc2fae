"""DeepFool and FMN: exact linear problems, and real digits against DDN."""

import numpy as np
import pytest

from ddn_jax import attacks
from ddn_jax.reference import LinearProblem

# No attack can beat the exact minimum; float32 rounding of the norm allows this much.
_BELOW = 1 - 1e-5
# DeepFool's step crosses the linearised boundary by this much, as in the original code.
_PAST_BOUNDARY = 1e-4


def _unit_normals(p):
  """``(N, H, W, C)`` unit normals of each example's nearest boundary, pointing across it."""
  normal = (p.w[:, p.near] - p.w[:, p.labels]).T
  return (normal / np.linalg.norm(normal, axis=1, keepdims=True)).reshape(p.inputs.shape)


# --- exact linear problems -------------------------------------------------------------------


@pytest.mark.parametrize('batch_size', [1, 3, 8])
@pytest.mark.parametrize('overshoot', [0.0, 0.02])
def test_deepfool_is_exact_in_one_step(batch_size, overshoot):
  p = LinearProblem(batch_size, seed=batch_size)
  r = attacks.deepfool(p.logits_fn, p.inputs, p.labels, overshoot=overshoot)
  assert r.success.all()
  # One step onto the boundary (plus the fixed 1e-4), scaled by the overshoot.
  length = (1 + overshoot) * (p.min_norm + _PAST_BOUNDARY)
  np.testing.assert_allclose(r.l2, length, rtol=1e-5)
  expected = p.inputs + length[:, None, None, None] * _unit_normals(p)
  np.testing.assert_allclose(r.adv, expected, atol=1e-6)
  # One linearisation: a backward pass for each of the 9 competing classes.
  np.testing.assert_array_equal(r.num_grads, 9)


def test_deepfool_two_candidates_cost_one_backward_pass():
  p = LinearProblem(3, seed=3)
  r = attacks.deepfool(p.logits_fn, p.inputs, p.labels, candidates=2, overshoot=0.0)
  assert r.success.all()
  np.testing.assert_allclose(r.l2, p.min_norm + _PAST_BOUNDARY, rtol=1e-5)
  np.testing.assert_array_equal(r.num_grads, 1)


@pytest.mark.parametrize('batch_size', [1, 3, 8])
@pytest.mark.parametrize('targeted', [False, True])
def test_fmn_from_starting_points_reaches_exact_minimum(batch_size, targeted):
  p = LinearProblem(batch_size, seed=batch_size)
  labels = p.near if targeted else p.labels
  # Twice the minimal perturbation: well past the boundary, classified as the near class.
  start = p.inputs + 2 * p.min_norm[:, None, None, None] * _unit_normals(p)
  np.testing.assert_array_equal(np.asarray(p.logits_fn(start)).argmax(1), p.near)
  r = attacks.fmn_l2(p.logits_fn, p.inputs, labels, targeted=targeted, starting_points=start)
  assert r.success.all()
  ratio = np.asarray(r.l2) / p.min_norm
  assert (ratio > _BELOW).all() and (ratio < 1.0001).all(), ratio


@pytest.mark.parametrize('targeted', [False, True])
def test_fmn_cold_start_lands_on_exact_minimum(targeted):
  """FMN's first ε is the boundary of the linearised margin, exact here.

  Its first step thus lands on the boundary, where float32 rounding decides the class: an example
  rounded to the clean side stays there, since the next linear estimate is below float32
  resolution (adv-lib 0.2.8 stalls on such examples too). The ones that succeed are exact.
  """
  p = LinearProblem(8, seed=8)
  labels = p.near if targeted else p.labels
  r = attacks.fmn_l2(p.logits_fn, p.inputs, labels, targeted=targeted)
  success = np.asarray(r.success)
  assert success.mean() >= 0.5, success
  ratio = np.asarray(r.l2)[success] / p.min_norm[success]
  assert (ratio > _BELOW).all() and (ratio < 1 + 1e-5).all(), ratio


# --- real digits -----------------------------------------------------------------------------

_NUM_IMAGES = 64


@pytest.fixture(scope='module')
def digits(mnist_cnn):
  """The first held-out digits the session CNN classifies correctly, and DDN-100's norms."""
  logits_fn, images, labels = mnist_cnn
  pred = np.asarray(logits_fn(images)).argmax(1)
  keep = np.flatnonzero(pred == labels)[:_NUM_IMAGES]
  x, y = images[keep], labels[keep]
  ddn = attacks.ddn(logits_fn, x, y, steps=100)
  assert np.asarray(ddn.success).all()
  return logits_fn, x, y, np.asarray(ddn.l2)


@pytest.fixture(scope='module')
def deepfool_result(digits):
  logits_fn, x, y, _ = digits
  return attacks.deepfool(logits_fn, x, y)


def _check_invariants(logits_fn, x, y, r):
  adv, success = np.asarray(r.adv), np.asarray(r.success)
  assert adv.min() >= 0 and adv.max() <= 1
  # A float32 sum of squares over the pixels is good to about 1e-6.
  exact = np.linalg.norm((adv.astype(np.float64) - x).reshape(len(x), -1), axis=1)
  np.testing.assert_allclose(r.l2, exact, rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(success, np.asarray(logits_fn(r.adv)).argmax(1) != y)
  np.testing.assert_array_equal(adv[~success], x[~success])


def test_deepfool_on_real_digits(digits, deepfool_result):
  logits_fn, x, y, ddn_l2 = digits
  r = deepfool_result
  _check_invariants(logits_fn, x, y, r)
  assert np.asarray(r.success).mean() >= 0.98
  grads = np.asarray(r.num_grads)
  assert (grads % 9 == 0).all() and (grads >= 9).all() and (grads <= 100 * 9).all()
  # The paper's Table 1: DeepFool's perturbations are larger than DDN's, but of the same order.
  ratio = np.median(r.l2) / np.median(ddn_l2)
  assert 1.1 < ratio < 2, ratio


def test_fmn_on_real_digits_matches_ddn(digits):
  logits_fn, x, y, ddn_l2 = digits
  r = attacks.fmn_l2(logits_fn, x, y, steps=100)
  _check_invariants(logits_fn, x, y, r)
  success = np.asarray(r.success)
  # From a cold start, some examples creep towards the boundary without crossing it.
  assert success.mean() >= 0.8
  ratio = np.median(np.asarray(r.l2)[success] / ddn_l2[success])
  assert 0.95 < ratio < 1.05, ratio


def test_fmn_from_deepfool_points_beats_deepfool(digits, deepfool_result):
  logits_fn, x, y, ddn_l2 = digits
  df = deepfool_result
  keep = np.asarray(df.success)
  x, y, start = x[keep], y[keep], np.asarray(df.adv)[keep]
  r = attacks.fmn_l2(logits_fn, x, y, starting_points=start)
  _check_invariants(logits_fn, x, y, r)
  assert np.asarray(r.success).all()
  # The search starts on the boundary between x and DeepFool's point, then shrinks.
  assert (np.asarray(r.l2) < np.asarray(df.l2)[keep]).all()
  assert np.median(r.l2) < 1.05 * np.median(ddn_l2[keep])
