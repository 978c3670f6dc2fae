"""Square Attack (L2): a bounded, score-based attack whose cost is counted in forward passes."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks
from ddn_jax.attacks import _square
from ddn_jax.reference import LinearProblem


@pytest.fixture(scope='module')
def problem():
  return LinearProblem(8, seed=5)


def _adversarial(logits_fn, adv, labels):
  return np.asarray(logits_fn(adv)).argmax(1) != labels


@pytest.mark.parametrize('factor', [0.5, 2.0, 4.0])
def test_points_stay_in_the_ball_and_the_box_and_success_is_rechecked(problem, factor):
  eps = float(problem.min_norm.mean()) * factor
  r = attacks.square_l2(problem.logits_fn, problem.inputs, problem.labels, eps=eps, queries=50)
  adv = np.asarray(r.adv)
  assert adv.min() >= 0 and adv.max() <= 1
  exact = np.linalg.norm((adv.astype(np.float64) - problem.inputs).reshape(8, -1), axis=1)
  assert (exact <= eps * (1 + 1e-6)).all(), exact / eps
  # Every point lies on the ε-sphere, moved inwards only where the box clips it.
  assert (exact >= 0.9 * eps).all(), exact / eps
  np.testing.assert_array_equal(r.success, _adversarial(problem.logits_fn, r.adv, problem.labels))
  np.testing.assert_array_equal(r.num_grads, 0)


def test_forward_passes_are_counted_exactly_and_a_broken_example_stops():
  """Counted in the model, one example at a time: ``num_forwards`` calls in the search (start
  and queries), plus two in the final check (clean input, returned point). A broken example
  makes exactly one adversarial query, its last; an unbroken one makes all of them."""
  problem = LinearProblem(6, seed=3)
  queries = 300
  calls = []

  def counted(x):
    z = problem.logits_fn(x)
    jax.debug.callback(lambda z: calls.append(np.asarray(z).argmax(1)), z)
    return z

  counted_fn = jax.tree_util.Partial(counted)
  keys = jax.vmap(functools.partial(jax.random.fold_in, jax.random.key(0)))(np.arange(6))
  eps = 3 * problem.min_norm.max()
  outcomes = []
  for i in range(6):
    calls.clear()
    x, y = problem.inputs[i : i + 1], problem.labels[i : i + 1]
    r = attacks.square_l2(counted_fn, x, y, eps=eps, queries=queries, key=keys[i : i + 1])
    jax.block_until_ready(r)
    jax.effects_barrier()
    forwards = int(r.extras['num_forwards'][0])
    assert len(calls) == forwards + 2
    adversarial = sum(int(c[0] != y[0]) for c in calls)
    if r.success[0]:
      assert forwards <= queries and adversarial == 2  # the breaking query, the final check
    else:
      assert forwards == queries + 1 and adversarial == 0
    outcomes.append((bool(r.success[0]), forwards))
  assert any(s for s, _ in outcomes), outcomes  # the test saw broken examples stop
  # In a batch, with the same per-example keys, each example counts as it did alone.
  batch = attacks.square_l2(
    problem.logits_fn, problem.inputs, problem.labels, eps=eps, queries=queries, key=keys
  )
  np.testing.assert_array_equal(batch.extras['num_forwards'], [f for _, f in outcomes])
  np.testing.assert_array_equal(batch.success, [s for s, _ in outcomes])


def test_restarts_run_until_one_breaks_the_example(problem):
  # Below the minimal norm nothing breaks: every restart runs all its queries.
  eps = 0.8 * float(problem.min_norm.min())
  r = attacks.square_l2(
    problem.logits_fn, problem.inputs, problem.labels, eps=eps, queries=20, restarts=3
  )
  assert not r.success.any()
  np.testing.assert_array_equal(r.extras['num_forwards'], 3 * 21)
  # Far above it the first run breaks every example and no restart follows: the same result as
  # one run (the first run draws from the same key).
  run = functools.partial(
    attacks.square_l2, problem.logits_fn, problem.inputs, problem.labels, eps=20.0, queries=20
  )
  three, one = run(restarts=3), run(restarts=1)
  assert one.success.all()
  np.testing.assert_array_equal(three.extras['num_forwards'], one.extras['num_forwards'])
  np.testing.assert_array_equal(three.adv, one.adv)


def test_linear_model_bounded_by_the_exact_minimal_norm():
  """Nothing is broken at 0.8 times the exact minimal norm (no point of the ball is
  adversarial); most examples are at 3 times it, with enough queries."""
  p = LinearProblem(16, seed=1)
  run = lambda eps: attacks.square_l2(p.logits_fn, p.inputs, p.labels, eps=eps, queries=1000)
  below = run(0.8 * float(p.min_norm.min()))
  assert not below.success.any()
  above = run(3 * float(p.min_norm.max()))
  assert np.mean(above.success) >= 0.75, np.mean(above.success)


def test_the_lower_loss_is_kept_when_nothing_breaks(problem):
  """The search only accepts points that lower the margin: the returned point's margin is below
  the start's (the same run with one query)."""

  def margin(adv):
    z = np.asarray(problem.logits_fn(adv))
    y = problem.labels
    other = np.where(np.arange(10) == y[:, None], -np.inf, z).max(1)
    return z[np.arange(8), y] - other

  eps = 0.8 * float(problem.min_norm.min())
  run = lambda q: attacks.square_l2(
    problem.logits_fn, problem.inputs, problem.labels, eps=eps, queries=q, p_init=0.3
  )
  start, searched = margin(run(1).adv), margin(run(200).adv)
  assert (searched <= start).all()
  assert np.mean(searched < start) >= 0.75


def test_targeted_reaches_the_target(problem):
  targets = problem.near
  r = attacks.square_l2(
    problem.logits_fn, problem.inputs, targets, targeted=True, eps=20.0, queries=500
  )
  pred = np.asarray(problem.logits_fn(r.adv)).argmax(1)
  np.testing.assert_array_equal(np.asarray(r.success), pred == targets)
  assert r.success.mean() >= 0.75


def test_new_eps_and_p_init_do_not_recompile(problem, monkeypatch):
  _square._square_l2.clear_cache()
  monkeypatch.setattr(
    _square, '_square_single', chex.assert_max_traces(_square._square_single, n=1)
  )
  for eps, p_init in ((0.5, 0.8), (1.0, 0.3), (2.0, 0.05)):
    attacks.square_l2(
      problem.logits_fn, problem.inputs, problem.labels, eps=eps, p_init=p_init, queries=5
    )
  assert _square._square_l2._cache_size() == 1
  with pytest.raises(AssertionError, match='trace'):
    attacks.square_l2(problem.logits_fn, problem.inputs, problem.labels, eps=1.0, queries=6)
  # Traced under the caller's jit: one eps per call of the compiled function.
  robust = jax.jit(
    lambda e: (
      attacks.square_l2(problem.logits_fn, problem.inputs, problem.labels, eps=e, queries=5).success
    )
  )
  np.testing.assert_array_equal(
    robust(1.0),
    attacks.square_l2(
      problem.logits_fn, problem.inputs, problem.labels, eps=1.0, queries=5
    ).success,
  )


def test_the_key_sets_the_search(problem):
  run = lambda key: attacks.square_l2(
    problem.logits_fn, problem.inputs, problem.labels, eps=1.0, queries=5, key=key
  )
  a, b, c = run(jax.random.key(1)), run(jax.random.key(1)), run(jax.random.key(2))
  np.testing.assert_array_equal(a.adv, b.adv)
  assert not np.allclose(a.adv, c.adv)


def test_nonfinite_logits_are_never_a_success_nor_kept(problem):
  """NaN logits beyond a radius smaller than eps: no NaN point is returned or counted."""
  x0 = jnp.asarray(problem.inputs)
  radius = 0.5 * float(problem.min_norm.min())

  def nan_far(x):
    far = jnp.sqrt(jnp.sum(jnp.square(x - x0), axis=(1, 2, 3))) > radius
    return jnp.where(far[:, None], jnp.nan, problem.logits_fn(x))

  r = attacks.square_l2(nan_far, problem.inputs, problem.labels, eps=2 * radius, queries=20)
  assert not r.success.any()
  np.testing.assert_array_equal(r.adv, problem.inputs)  # every point queried was NaN
  np.testing.assert_array_equal(r.model_finite, True)

  def nan_everywhere(x):
    return problem.logits_fn(x) * jnp.nan

  r = attacks.square_l2(nan_everywhere, problem.inputs, problem.labels, eps=1.0, queries=5)
  assert not r.success.any() and not r.model_finite.any()
  np.testing.assert_array_equal(r.adv, problem.inputs)


def test_eta_is_the_reference_pattern():
  """The pattern of torchattacks 3.5.1's ``eta(s)`` (untransposed), written out for s = 5:
  upper 2 rows and lower 3 rows of concentric rectangles, weights summing 1 / (ring + 1)^2."""
  sums = jnp.asarray(_square._rectangle_sums(8))
  g = np.arange(5)
  eta = np.asarray(_square._eta(g[:, None], g[None, :], 5, sums), np.float64)
  # Upper half (2 x 5, centre row 1, column 2): rings by distance max(|i - 1|, |j - 2|), 3 rings.
  ring_value = lambda d: sum(1 / (k + 1) ** 2 for k in range(d, 3))
  upper = np.array([[ring_value(max(abs(i - 1), abs(j - 2))) for j in g] for i in range(2)])
  lower = np.array([[ring_value(max(abs(i - 1), abs(j - 2))) for j in g] for i in range(3)])
  expected = np.concatenate([upper / np.linalg.norm(upper), -lower / np.linalg.norm(lower)])
  np.testing.assert_allclose(eta, expected / np.linalg.norm(expected), rtol=1e-6, atol=1e-7)


def test_schedule_halves_p_as_the_reference():
  # torchattacks' p_selection on int(i / queries * 10000): halvings after 10, 50, 200, ... 8000.
  h = _square._halvings(10000)
  assert list(h[[0, 10, 11, 50, 51, 200, 201, 8000, 8001, 9999]]) == [0, 0, 1, 1, 2, 2, 3, 8, 9, 9]
  h = _square._halvings(100)  # rescaled: query 1 is at 100 on the 10000 scale
  assert list(h[:3]) == [0, 2, 2]


@pytest.mark.parametrize(
  'kwargs, error, match',
  [
    ({'eps': -1.0}, ValueError, 'eps'),
    ({'eps': 1.0, 'p_init': 0.0}, ValueError, 'p_init must be > 0'),
    ({'eps': 1.0, 'p_init': 1.5}, ValueError, 'p_init must be <= 1'),
    ({'eps': 1.0, 'queries': 0}, ValueError, 'queries must be >= 1'),
    ({'eps': 1.0, 'queries': 10.0}, TypeError, 'queries must be a Python int'),
    ({'eps': 1.0, 'restarts': 0}, ValueError, 'restarts must be >= 1'),
    ({'eps': 1.0, 'loss': 'dlr'}, ValueError, "loss must be 'margin' or 'ce'"),
  ],
)
def test_bad_hyperparameters_get_clear_errors(problem, kwargs, error, match):
  with pytest.raises(error, match=match):
    attacks.square_l2(problem.logits_fn, problem.inputs, problem.labels, **kwargs)


def test_too_small_images_are_rejected():
  x = np.full((2, 4, 8, 1), 0.5, np.float32)
  logits_fn = lambda v: jnp.zeros((v.shape[0], 3)) + jnp.sum(v, axis=(1, 2, 3))[:, None]
  with pytest.raises(ValueError, match=r'at least 5×5 pixels.*got 4×8'):
    attacks.square_l2(logits_fn, x, np.zeros(2, np.int32), eps=1.0)


def test_registered_as_a_bounded_attack_without_adv_lib_counterpart(problem):
  entry = attacks.get_attack('square')
  assert entry.function is attacks.square_l2 and not entry.minimum_norm and entry.targeted
  assert entry.adv_lib is None
  with pytest.raises(ValueError, match='needs eps'):
    attacks.parse_attack('square')
  attack = attacks.parse_attack('square:eps=2,queries=30')
  assert attack.label == 'Square 30 (eps=2)'
  assert attacks.parse_attack(attack.spec).settings == attack.settings
  ours = attack(problem.logits_fn, problem.inputs, problem.labels)
  direct = attacks.square_l2(problem.logits_fn, problem.inputs, problem.labels, eps=2, queries=30)
  np.testing.assert_array_equal(ours.adv, direct.adv)
