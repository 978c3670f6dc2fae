"""APGD and APGD-T on the linear problem, whose minimal norms are exact: what they can and cannot
break, their budgets, their targets and their errors. Their steps are compared with adv-lib's in
test_compare_pytorch.py, their contract with the other attacks' in test_attacks_api.py."""

import functools

import jax
import numpy as np
import pytest

from ddn_jax import attacks
from ddn_jax.reference import LinearProblem

STEPS = 20
VARIANTS = {
  'apgd-dlr': functools.partial(attacks.apgd_l2, loss='dlr'),
  'apgd-ce': functools.partial(attacks.apgd_l2, loss='ce'),
  'apgd-dlr-adv_lib-rule': functools.partial(attacks.apgd_l2, reduce_rule='adv_lib'),
  'apgd-t': functools.partial(attacks.apgd_targeted_l2, num_targets=3),
}


@pytest.fixture(scope='module')
def problem():
  return LinearProblem(8, seed=7)


def _norms(r, x):
  """Float64 norms of the returned perturbations (float32 sums round by ~1e-6)."""
  return np.linalg.norm((np.asarray(r.adv, np.float64) - x).reshape(len(x), -1), axis=1)


@pytest.mark.parametrize('name', list(VARIANTS))
def test_above_the_minimal_norm_everything_is_broken_inside_the_ball(problem, name):
  # 1.2 times the largest exact minimal norm: every example has adversarial points in the ball.
  eps = 1.2 * float(problem.min_norm.max())
  r = VARIANTS[name](problem.logits_fn, problem.inputs, problem.labels, eps=eps, steps=STEPS)
  assert np.asarray(r.success).all()
  assert (_norms(r, problem.inputs) <= eps + 1e-6).all()
  adv = np.asarray(r.adv)
  assert adv.min() >= 0 and adv.max() <= 1
  # Each broke in its first run (APGD-T: against its first target).
  np.testing.assert_array_equal(r.num_grads, STEPS + 1)


@pytest.mark.parametrize('name', list(VARIANTS))
def test_below_the_minimal_norm_nothing_is_broken_and_every_run_is_made(problem, name):
  eps = 0.8 * float(problem.min_norm.min())
  r = VARIANTS[name](problem.logits_fn, problem.inputs, problem.labels, eps=eps, steps=STEPS)
  assert not np.asarray(r.success).any()
  norms = _norms(r, problem.inputs)
  # The point of highest loss is kept: on the sphere, where the linear losses peak.
  assert (norms <= eps + 1e-6).all() and (norms > 0.99 * eps).all()
  runs = 3 if name == 'apgd-t' else 1
  np.testing.assert_array_equal(r.num_grads, runs * (STEPS + 1))


def test_restarts_run_until_an_example_is_broken(problem):
  below = 0.8 * float(problem.min_norm.min())
  r = attacks.apgd_l2(problem.logits_fn, problem.inputs, problem.labels, eps=below, restarts=3)
  np.testing.assert_array_equal(r.num_grads, 3 * 101)
  above = 1.2 * float(problem.min_norm.max())
  r = attacks.apgd_l2(problem.logits_fn, problem.inputs, problem.labels, eps=above, restarts=3)
  assert np.asarray(r.success).all()
  np.testing.assert_array_equal(r.num_grads, 101)


def test_apgd_t_attacks_the_likeliest_class_first(problem):
  # Only the nearest class (the second largest clean logit) has a boundary within 1.2 times the
  # minimal norm: the others' logits are twice as far below (see LinearProblem). One target
  # breaks every example only if that target is the nearest class.
  eps = 1.2 * float(problem.min_norm.max())
  run = functools.partial(attacks.apgd_targeted_l2, problem.logits_fn, problem.inputs, eps=eps)
  r = run(problem.labels, num_targets=1, steps=STEPS)
  assert np.asarray(r.success).all()
  pred = np.asarray(problem.logits_fn(r.adv)).argmax(1)
  np.testing.assert_array_equal(pred, problem.near)


def test_targeted_apgd_reaches_the_target_inside_the_ball(problem):
  eps = 1.2 * float(problem.min_norm.max())
  for loss in ('dlr', 'ce'):
    r = attacks.apgd_l2(
      problem.logits_fn, problem.inputs, problem.near, targeted=True, eps=eps, loss=loss, steps=20
    )
    assert np.asarray(r.success).all(), loss
    np.testing.assert_array_equal(np.asarray(problem.logits_fn(r.adv)).argmax(1), problem.near)
    assert (_norms(r, problem.inputs) <= eps + 1e-6).all()


def test_random_starts_come_from_the_key(problem):
  run = lambda key, **kw: attacks.apgd_l2(
    problem.logits_fn, problem.inputs, problem.labels, eps=0.3, steps=2, key=key, **kw
  )
  a, b, c = run(jax.random.key(1)), run(jax.random.key(1)), run(jax.random.key(2))
  np.testing.assert_array_equal(a.adv, b.adv)
  assert not np.allclose(a.adv, c.adv)
  d, e = run(jax.random.key(1), random_start=False), run(jax.random.key(2), random_start=False)
  np.testing.assert_array_equal(d.adv, e.adv)


def test_apgd_t_batch_equals_stacked_single_examples():
  # The linear problem's clean logits tie eight classes, which APGD-T's DLR ranks: a fixed
  # pattern of 0.01 per pixel unties them by far more than rounding.
  p = LinearProblem(4, seed=21)
  pattern = 0.01 * np.sin(np.arange(p.inputs[0].size)).reshape(p.inputs.shape[1:])
  x = (p.inputs + pattern).astype(np.float32)
  logits = np.sort(np.asarray(p.logits_fn(x)), axis=1)
  assert np.diff(logits, axis=1).min() > 1e-3
  attack = functools.partial(
    attacks.apgd_targeted_l2, p.logits_fn, eps=0.55, steps=2, num_targets=3, random_start=False
  )
  batch = attack(x, p.labels)
  for i in range(4):
    one = attack(x[i : i + 1], p.labels[i : i + 1])
    np.testing.assert_allclose(one.adv[0], batch.adv[i], atol=1e-6)
    assert one.success[0] == batch.success[i] and one.num_grads[0] == batch.num_grads[i]


def test_bad_settings_get_clear_errors(problem):
  x, y, f = problem.inputs, problem.labels, problem.logits_fn
  bad = [
    (attacks.apgd_l2, {'eps': -1.0}, ValueError, 'eps must be >= 0'),
    (attacks.apgd_l2, {'eps': 1.0, 'rho': 1.5}, ValueError, 'rho must be <= 1'),
    (attacks.apgd_l2, {'eps': 1.0, 'steps': 0}, ValueError, 'steps must be >= 1'),
    (attacks.apgd_l2, {'eps': 1.0, 'steps': 10.0}, TypeError, 'steps must be a Python int'),
    (attacks.apgd_l2, {'eps': 1.0, 'restarts': 0}, ValueError, 'restarts must be >= 1'),
    (attacks.apgd_l2, {'eps': 1.0, 'loss': 'hinge'}, ValueError, "loss must be 'ce' or 'dlr'"),
    (attacks.apgd_l2, {'eps': 1.0, 'reduce_rule': 'x'}, ValueError, 'reduce_rule'),
    (attacks.apgd_targeted_l2, {'eps': 1.0, 'targeted': True}, ValueError, 'untargeted'),
    (attacks.apgd_targeted_l2, {'eps': 1.0, 'num_targets': 10}, ValueError, r'<= num_classes'),
    (attacks.apgd_targeted_l2, {'eps': 1.0, 'num_targets': 0}, ValueError, 'num_targets'),
  ]
  for attack, kwargs, error, match in bad:
    with pytest.raises(error, match=match):
      attack(f, x, y, **kwargs)
  three = LinearProblem(2, num_classes=3, seed=1)
  with pytest.raises(ValueError, match='at least 4 classes when targeted'):
    attacks.apgd_l2(three.logits_fn, three.inputs, three.labels, eps=1.0, targeted=True)
  with pytest.raises(ValueError, match='at least 4 classes'):
    attacks.apgd_targeted_l2(three.logits_fn, three.inputs, three.labels, eps=1.0)
  # Three classes are enough for the untargeted DLR.
  attacks.apgd_l2(three.logits_fn, three.inputs, three.labels, eps=1.0, steps=1)


def test_registered_with_their_adv_lib_counterparts():
  apgd = attacks.parse_attack('apgd:eps=1.5')
  assert apgd.label == 'APGD 100 (eps=1.5)' and apgd.entry.adv_lib == 'apgd'
  apgd_t = attacks.parse_attack('apgd-t:eps=1.5', adv_lib=True)
  assert apgd_t.entry.function is attacks.apgd_targeted_l2
  assert apgd_t.settings['reduce_rule'] == 'adv_lib' and apgd_t.label.startswith('APGD-T 9×100')
  with pytest.raises(ValueError, match='needs eps'):
    attacks.parse_attack('apgd')
