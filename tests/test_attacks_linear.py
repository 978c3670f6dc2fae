"""Attacks against a linear model whose minimal adversarial perturbation is known exactly."""

import itertools

import jax
import numpy as np
import pytest

from ddn_jax import attacks
from ddn_jax.reference import LinearProblem

# No attack can beat the exact minimum; float32 rounding of the norm allows this much.
_BELOW = 1 - 1e-5


@pytest.mark.parametrize('batch_size', [1, 3, 8])
@pytest.mark.parametrize('targeted', [False, True])
def test_ddn_reaches_exact_minimum(batch_size, targeted):
  p = LinearProblem(batch_size, seed=batch_size)
  labels = p.near if targeted else p.labels
  r = attacks.ddn(p.logits_fn, p.inputs, labels, targeted=targeted, levels=None)
  assert r.success.all()
  ratio = np.asarray(r.l2) / p.min_norm
  assert (ratio > _BELOW).all() and (ratio < 1.002).all(), ratio


@pytest.mark.parametrize('batch_size', [1, 3, 8])
@pytest.mark.parametrize('targeted', [False, True])
def test_carlini_wagner_reaches_exact_minimum(batch_size, targeted):
  p = LinearProblem(batch_size, seed=batch_size)
  labels = p.near if targeted else p.labels
  r = attacks.carlini_wagner_l2(
    p.logits_fn,
    p.inputs,
    labels,
    targeted=targeted,
    binary_search_steps=9,
    steps=10000,
    abort_early='example',
  )
  assert r.success.all()
  ratio = np.asarray(r.l2) / p.min_norm
  assert (ratio > _BELOW).all() and (ratio < 1.002).all(), ratio
  # Early abort must have cut the 9 x 10000 budget, per example.
  assert (np.asarray(r.num_grads) < 9 * 10000).all()
  assert (np.asarray(r.num_grads) > 0).all()


def test_carlini_wagner_without_abort_spends_full_budget():
  p = LinearProblem(3, seed=3)
  r = attacks.carlini_wagner_l2(
    p.logits_fn,
    p.inputs,
    p.labels,
    learning_rate=0.1,
    initial_const=10.0,
    binary_search_steps=2,
    steps=50,
    abort_early=False,
  )
  np.testing.assert_array_equal(r.num_grads, 2 * 50)
  assert r.success.all()
  assert (np.asarray(r.l2) / p.min_norm > _BELOW).all()


@pytest.mark.parametrize('abort_early', ['example', 'batch'])
def test_carlini_wagner_abort_stops_the_loop_at_the_check(abort_early):
  """A stalled search step runs no masked iterations after the check that stopped it."""
  p = LinearProblem(1, seed=3)
  evaluations = []

  def counted(x):
    jax.debug.callback(lambda: evaluations.append(1))
    return p.logits_fn(x)

  def run(abort, max_iterations):
    evaluations.clear()
    r = attacks.carlini_wagner_l2(
      counted,
      p.inputs,
      p.labels,
      initial_const=1e-9,  # The distance term dominates: the loss stalls at the first check.
      binary_search_steps=1,
      steps=max_iterations,
      abort_early=abort,
    )
    return int(jax.block_until_ready(r.num_grads)[0]), len(evaluations)

  grads, total = run(False, 100)
  assert grads == 100
  outside_loop = total - grads  # The clean and final predictions.
  grads, total = run(abort_early, 100)
  assert grads == 10  # Stopped at the check of iteration 10 (its gradient was not applied).
  assert total - outside_loop == grads + 1


def test_carlini_wagner_repeat_search_at_upper_bound():
  # With >= 10 search steps the last one reruns at the best constant; the result must still
  # be a valid minimum-norm attack.
  p = LinearProblem(2, seed=5)
  r = attacks.carlini_wagner_l2(
    p.logits_fn,
    p.inputs,
    p.labels,
    learning_rate=0.05,
    initial_const=1.0,
    binary_search_steps=10,
    steps=100,
  )
  assert r.success.all()
  ratio = np.asarray(r.l2) / p.min_norm
  assert (ratio > _BELOW).all() and (ratio < 1.05).all(), ratio


@pytest.mark.parametrize('attack', ['fgm', 'pgd'])
def test_bounded_attacks_split_at_exact_minimum(attack):
  """Just above the minimal norm the attack succeeds; just below it cannot."""
  p = LinearProblem(8, seed=11)
  run = {
    'fgm': lambda eps: attacks.fgm_l2(p.logits_fn, p.inputs, p.labels, eps=eps),
    'pgd': lambda eps: attacks.pgd_l2(
      p.logits_fn, p.inputs, p.labels, eps=eps, steps=20, step_size=eps / 4
    ),
  }[attack]
  for factor, expect in [(1.03, True), (0.97, False)]:
    # eps is traced: a per-example radius would need vmap; use the batch's extreme instead.
    eps = (p.min_norm.max() if expect else p.min_norm.min()) * factor
    r = run(float(eps))
    assert (np.asarray(r.success) == expect).all(), (factor, r.success)
    assert (np.asarray(r.l2) <= eps * (1 + 1e-5)).all()


def test_carlini_wagner_best_const():
  """The constant reported for Fig. 2 is the one of the search step that found the point."""
  p = LinearProblem(3, seed=4)
  kwargs = dict(learning_rate=0.1, steps=100, binary_search_steps=1)  # noqa: C408
  r = attacks.carlini_wagner_l2(p.logits_fn, p.inputs, p.labels, initial_const=10.0, **kwargs)
  assert r.success.all()
  np.testing.assert_array_equal(r.extras['best_const'], np.float32(10.0))
  # The deprecated flag still returns the old pair, with a warning.
  with pytest.warns(DeprecationWarning, match='return_best_const'):
    old, best_const = attacks.carlini_wagner_l2(
      p.logits_fn, p.inputs, p.labels, initial_const=10.0, return_best_const=True, **kwargs
    )
  assert isinstance(old, attacks.AttackResult)
  np.testing.assert_array_equal(best_const, r.extras['best_const'])
  # Far too small a constant never crosses the boundary: failures report NaN.
  r = attacks.carlini_wagner_l2(p.logits_fn, p.inputs, p.labels, initial_const=1e-9, **kwargs)
  assert not np.asarray(r.success).any()
  assert np.isnan(np.asarray(r.extras['best_const'])).all()
  # With a bisection, it is one of the constants some sequence of search outcomes visits.
  r = attacks.carlini_wagner_l2(
    p.logits_fn,
    p.inputs,
    p.labels,
    initial_const=1e-3,
    learning_rate=0.1,
    steps=100,
    binary_search_steps=4,
  )
  best_const = r.extras['best_const']
  assert r.success.all()
  visited = _visited_constants(1e-3, 4)
  assert all(np.float32(c) in visited for c in np.asarray(best_const)), best_const


def test_carlini_wagner_confidence_buys_exactly_that_margin():
  """With κ > 0 the minimum is where the near class leads by κ: norm (m + κ) / ||w_near - w_y||."""
  p = LinearProblem(4, seed=6)
  normal = np.linalg.norm(p.w[:, p.near] - p.w[:, p.labels], axis=0)
  rows = np.arange(4)
  for kappa in (2.0, 5.0):
    r = attacks.carlini_wagner_l2(
      p.logits_fn,
      p.inputs,
      p.labels,
      confidence=kappa,
      # Small steps approach the optimum without overshooting it: only a loss with κ in it
      # leads there (at a rate of 0.01, Adam's oscillation also visits points κ past the
      # boundary).
      learning_rate=0.001,
      initial_const=1.0,
      binary_search_steps=9,
      steps=1000,
    )
    assert r.success.all()
    ratio = np.asarray(r.l2) / ((p.min_norm * normal + kappa) / normal)
    assert (ratio > _BELOW).all() and (ratio < 1.002).all(), (kappa, ratio)
    logits = np.asarray(p.logits_fn(r.adv), np.float64)
    others = np.where(np.arange(10) == p.labels[:, None], -np.inf, logits)
    margin = others.max(axis=1) - logits[rows, p.labels]
    assert (margin >= kappa - 1e-3).all(), (kappa, margin)


def test_carlini_wagner_adam_steps_are_the_learning_rate():
  """Adam moves each tanh-space coordinate by at most about the learning rate per step.

  After 100 steps of rate ρ a pixel has moved at most 100 ρ / 2 (the tanh box halves it), so the
  perturbation is at most 50 ρ √784 = 1400 ρ: 0.28 for ρ = 2e-4, below every minimal norm
  (0.50 to 0.54), so nothing can succeed; ρ = 2e-3 has room and breaks every example.
  """
  p = LinearProblem(4, seed=6)
  assert p.min_norm.min() > 1400 * 2e-4 * 1.5

  def run(learning_rate):
    return attacks.carlini_wagner_l2(
      p.logits_fn,
      p.inputs,
      p.labels,
      learning_rate=learning_rate,
      initial_const=100.0,
      binary_search_steps=1,
      steps=100,
      abort_early=False,
    )

  assert not np.asarray(run(2e-4).success).any()
  fast = run(2e-3)
  assert fast.success.all()
  assert (np.asarray(fast.l2) / p.min_norm > _BELOW).all()


def test_pgd_without_random_start_and_one_full_step_is_fgm():
  p = LinearProblem(8, seed=11)
  eps = float(np.median(p.min_norm))
  pgd = attacks.pgd_l2(
    p.logits_fn, p.inputs, p.labels, eps=eps, steps=1, step_size=eps, random_start=False
  )
  fgm = attacks.fgm_l2(p.logits_fn, p.inputs, p.labels, eps=eps)
  np.testing.assert_allclose(pgd.adv, fgm.adv, atol=1e-6)
  np.testing.assert_array_equal(pgd.success, fgm.success)
  assert np.asarray(pgd.success).any() and not np.asarray(pgd.success).all()
  # A random start lands elsewhere in the ball.
  randomised = attacks.pgd_l2(p.logits_fn, p.inputs, p.labels, eps=eps, steps=1, step_size=eps)
  assert np.abs(np.asarray(randomised.adv) - np.asarray(fgm.adv)).max() > 1e-3


def _visited_constants(initial_const, search_steps):
  """Every constant the bisection (×10 until an upper bound is known) can try, in float32."""
  visited = set()
  for outcomes in itertools.product([False, True], repeat=search_steps):
    const, lower, upper = np.float32(initial_const), np.float32(0), np.float32(1e10)
    for found in outcomes:
      visited.add(const)
      upper, lower = (min(upper, const), lower) if found else (upper, max(lower, const))
      const = (lower + upper) / 2 if upper < 1e9 else (const if found else const * 10)
  return visited


def test_carlini_wagner_raises_a_constant_too_small_to_succeed():
  """At rate 2e-3 and 100 steps the constants 1e-4 to 1e-2 cannot cross (measured): the search
  must raise the constant tenfold per step, then bisect, to find the minimum."""
  p = LinearProblem(4, seed=6)
  r, best_const = attacks.carlini_wagner_l2(
    p.logits_fn,
    p.inputs,
    p.labels,
    learning_rate=2e-3,
    initial_const=1e-4,
    binary_search_steps=9,
    max_iterations=100,
    return_best_const=True,
  )
  assert r.success.all()
  assert (np.asarray(best_const) > 1e-2).all(), best_const
  visited = _visited_constants(1e-4, 9)
  assert all(np.float32(c) in visited for c in np.asarray(best_const)), best_const
  ratio = np.asarray(r.l2) / p.min_norm
  assert (ratio > _BELOW).all() and (ratio < 1.01).all(), ratio
