"""FAB and FAB-T: the hyperplane-box projection against its definition, exact steps and norms
on the linear model, the eps criterion, exact query counts and traced hyperparameters.

The shared contract (invariants, non-finite models, batches, sharding, errors) is tested with
every other attack in test_attacks_api.py and test_nonfinite.py; the parity with adv-lib on the
reference CNN in test_compare_pytorch.py and experiments/fab_parity.py.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optional_deps import require

from ddn_jax import attacks, interop
from ddn_jax.attacks import _fab
from ddn_jax.reference import LinearProblem


@pytest.fixture(scope='module')
def problem():
  return LinearProblem(8, seed=4)


# --- the projection onto {z: w·z = b} ∩ [0, 1]^n ---------------------------------------------


def _nearest_on_hyperplane_in_box(t, w, b):
  """The definition, in float64: by the KKT conditions the nearest point is ``clip(t - λ w)``
  with ``λ`` the root of the decreasing ``w·clip(t - λ w) - b``, found by bisection; where the
  box holds no point of the hyperplane, the box's corner nearest it."""
  g = lambda lam: np.dot(w, np.clip(t - lam * w, 0, 1)) - b
  lo, hi = -1.0, 1.0
  while g(hi) > 0 and hi < 1e12:
    hi *= 2
  while g(lo) < 0 and lo > -1e12:
    lo *= 2
  if g(hi) > 0:  # even the corner in the direction -w stays above the hyperplane
    return np.clip(t - 1e13 * w, 0, 1), False
  if g(lo) < 0:
    return np.clip(t + 1e13 * w, 0, 1), False
  for _ in range(200):
    mid = (lo + hi) / 2
    lo, hi = (mid, hi) if g(mid) > 0 else (lo, mid)
  return np.clip(t - (lo + hi) / 2 * w, 0, 1), True


def test_projection_is_the_nearest_point_of_the_hyperplane_in_the_box():
  rng = np.random.default_rng(0)
  project = jax.jit(attacks.project_hyperplane_box)
  kinds = {'free': 0, 'box binds': 0, 'infeasible': 0}
  for trial in range(120):
    n = [5, 8, 33, 100][trial % 4]
    t = rng.uniform(0, 1, n)
    t[rng.random(n) < 0.2] = rng.choice([0.0, 1.0])  # pixels at the box's faces, as images have
    w = rng.normal(size=n)
    w[rng.random(n) < 0.1] = 0  # coordinates the hyperplane ignores never move
    # Distances from a fraction of the box to far beyond it, on either side.
    distance = rng.choice([-1, 1]) * np.exp(rng.uniform(np.log(0.01), np.log(3 * np.sqrt(n))))
    b = np.dot(w, t) - distance * np.linalg.norm(w)
    expected, feasible = _nearest_on_hyperplane_in_box(t, w, b)
    d = np.asarray(project(*(jnp.asarray(v, jnp.float32) for v in (t, w, b))), np.float64)
    np.testing.assert_allclose(t + d, expected, atol=2e-5, err_msg=f'trial {trial}')
    unclipped = t - (np.dot(w, t) - b) / np.dot(w, w) * w
    if not feasible:
      kinds['infeasible'] += 1
    elif ((unclipped < 0) | (unclipped > 1)).any():
      kinds['box binds'] += 1
      assert abs(np.dot(w, t + d) - b) < 1e-4 * max(1, abs(b))  # on the hyperplane
    else:
      kinds['free'] += 1
  assert min(kinds.values()) >= 10, kinds


def test_projection_moves_nothing_for_a_zero_normal():
  t = jnp.linspace(0, 1, 7)
  for b in (0.0, 1.0):
    np.testing.assert_array_equal(attacks.project_hyperplane_box(t, jnp.zeros(7), b), 0)


# --- exact steps and norms on the linear model -------------------------------------------------


def _runs(p):
  """Each attack with the labels it takes: one linearised boundary of the linear model reaches
  the minimal perturbation (untargeted, FAB-T's first target, and targeted at ``near``)."""
  return {
    'fab': (attacks.fab_l2, p.labels, {}),
    'fab-t': (attacks.fab_targeted_l2, p.labels, {'num_targets': 1}),
    'fab targeted': (attacks.fab_l2, p.near, {'targeted': True}),
  }


@pytest.mark.parametrize('run', ['fab', 'fab-t', 'fab targeted'])
def test_one_step_overshoots_the_exact_projection_by_eta(problem, run):
  # From the input both projections coincide, so the first iterate is x + η d, d the exact
  # minimal perturbation: its norm is η times the minimal norm, whatever alpha_max.
  attack, labels, kwargs = _runs(problem)[run]
  for eta, alpha_max in ((1.05, 0.1), (1.3, 0.5)):
    r = attack(problem.logits_fn, problem.inputs, labels, steps=1, eta=eta, alpha_max=alpha_max,
               **kwargs)  # fmt: skip
    assert r.success.all()
    np.testing.assert_allclose(np.asarray(r.l2) / problem.min_norm, eta, rtol=2e-5)


def _along_the_normal(steps, alpha_max, beta, eta):
  """FAB on one linear boundary, followed along its normal: the iterate at distance ``u`` (in
  units of the minimal norm) from the input; both projections land on the boundary at 1. The
  best adversarial ``u`` after ``steps``, in float64."""
  u, best = 0.0, np.inf
  for _ in range(steps):
    alpha = min(abs(1 - u) / (abs(1 - u) + 1), alpha_max)
    u = (1 - alpha) * (u + eta * (1 - u)) + alpha * eta
    if u > 1:
      best, u = min(best, u), beta * u
  return best


@pytest.mark.parametrize('run', ['fab', 'fab-t', 'fab targeted'])
# The defaults; then a backward step far enough that alpha_max binds (at 0.1, and 0.02).
@pytest.mark.parametrize(
  'steps, alpha_max, beta, eta', [(20, 0.1, 0.9, 1.05), (7, 0.1, 0.5, 1.2), (10, 0.02, 0.6, 1.1)]
)
def test_norms_follow_the_algorithm_along_the_normal(problem, run, steps, alpha_max, beta, eta):
  # On a linear model every step stays on the line through the input along the boundary's
  # normal (the box never binds here): the norms are the 1-D recursion's, a few float32 ulps
  # apart, within 0.6% of the minimal norm after 20 steps at the default hyperparameters.
  attack, labels, kwargs = _runs(problem)[run]
  r = attack(problem.logits_fn, problem.inputs, labels, steps=steps, alpha_max=alpha_max,
             beta=beta, eta=eta, **kwargs)  # fmt: skip
  assert r.success.all()
  expected = _along_the_normal(steps, alpha_max, beta, eta)
  np.testing.assert_allclose(np.asarray(r.l2) / problem.min_norm, expected, rtol=1e-5)
  if steps == 20:
    assert expected < 1.006


def test_fab_t_keeps_the_smallest_adversarial_over_its_targets(problem):
  # The nearest boundary (near) is the first target; the others' boundaries are twice as far in
  # logits. Reversing which target comes first must not change the result.
  r = attacks.fab_targeted_l2(problem.logits_fn, problem.inputs, problem.labels, steps=20,
                              num_targets=3)  # fmt: skip
  one = attacks.fab_targeted_l2(problem.logits_fn, problem.inputs, problem.labels, steps=20,
                                num_targets=1)  # fmt: skip
  np.testing.assert_array_equal(r.adv, one.adv)
  np.testing.assert_array_equal(r.num_grads, 3 * 20)


# --- eps: AutoAttack's criterion ---------------------------------------------------------------


@pytest.mark.parametrize('attack', [attacks.fab_l2, attacks.fab_targeted_l2])
def test_with_eps_only_an_adversarial_within_eps_counts(problem, attack):
  kwargs = {'num_targets': 2} if attack is attacks.fab_targeted_l2 else {'restarts': 2}
  run = functools.partial(attack, problem.logits_fn, problem.inputs, problem.labels, steps=10,
                          **kwargs)  # fmt: skip
  free = run()
  assert free.success.all()
  norms = np.sort(np.asarray(free.l2))
  # A radius in the widest gap between the norms: rounding cannot move one across it.
  gap = np.argmax(np.diff(norms[1:-1])) + 1
  eps = float(norms[gap : gap + 2].mean())
  assert np.min(np.abs(norms - eps)) > 1e-3 * eps
  r = run(eps=eps)
  inside = np.asarray(free.l2) <= eps
  assert 0 < inside.sum() < len(inside)
  np.testing.assert_array_equal(r.success, inside)
  np.testing.assert_array_equal(np.asarray(r.adv)[inside], np.asarray(free.adv)[inside])
  np.testing.assert_array_equal(np.asarray(r.adv)[~inside], problem.inputs[~inside])
  # An example stops once broken: one run; the others make all of theirs.
  rows = 1 if attack is attacks.fab_targeted_l2 else 9
  np.testing.assert_array_equal(r.num_grads, np.where(inside, 10 * rows, 2 * 10 * rows))


# --- exact query counts ------------------------------------------------------------------------


def _counting(logits_fn):
  """``logits_fn``, counting its forward calls and, per example, its backward passes."""
  forwards, backwards = [], []

  @jax.custom_vjp
  def watch(z):
    return z

  def backward(_, g):
    # Under the Jacobian's vmap the callback runs once per row: one backward pass each.
    jax.debug.callback(lambda g: backwards.append(1), g)
    return (g,)

  watch.defvjp(lambda z: (z, None), backward)

  def fn(x):
    jax.debug.callback(lambda: forwards.append(1))
    return watch(logits_fn(x))

  return fn, forwards, backwards


@pytest.mark.parametrize(
  'attack, kwargs, rows',
  [
    (attacks.fab_l2, {'restarts': 2}, 9),  # the Jacobian of the 9 differences to the label
    (attacks.fab_targeted_l2, {'num_targets': 3}, 1),
    (attacks.fab_l2, {'targeted': True}, 1),
    (attacks.fab_targeted_l2, {'num_targets': 2, 'restarts': 2}, 1),
  ],
)
def test_num_grads_and_num_forwards_count_the_models_passes(problem, attack, kwargs, rows):
  fn, forwards, backwards = _counting(problem.logits_fn)
  labels = problem.near if kwargs.get('targeted') else problem.labels
  r = attack(fn, problem.inputs[:1], labels[:1], steps=3, **kwargs)
  jax.block_until_ready(r)
  jax.effects_barrier()
  runs = kwargs.get('restarts', 1) * kwargs.get('num_targets', 1)
  assert int(r.num_grads[0]) == len(backwards) == runs * 3 * rows
  # Besides the final check's two forward passes (the returned point, and the clean input).
  assert int(r.extras['num_forwards'][0]) == len(forwards) - 2 == 1 + runs * 2 * 3


def test_an_already_misclassified_example_costs_one_forward_pass(problem):
  wrong = (problem.labels + 1) % 10
  r = attacks.fab_targeted_l2(problem.logits_fn, problem.inputs, wrong, steps=5)
  np.testing.assert_array_equal(r.num_grads, 0)
  np.testing.assert_array_equal(r.extras['num_forwards'], 1)


# --- tracing and randomness --------------------------------------------------------------------


def test_new_float_hyperparameters_do_not_recompile(problem, monkeypatch):
  _fab._fab_l2.clear_cache()
  monkeypatch.setattr(_fab, '_fab_single', chex.assert_max_traces(_fab._fab_single, n=1))
  for scale in (1.0, 0.5, 0.8):
    attacks.fab_l2(problem.logits_fn, problem.inputs, problem.labels, steps=2, eps=scale,
                   alpha_max=0.1 * scale, beta=0.9 * scale, eta=1 + 0.05 * scale)  # fmt: skip
  assert _fab._fab_l2._cache_size() == 1
  with pytest.raises(AssertionError, match='trace'):
    attacks.fab_l2(problem.logits_fn, problem.inputs, problem.labels, steps=3, eps=1.0)


def test_restarts_start_from_the_key_where_the_first_run_cannot_move():
  """Class 1 wins farther than 0.3 from the centre of the box, where the inputs lie: there the
  gradient is zero, so the first run never moves and only random starts can succeed."""

  def sphere(x):
    score = 10 * (jnp.sum(jnp.square(x - 0.5), axis=(1, 2, 3)) - 0.3**2)
    return jnp.stack([jnp.zeros_like(score), score], axis=1)

  x, y = np.full((4, 8, 8, 1), 0.5, np.float32), np.zeros(4, np.int32)
  run = functools.partial(attacks.fab_l2, sphere, x, y, steps=10)
  assert not run().success.any()
  a, b = run(restarts=2, key=jax.random.key(1)), run(restarts=2, key=jax.random.key(1))
  c = run(restarts=2, key=jax.random.key(2))
  for r in (a, c):
    assert r.success.all()
    assert (np.asarray(r.l2) > 0.3).all() and (np.asarray(r.l2) < 0.35).all(), r.l2
  np.testing.assert_array_equal(a.adv, b.adv)
  # The direction is the random start's: another key, another point on the sphere.
  assert not np.allclose(a.adv, c.adv, atol=1e-3)


# --- adv-lib's fab on the linear model's PyTorch twin -----------------------------------------


@pytest.mark.parametrize('attack', ['fab_l2', 'fab_targeted_l2'])
def test_linear_model_matches_adv_lib(problem, attack):
  """adv-lib's algorithm step for step: on the linear model (float32 on both sides, with no
  boundary case: every iterate is at least 0.5% of the minimal norm from the boundary) each
  example's norm agrees to float32 rounding, and the backward passes are counted alike."""
  require('torch')
  require('adv_lib')
  hparams = {**interop.DEFAULT_HPARAMS[attack], 'steps': 10}
  if attack == 'fab_targeted_l2':
    hparams['num_targets'] = 3
  args = (problem.inputs, problem.labels, hparams)
  ours = interop.comparison.run_ddn_jax(attack, problem.logits_fn, *args, warmup=False)
  ref = interop.comparison.run_adv_lib(attack, problem.torch_module(), *args)
  assert ours.success.all() and ref.success.all()
  np.testing.assert_allclose(ours.l2, ref.l2, rtol=1e-5)
  assert ours.grads_per_example == ref.grads_per_example == 10 * (9 if attack == 'fab_l2' else 3)
