"""DDN and C&W against the paper's MNIST CNN, trained in the session on real digits."""

import jax
import numpy as np
import pytest

from ddn_jax import attacks

_NUM_IMAGES = 128


@pytest.fixture(scope='module')
def correct(mnist_cnn):
  """The first held-out digits the model classifies correctly."""
  logits_fn, images, labels = mnist_cnn
  pred = np.asarray(logits_fn(images)).argmax(1)
  assert (pred == labels).mean() > 0.9, 'the session model is too weak to attack meaningfully'
  keep = np.flatnonzero(pred == labels)[:_NUM_IMAGES]
  return logits_fn, images[keep], labels[keep]


@pytest.fixture(scope='module')
def ddn_result(correct):
  logits_fn, x, y = correct
  return attacks.ddn(logits_fn, x, y, steps=100)


def _check_invariants(logits_fn, x, y, r, *, quantised):
  adv = np.asarray(r.adv)
  assert adv.min() >= 0 and adv.max() <= 1
  if quantised:
    np.testing.assert_allclose(adv * 255, np.round(adv * 255), atol=1e-4)
  np.testing.assert_allclose(
    r.l2, np.linalg.norm((adv - x).reshape(len(x), -1), axis=1), rtol=1e-6, atol=1e-7
  )
  pred = np.asarray(logits_fn(r.adv)).argmax(1)
  np.testing.assert_array_equal(r.success, pred != y)
  np.testing.assert_array_equal(adv[~np.asarray(r.success)], x[~np.asarray(r.success)])


def test_ddn_succeeds_on_every_correct_example(correct, ddn_result):
  logits_fn, x, y = correct
  r = ddn_result
  assert np.asarray(r.success).all()
  _check_invariants(logits_fn, x, y, r, quantised=True)
  # Recorded on an AMD EPYC (tests/reference_noise.py): median 1.7547 on these 128 digits. Batch
  # shape (1, 7, 32 or 128 examples) and 8 devices move it by < 1e-5 (single examples by < 0.5%);
  # retraining the recipe under other rounding moves the model: +2.2% trained data-parallel over
  # 8 devices, -11.0%, -8.6% and -3.6% with seeds 1 to 3. ±15% covers that spread; a DDN that
  # lost a sixth of its strength leaves it (the FMN and adv-lib comparisons are tighter).
  assert 1.7547 * 0.85 < np.median(r.l2) < 1.7547 * 1.15, np.median(r.l2)


def test_ddn_beats_carlini_wagner_1x100(correct, ddn_result):
  """The paper's Table 1 finding: with 100 gradients DDN finds smaller perturbations."""
  logits_fn, x, y = correct
  cw = attacks.carlini_wagner_l2(
    logits_fn, x, y, learning_rate=0.1, initial_const=1.0, binary_search_steps=1, steps=100
  )
  _check_invariants(logits_fn, x, y, cw, quantised=False)
  assert np.asarray(cw.success).mean() > 0.8
  assert (np.asarray(cw.num_grads) <= 100).all()
  cw_l2 = np.where(cw.success, cw.l2, np.inf)
  assert np.median(ddn_result.l2) < np.median(cw_l2), (np.median(ddn_result.l2), np.median(cw_l2))


def test_targeted_ddn_reaches_targets(correct):
  logits_fn, x, y = correct
  x, y = x[:32], y[:32]
  targets = (y + 1 + np.arange(32) % 9) % 10
  r = attacks.ddn(logits_fn, x, targets, targeted=True, steps=100)
  assert np.asarray(r.success).all()
  np.testing.assert_array_equal(np.asarray(logits_fn(r.adv)).argmax(1), targets)


def test_ddn_same_key_same_result_across_calls(correct):
  logits_fn, x, y = correct
  a = attacks.ddn(logits_fn, x[:16], y[:16], steps=20, key=jax.random.key(3))
  b = attacks.ddn(logits_fn, x[:16], y[:16], steps=20, key=jax.random.key(3))
  np.testing.assert_array_equal(a.adv, b.adv)
