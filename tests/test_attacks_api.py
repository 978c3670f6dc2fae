"""The contract every attack keeps: shapes, invariants, tracing, determinism and input errors.

One suite over all six attacks; what each algorithm computes is tested against exact references
in test_attacks_linear.py, test_attacks_deepfool_fmn.py and test_attacks_steps.py.
"""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ddn_jax
from ddn_jax import attacks, evaluation, models
from ddn_jax.attacks import _ddn, _deepfool, _fmn
from ddn_jax.reference import LinearProblem

ATTACKS = {
  'ddn': functools.partial(attacks.ddn, steps=20),
  'carlini_wagner_l2': functools.partial(
    attacks.carlini_wagner_l2,
    binary_search_steps=2,
    steps=20,
    learning_rate=0.1,
    initial_const=1.0,
    abort_early='example',  # The per-example loop, whose batch must not change any example.
  ),
  'deepfool': attacks.deepfool,
  'fmn_l2': functools.partial(attacks.fmn_l2, steps=20),
  'alma_l2': functools.partial(attacks.alma_l2, steps=8),
  'fgm_l2': functools.partial(attacks.fgm_l2, eps=0.55),
  # No random start: the result is then a function of the example alone (see the key test).
  'pgd_l2': functools.partial(attacks.pgd_l2, eps=0.55, steps=5, step_size=0.2, random_start=False),
  # Two steps of the cross-entropy: the DLR ranks the linear problem's clean logits, of which
  # eight are tied, and after a few more steps the iterates settle on one point of the sphere,
  # where the comparisons that halve the step size are rounding calls that the batch size can
  # flip (the algorithm is tested step by step in test_compare_pytorch.py).
  'apgd_l2': functools.partial(attacks.apgd_l2, eps=0.55, steps=2, loss='ce', random_start=False),
  'apgd_targeted_l2': functools.partial(
    attacks.apgd_targeted_l2, eps=0.55, steps=3, num_targets=2, random_start=False
  ),
  'square_l2': functools.partial(attacks.square_l2, eps=0.55, queries=10),
  'fab_l2': functools.partial(attacks.fab_l2, steps=5),
  'fab_targeted_l2': functools.partial(attacks.fab_targeted_l2, steps=5, num_targets=2),
}
MINIMUM_NORM = [
  'ddn', 'carlini_wagner_l2', 'deepfool', 'fmn_l2', 'alma_l2', 'fab_l2', 'fab_targeted_l2'
]  # fmt: skip
BOUNDED = ['fgm_l2', 'pgd_l2', 'apgd_l2', 'apgd_targeted_l2', 'square_l2']
# The attacks that quantise their points to grey levels when asked (DDN does by default).
QUANTISING = ['ddn', 'deepfool', 'fmn_l2', 'alma_l2']


# Every attack, on a small budget.
ALL_ATTACKS = {
  **ATTACKS,
  'deepfool': functools.partial(attacks.deepfool, steps=5),
  'fmn_l2': functools.partial(attacks.fmn_l2, steps=5),
}


@pytest.fixture(scope='module')
def problem():
  return LinearProblem(4, seed=21)


def _check_result(logits_fn, x, y, r, *, minimum_norm):
  n = len(x)
  assert isinstance(r, attacks.AttackResult)
  assert r.adv.shape == x.shape and r.adv.dtype == x.dtype
  assert r.l2.shape == r.success.shape == r.num_grads.shape == (n,)
  assert r.success.dtype == bool and r.num_grads.dtype == jnp.int32
  adv, success = np.asarray(r.adv), np.asarray(r.success)
  assert adv.min() >= 0 and adv.max() <= 1
  # l2 is the norm of the returned perturbation (float32 sums of squares: about 1e-6).
  exact = np.linalg.norm((adv.astype(np.float64) - x).reshape(n, -1), axis=1)
  np.testing.assert_allclose(r.l2, exact, rtol=1e-5, atol=1e-7)
  # success is what the model says about the returned point.
  np.testing.assert_array_equal(success, np.asarray(logits_fn(r.adv)).argmax(1) != y)
  if minimum_norm:  # a failed example comes back as the clean input
    np.testing.assert_array_equal(adv[~success], x[~success])
  np.testing.assert_array_equal(r.model_finite, np.isfinite(np.asarray(logits_fn(x))).all(1))


@pytest.mark.parametrize('name', list(ATTACKS))
def test_result_invariants(problem, name):
  r = ATTACKS[name](problem.logits_fn, problem.inputs, problem.labels)
  _check_result(
    problem.logits_fn, problem.inputs, problem.labels, r, minimum_norm=name in MINIMUM_NORM
  )
  # Minimal norms 0.60, 0.51, 0.52, 0.50: the bounded attacks (ε = 0.55) break all but the
  # first, the minimum-norm ones all four.
  expected = [name in MINIMUM_NORM, True, True, True]
  if name == 'square_l2':  # random steps, ~1/28 of them along the normal: far from 0.5 at 0.55
    expected = [False] * 4
  np.testing.assert_array_equal(r.success, expected)


@pytest.mark.parametrize('name', list(ATTACKS))
def test_success_is_rechecked_on_the_returned_point(name):
  """A model that ignores its input: examples labelled 0 can never be broken, 1 always are.

  The gradient is zero, so the attacks fall back to a random direction (or stay put): the result
  must be finite, the unbreakable examples must fail and come back unchanged (minimum-norm
  attacks), and the others succeed at norm 0 where the attack has nothing to do.
  """

  def flat(x):
    return jnp.zeros((x.shape[0], 10)) + 0 * jnp.sum(x, axis=(1, 2, 3))[:, None]

  x = np.full((4, 8, 8, 1), 0.5, np.float32)
  y = np.array([0, 1, 0, 1], np.int32)  # argmax of equal logits is class 0
  r = ATTACKS[name](flat, x, y)
  assert np.isfinite(np.asarray(r.adv)).all() and np.isfinite(np.asarray(r.l2)).all()
  np.testing.assert_array_equal(r.success, [False, True, False, True])
  _check_result(flat, x, y, r, minimum_norm=name in MINIMUM_NORM)


# APGD-T's targeted DLR needs 4 classes, ALMA's DLR 3 (tested in test_attacks_apgd.py and
# test_attacks_alma.py).
@pytest.mark.parametrize('name', [n for n in ATTACKS if n not in ('apgd_targeted_l2', 'alma_l2')])
def test_a_boundary_outside_the_box_is_never_reached(name):
  """Class 1 needs a mean pixel above 1.1: the gradient pushes every pixel to the box's edge,
  where nothing is adversarial. Minimum-norm attacks return the clean input, bounded ones their
  point in the ball; no attack may report a success."""

  def beyond_the_box(x):
    score = 10 * jnp.mean(x, axis=(1, 2, 3)) - 11
    return jnp.stack([jnp.zeros_like(score), score], axis=1)

  x = np.full((2, 8, 8, 1), 0.9, np.float32)
  y = np.zeros(2, np.int32)
  # Two classes: DeepFool's candidates and APGD's loss (the DLR needs 3) must say so.
  kwargs = {
    'deepfool': {'candidates': 2}, 'apgd_l2': {'loss': 'ce'}, 'fab_targeted_l2': {'num_targets': 1}
  }.get(name, {})  # fmt: skip
  r = ATTACKS[name](beyond_the_box, x, y, **kwargs)
  assert not np.asarray(r.success).any()
  _check_result(beyond_the_box, x, y, r, minimum_norm=name in MINIMUM_NORM)
  if name in BOUNDED:  # they did move, towards the edge
    assert (np.asarray(r.adv) > x).any()


@pytest.mark.parametrize('name', ['ddn', 'carlini_wagner_l2', 'fmn_l2', 'alma_l2'])
def test_minimum_norm_attacks_return_the_clean_input_on_failure(problem, name):
  # Budgets far too small to cross a boundary of norm ~0.5: nothing succeeds. (DeepFool crosses
  # a linear boundary in one step; the flat model above covers its failures.)
  starved = {
    'ddn': functools.partial(attacks.ddn, steps=1),  # evaluates the clean input only
    'carlini_wagner_l2': functools.partial(
      attacks.carlini_wagner_l2, binary_search_steps=1, steps=3, initial_const=1e-6
    ),
    'fmn_l2': functools.partial(attacks.fmn_l2, steps=1),
    'alma_l2': functools.partial(attacks.alma_l2, steps=2),
  }[name]
  r = starved(problem.logits_fn, problem.inputs, problem.labels)
  pred = np.asarray(problem.logits_fn(r.adv)).argmax(1)
  np.testing.assert_array_equal(r.success, pred != problem.labels)
  failed = ~np.asarray(r.success)
  assert failed.any()
  np.testing.assert_array_equal(np.asarray(r.adv)[failed], problem.inputs[failed])
  np.testing.assert_array_equal(np.asarray(r.l2)[failed], 0)


@pytest.mark.parametrize(
  'name,run,extra_calls',
  [
    ('ddn', functools.partial(attacks.ddn, steps=7), 2),
    ('fmn_l2', functools.partial(attacks.fmn_l2, steps=7), 2),
    ('alma_l2', functools.partial(attacks.alma_l2, steps=7), 2),
    ('fgm_l2', functools.partial(attacks.fgm_l2, eps=0.3), 2),
    ('pgd_l2', functools.partial(attacks.pgd_l2, eps=0.3, steps=7, step_size=0.1), 2),
    # Below the minimal norm (0.5): every run fails, so all of them run, 8 gradients each.
    ('apgd_l2', functools.partial(attacks.apgd_l2, eps=0.3, steps=7, restarts=2), 2),
    (
      'apgd_targeted_l2',
      functools.partial(attacks.apgd_targeted_l2, eps=0.3, steps=7, num_targets=3),
      3,  # APGD-T also ranks the targets by the clean logits
    ),
    (
      'carlini_wagner_l2',
      functools.partial(
        attacks.carlini_wagner_l2, binary_search_steps=2, steps=7, abort_early=False
      ),
      3,  # C&W also checks whether the clean input is already adversarial
    ),
  ],
)
def test_num_grads_counts_the_gradient_evaluations(problem, name, run, extra_calls):
  """Counted in the model: one call per gradient, plus two forward passes: the check of the
  returned point and the finiteness of the logits at the clean input (`model_finite`)."""
  calls = []

  def counted(x):
    jax.debug.callback(lambda: calls.append(1))
    return problem.logits_fn(x)

  r = run(counted, problem.inputs[:1], problem.labels[:1])
  assert int(jax.block_until_ready(r.num_grads)[0]) == len(calls) - extra_calls


def _counting_model(logits_fn):
  """``logits_fn`` counting, as it runs, the examples of each forward and backward pass.

  A backward pass is a pull-back of the logits' cotangent: a VJP vmapped over ``k`` rows (a
  Jacobian, DeepFool's logit differences) is ``k`` of them, as in AttackBench.
  """
  calls = {'forward': 0, 'backward': 0}

  def tick(kind, a, per_example):
    jax.debug.callback(lambda a: calls.__setitem__(kind, calls[kind] + a.size // per_example), a)

  @jax.custom_vjp
  def model(x):
    tick('forward', x, x[0].size)
    return logits_fn(x)

  def forward(x):
    tick('forward', x, x[0].size)
    return logits_fn(x), x

  def backward(x, g):
    tick('backward', g, g.shape[-1])
    return jax.vjp(logits_fn, x)[1](g)

  model.defvjp(forward, backward)
  return model, calls


@pytest.mark.parametrize('name', list(ALL_ATTACKS))
def test_forward_and_backward_counts_are_the_models_calls(problem, name):
  """``extras['num_forwards']`` and ``num_grads`` equal the passes counted in the model, on each
  example alone (a batch's vmapped loops also run the lanes of finished examples, which are
  discarded, not queries)."""
  assert set(ALL_ATTACKS) == {e.function.__name__ for e in attacks.ATTACKS.values()}
  run = ALL_ATTACKS[name]
  if name == 'carlini_wagner_l2':  # An aborting iteration evaluates its gradient unused.
    run = functools.partial(run, abort_early=False)
  for i in range(len(problem.labels)):  # examples the bounded attacks break and one they do not
    model, calls = _counting_model(problem.logits_fn)
    r = jax.block_until_ready(run(model, problem.inputs[i : i + 1], problem.labels[i : i + 1]))
    forwards, backwards = int(r.extras['num_forwards'][0]), int(r.num_grads[0])
    # finalize's re-check of the returned point and of the clean logits is not the attack's.
    assert calls['forward'] - 2 == forwards
    if name == 'deepfool':
      # The step that finds the point adversarial evaluates its 9 VJPs, then stops: unused.
      steps = backwards // 9
      assert backwards == 9 * steps and forwards == steps + 1
      backwards += 9
    assert calls['backward'] == backwards
    assert int(r.num_queries[0]) == int(r.num_grads[0]) + forwards


def test_fmn_counts_its_bisection_towards_starting_points(problem):
  x, y = problem.inputs[1:2], problem.labels[1:2]
  start = attacks.ddn(problem.logits_fn, x, y, steps=20)
  assert bool(start.success[0])
  model, calls = _counting_model(problem.logits_fn)
  r = attacks.fmn_l2(model, x, y, steps=5, binary_search_steps=7, starting_points=start.adv)
  jax.block_until_ready(r)
  # 5 value_and_grads, 7 bisection steps; then finalize's 2 and the check that the starting
  # points are adversarial (before the attack, not counted) are the model's other passes.
  assert int(r.extras['num_forwards'][0]) == 5 + 7 == calls['forward'] - 3
  assert int(r.num_grads[0]) == 5 == calls['backward']
  spec = attacks.make_attack('fmn', steps=5, binary_search_steps=7, starting_points=start.adv)
  assert spec.max_queries(num_classes=10) == int(r.num_queries[0])


@pytest.mark.parametrize('name', QUANTISING)
def test_quantised_points_lie_on_the_grid(problem, name):
  r = ATTACKS[name](problem.logits_fn, problem.inputs, problem.labels, levels=256)
  assert r.success.any()
  adv = np.asarray(r.adv, np.float64)[np.asarray(r.success)] * 255
  np.testing.assert_allclose(adv, np.round(adv), atol=1e-4)


def test_ddn_max_norm_projects_into_the_ball():
  p = LinearProblem(4, seed=2)
  x = np.round(p.inputs * 255) / 255  # Images on the grid, as real images are.
  free = attacks.ddn(p.logits_fn, x, p.labels, steps=30)
  max_norm = float(p.min_norm.min()) * 0.5
  r = attacks.ddn(p.logits_fn, x, p.labels, steps=30, eps=max_norm)
  assert (np.asarray(r.l2) <= max_norm + 1e-6).all()
  adv = np.asarray(r.adv, np.float64) * 255
  np.testing.assert_allclose(adv, np.round(adv), atol=1e-4)
  # The same point as the unconstrained attack's, shrunk into the ball, to within a grey level.
  delta = np.asarray(free.adv - x).reshape(4, -1)
  scale = np.minimum(1, max_norm / np.linalg.norm(delta, axis=1))
  projected = x + (delta * scale[:, None]).reshape(x.shape)
  np.testing.assert_array_less(np.abs(np.asarray(r.adv) - projected), 1 / 255 + 1e-6)
  # Below the minimal norm nothing can be adversarial, yet the projected points are kept.
  assert not r.success.any()


@pytest.mark.parametrize('name', MINIMUM_NORM)
def test_already_misclassified_example_is_returned_unchanged(problem, name):
  # Norm exactly 0 (not C&W's tanh rounding), so robust accuracy at ε = 0 is the clean accuracy.
  wrong = (problem.labels + 1) % 10
  r = ATTACKS[name](problem.logits_fn, problem.inputs, wrong)
  assert r.success.all()
  np.testing.assert_array_equal(r.adv, problem.inputs)
  np.testing.assert_array_equal(r.l2, 0)
  if name == 'deepfool':  # it stops before its first linearisation
    np.testing.assert_array_equal(r.num_grads, 0)


# APGD-T and ALMA rank the clean logits (their DLR), of which the linear problem ties eight:
# without a random start their gradient is then a rounding call (tested on untied logits in
# test_attacks_apgd.py and test_attacks_alma.py).
UNTIED = [n for n in ATTACKS if n not in ('apgd_targeted_l2', 'alma_l2')]


# The Square Attack is random with every key: a batch splits one key per example (see the
# per-example keys test).
@pytest.mark.parametrize('name', [n for n in UNTIED if n != 'square_l2'])
def test_batch_equals_stacked_single_examples(problem, name):
  attack = functools.partial(ATTACKS[name], problem.logits_fn)
  batch = attack(problem.inputs, problem.labels)
  for i in range(4):
    one = attack(problem.inputs[i : i + 1], problem.labels[i : i + 1])
    np.testing.assert_allclose(one.adv[0], batch.adv[i], atol=1e-6)
    assert one.success[0] == batch.success[i]
    assert one.num_grads[0] == batch.num_grads[i]


@pytest.mark.parametrize('name', list(ATTACKS))
def test_jit_equals_no_jit(problem, name):
  attack = functools.partial(ATTACKS[name], problem.logits_fn)
  x, y = problem.inputs[:2], problem.labels[:2]  # Eager loops are slow: two examples suffice.
  jitted = attack(x, y)
  with jax.disable_jit():
    eager = attack(x, y)
  np.testing.assert_allclose(eager.adv, jitted.adv, atol=1e-5)
  np.testing.assert_array_equal(eager.success, jitted.success)
  np.testing.assert_array_equal(eager.num_grads, jitted.num_grads)


@pytest.mark.parametrize('name', UNTIED)
def test_sharded_over_8_devices_equals_one_device(name):
  """jit partitions the vmapped attack over a batch sharded along a 'data' mesh axis."""
  assert jax.device_count() == 8
  p = LinearProblem(8, seed=4)
  mesh = jax.make_mesh((8,), ('data',))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  put = lambda a: jax.device_put(a, sharding)
  # FMN keeps the best iterate on the boundary, where the model's rounding (which differs by
  # ~1e-7 between a batch of 8 and one example per device) can change which iterate that is; on
  # the grey-level grid, as DDN works by default, the results are identical.
  # Square's points are eps * delta / ||delta||: the norm's float32 rounding (its sum's order
  # differs with the batch shape, ~1e-7 relative) comes out scaled by eps = 20.
  kwargs = {'fmn_l2': {'levels': 256}, 'square_l2': {'eps': 20.0}}.get(name, {})
  attack = functools.partial(ATTACKS[name], p.logits_fn, **kwargs)
  sharded, single = attack(put(p.inputs), put(p.labels)), attack(p.inputs, p.labels)
  assert len(sharded.adv.sharding.device_set) == 8
  assert sharded.success.any()
  np.testing.assert_allclose(sharded.adv, single.adv, atol=kwargs.get('eps', 1) * 1e-6)
  np.testing.assert_array_equal(sharded.success, single.success)
  np.testing.assert_array_equal(sharded.num_grads, single.num_grads)


# --- tracing: traced hyperparameters, caller's jit and vmap, keys ------------------------------


def test_new_float_hyperparameters_do_not_retrace(problem, monkeypatch):
  x, y = problem.inputs, problem.labels
  _ddn._ddn.clear_cache()
  monkeypatch.setattr(_ddn, '_ddn_single', chex.assert_max_traces(_ddn._ddn_single, n=1))
  for gamma in (0.05, 0.1, 0.2):
    attacks.ddn(
      problem.logits_fn, x, y, steps=10, gamma=gamma, init_norm=gamma * 10, alpha_init=1 + gamma
    )
  assert _ddn._ddn._cache_size() == 1
  _deepfool._deepfool.clear_cache()
  monkeypatch.setattr(
    _deepfool, '_deepfool_batch', chex.assert_max_traces(_deepfool._deepfool_batch, n=1)
  )
  for overshoot in (0.0, 0.02, 0.1):
    attacks.deepfool(problem.logits_fn, x, y, overshoot=overshoot)
  assert _deepfool._deepfool._cache_size() == 1
  _fmn._fmn_l2.clear_cache()
  monkeypatch.setattr(_fmn, '_fmn_single', chex.assert_max_traces(_fmn._fmn_single, n=1))
  for scale in (1.0, 0.5, 2.0):
    attacks.fmn_l2(
      problem.logits_fn,
      x,
      y,
      steps=10,
      alpha_init=scale,
      gamma_init=0.05 * scale,
      gamma_final=0.001 * scale,
    )
  assert _fmn._fmn_l2._cache_size() == 1
  with pytest.raises(AssertionError, match='trace'):
    # A static argument does recompile: the counter itself can fail.
    attacks.fmn_l2(problem.logits_fn, x, y, steps=11)


def test_vmap_over_hyperparameter_grid(problem):
  gammas = jnp.array([0.02, 0.05, 0.2])

  def l2_for(gamma):
    return attacks.ddn(
      problem.logits_fn, problem.inputs, problem.labels, steps=20, gamma=gamma, levels=None
    ).l2

  swept = jax.vmap(l2_for)(gammas)
  assert swept.shape == (3, 4)
  for i, g in enumerate(gammas):
    np.testing.assert_allclose(swept[i], l2_for(float(g)), rtol=1e-5)
  # Under the caller's jit too, with the images closed over as constants.
  np.testing.assert_allclose(jax.jit(jax.vmap(l2_for))(gammas), swept, rtol=1e-5)


def test_closed_over_inputs_are_checked_inside_a_callers_jit(problem):
  bad = problem.inputs + 2.0
  with pytest.raises(ValueError, match=r'pixels in \[0, 1\]'):
    jax.jit(lambda g: attacks.ddn(problem.logits_fn, bad, problem.labels, gamma=g).l2)(0.05)


def test_pgd_random_start_draws_from_the_key(problem):
  run = lambda key, **kw: attacks.pgd_l2(
    problem.logits_fn,
    problem.inputs,
    problem.labels,
    eps=0.3,
    steps=2,
    step_size=0.1,
    key=key,
    **kw,
  )
  a, b = run(jax.random.key(1)), run(jax.random.key(1))
  np.testing.assert_array_equal(a.adv, b.adv)
  c = run(jax.random.key(2))
  assert not np.allclose(a.adv, c.adv)
  # Without a random start the key plays no part.
  d, e = run(jax.random.key(1), random_start=False), run(jax.random.key(2), random_start=False)
  np.testing.assert_array_equal(d.adv, e.adv)
  assert not np.allclose(a.adv, d.adv)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize('name', list(ATTACKS))
def test_bad_inputs_get_clear_errors(problem, name):
  attack = functools.partial(ATTACKS[name], problem.logits_fn)
  x, y = problem.inputs, problem.labels
  cases = [
    (x + 0.5, y, ValueError, r'pixels in \[0, 1\]'),
    (x - 0.5, y, ValueError, r'pixels in \[0, 1\]'),
    (x[0], y, ValueError, r'rank 3'),
    ((x * 255).astype(np.uint8), y, TypeError, 'floating point'),
    (x, y.astype(np.float32), TypeError, 'labels must be integers'),
    (x, y[:3], ValueError, r'labels must have shape'),
    (x, np.full_like(y, 10), ValueError, r'labels must be in \[0, 10\)'),
    (x, np.full_like(y, -1), ValueError, r'labels must be in \[0, 10\)'),
    (
      np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x).astype(np.float32),
      y,
      ValueError,
      'NaN',
    ),
  ]
  for inputs, labels, error, match in cases:
    with pytest.raises(error, match=match):
      attack(inputs, labels)
  with pytest.raises(ValueError, match='logits of shape'):
    ATTACKS[name](lambda v: problem.logits_fn(v)[0], x, y)
  with pytest.raises(TypeError, match='callable'):
    ATTACKS[name](None, x, y)


def test_bad_hyperparameters_get_clear_errors(problem):
  x, y, f = problem.inputs, problem.labels, problem.logits_fn
  bad = [
    (attacks.ddn, {'gamma': 1.5}, ValueError, 'gamma'),
    (attacks.ddn, {'gamma': 1.0}, ValueError, 'gamma must be < 1'),
    (attacks.ddn, {'gamma': 0.0}, ValueError, 'gamma'),
    (attacks.ddn, {'steps': 0}, ValueError, 'steps'),
    (attacks.ddn, {'levels': 1}, ValueError, 'levels'),
    (attacks.ddn, {'init_norm': -1.0}, ValueError, 'init_norm'),
    (attacks.ddn, {'gamma': float('nan')}, ValueError, 'gamma is NaN'),
    (attacks.ddn, {'steps': 10.0}, TypeError, 'steps must be a Python int'),
    (attacks.ddn, {'alpha_schedule': 'adv-lib'}, ValueError, 'alpha_schedule'),
    (attacks.carlini_wagner_l2, {'learning_rate': 0.0}, ValueError, 'learning_rate'),
    (attacks.carlini_wagner_l2, {'confidence': -1.0}, ValueError, 'confidence'),
    (attacks.carlini_wagner_l2, {'abort_early': 'always'}, ValueError, 'abort_early'),
    (attacks.pgd_l2, {'eps': -1.0, 'steps': 3, 'step_size': 0.1}, ValueError, 'eps'),
    (attacks.fgm_l2, {'eps': -1.0}, ValueError, 'eps'),
    (attacks.deepfool, {'targeted': True}, ValueError, 'untargeted'),
    (attacks.deepfool, {'candidates': 1}, ValueError, 'candidates must be >= 2'),
    (attacks.deepfool, {'candidates': 11}, ValueError, 'candidates must be <= num_classes = 10'),
    (attacks.deepfool, {'candidates': 3.0}, TypeError, 'candidates must be a Python int'),
    (attacks.deepfool, {'steps': 0}, ValueError, 'steps must be >= 1'),
    (attacks.deepfool, {'overshoot': -0.1}, ValueError, 'overshoot'),
    (attacks.deepfool, {'levels': 1}, ValueError, 'levels'),
    (attacks.fmn_l2, {'steps': 0}, ValueError, 'steps must be >= 1'),
    (attacks.fmn_l2, {'binary_search_steps': 0}, ValueError, 'binary_search_steps'),
    (attacks.fmn_l2, {'alpha_init': 0.0}, ValueError, 'alpha_init'),
    (attacks.fmn_l2, {'alpha_final': -1.0}, ValueError, 'alpha_final'),
    (attacks.fmn_l2, {'gamma_init': 0.0}, ValueError, 'gamma_init'),
    (attacks.fmn_l2, {'gamma_final': 1.5}, ValueError, 'gamma_final'),
    (attacks.fmn_l2, {'projection': 'cube'}, ValueError, 'projection'),
    (attacks.fmn_l2, {'starting_points': x}, ValueError, r'must all be adversarial; examples \['),
    (attacks.fmn_l2, {'starting_points': x[:2]}, ValueError, 'shape of inputs'),
    (attacks.fmn_l2, {'starting_points': x + 0.5}, ValueError, r'pixels in \[0, 1\]'),
  ]
  for attack, kwargs, error, match in bad:
    with pytest.raises(error, match=match):
      attack(f, x, y, **kwargs)


# --- helpers with a public name, and the compacting loop DeepFool and C&W run in -------------


def test_project_l2_ball_checks_shapes_and_stays_inside(problem):
  x = np.round(problem.inputs * 255) / 255
  far = np.clip(x + 0.2, 0, 1).astype(np.float32)
  out = np.asarray(attacks.project_l2_ball(x, far, 0.7))
  norms = np.linalg.norm((out - x).reshape(4, -1), axis=1)
  # Inside the ball, and no further in than the grid forces (0.2 per pixel is far outside).
  assert (norms <= 0.7 + 1e-6).all() and (norms > 0.7 - np.sqrt(x[0].size) / 255).all()
  np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-4)
  with pytest.raises(ValueError, match='must both have shape'):
    attacks.project_l2_ball(x, far[:2], 0.7)


def test_compacting_while_loop_equals_the_vmapped_loop_and_drops_finished_rows():
  trips = jnp.asarray(np.random.default_rng(0).integers(1, 40, size=64), jnp.int32)
  trips = trips.at[7].set(200)  # One slow example, as DeepFool's tail.
  batch_sizes = []

  def step(s):
    value, count, trip = s
    return value * 1.01 + jnp.sin(value + count), count + 1, trip

  def counted_step(s):
    jax.debug.callback(lambda v: batch_sizes.append(v.shape[0]), s[0])
    return step(s)

  running = lambda s: s[1] < s[2]
  init = (jnp.linspace(0.0, 1.0, 64), jnp.zeros(64, jnp.int32), trips)
  expected = jax.jit(jax.vmap(lambda s: jax.lax.while_loop(running, step, s)))(init)
  loop = functools.partial(attacks.compacting_while_loop, running, counted_step)
  got = jax.jit(loop)(init)
  np.testing.assert_array_equal(got[1], trips)
  np.testing.assert_allclose(got[0], expected[0], rtol=1e-6)
  # Each stage runs until at most a quarter of its rows still run: 64, then 16, then 4 rows.
  batch_sizes.clear()
  jax.block_until_ready(jax.jit(loop)(init))
  assert sorted(set(batch_sizes)) == [4, 16, 64]
  assert batch_sizes.count(64) < 40 and batch_sizes.count(4) >= 200 - 40
  assert sum(batch_sizes) < 64 * 60  # The vmapped loop processes 64 * 200 rows.


def test_project_l2_ball_rejects_bad_radius_and_levels(problem):
  x = problem.inputs
  with pytest.raises(ValueError, match='eps must be >= 0'):
    attacks.project_l2_ball(x, x, -0.1)
  with pytest.raises(ValueError, match='levels must be >= 2'):
    attacks.project_l2_ball(x, x, 0.5, levels=1)
  with pytest.raises(ValueError, match='eps must be >= 0'):
    attacks.ddn(problem.logits_fn, x, problem.labels, steps=2, eps=-1.0)


@pytest.mark.parametrize('eps', [0.0, 0.01, 0.1, 0.7])
def test_project_l2_ball_stays_inside_for_clean_images_off_the_grid(problem, eps):
  x = problem.inputs  # uniform random pixels: off the 256-level grid
  assert not np.allclose(x * 255, np.round(x * 255))
  far = np.clip(x + np.random.default_rng(0).normal(0, 0.05, x.shape), 0, 1).astype(np.float32)
  out = np.asarray(attacks.project_l2_ball(x, far, eps))
  norms = np.linalg.norm((out.astype(np.float64) - x).reshape(len(x), -1), axis=1)
  assert (norms <= eps + 1e-6).all(), norms
  assert out.min() >= 0 and out.max() <= 1
  if eps == 0:
    np.testing.assert_array_equal(out, x)
  # DDN in the ball does the same (it once returned L2 0.062 for eps = 0).
  r = attacks.ddn(problem.logits_fn, x, problem.labels, steps=5, eps=eps)
  assert (np.asarray(r.l2) <= eps + 1e-6).all(), r.l2


@pytest.mark.parametrize('dtype', [np.float16, jnp.bfloat16], ids=['float16', 'bfloat16'])
@pytest.mark.parametrize('name', list(ALL_ATTACKS))
def test_half_precision_images_are_attacked_in_float32(problem, name, dtype):
  low = problem.inputs.astype(dtype)
  r = ALL_ATTACKS[name](problem.logits_fn, low, problem.labels)
  assert r.adv.dtype == jnp.float32
  same = ALL_ATTACKS[name](problem.logits_fn, low.astype(np.float32), problem.labels)
  for field in ('adv', 'l2', 'success', 'num_grads'):
    np.testing.assert_array_equal(getattr(r, field), getattr(same, field))


@pytest.fixture(scope='module')
def small_cnn():
  model = models.SmallCNN()
  return models.make_logits_fn(model, model.init(jax.random.key(0), jnp.zeros((1, 28, 28, 1))))


@pytest.mark.parametrize('name', list(ALL_ATTACKS))
def test_empty_batch_gives_an_empty_result(small_cnn, name):
  # The library's models reshape to (N, -1), which fails for N = 0: the model is not called.
  x, y = np.zeros((0, 28, 28, 1), np.float32), np.zeros((0,), np.int32)
  r = ALL_ATTACKS[name](small_cnn, x, y)
  assert isinstance(r, attacks.AttackResult)
  assert r.adv.shape == x.shape and r.adv.dtype == jnp.float32
  assert r.l2.shape == r.success.shape == r.num_grads.shape == r.model_finite.shape == (0,)
  assert r.success.dtype == bool and r.num_grads.dtype == jnp.int32
  extras = {'num_forwards': (0,), **({'best_const': (0,)} if name == 'carlini_wagner_l2' else {})}
  assert {k: v.shape for k, v in r.extras.items()} == extras
  assert r.extras['num_forwards'].dtype == jnp.int32


@pytest.mark.parametrize('name', ['ddn', 'pgd_l2'])
def test_bad_keys_get_a_type_error_naming_key(problem, name):
  attack = functools.partial(ALL_ATTACKS[name], problem.logits_fn, problem.inputs, problem.labels)
  bad = [
    0,
    np.uint32([1, 2, 3]),
    np.float32([0, 1]),
    jax.random.split(jax.random.PRNGKey(0), 2),  # raw keys: only one, not a batch
    jax.random.split(jax.random.key(0), (2, 2)),
  ]
  for key in bad:
    with pytest.raises(TypeError, match=r'key must be a PRNG key, e\.g\. key=jax\.random\.key'):
      attack(key=key)
  with pytest.raises(ValueError, match='holds 2 per-example keys for a batch of'):
    attack(key=jax.random.split(jax.random.key(0), 2))
  # A raw uint32 key is the same key as a typed one.
  typed, raw = attack(key=jax.random.key(3)), attack(key=jax.random.PRNGKey(3))
  np.testing.assert_array_equal(typed.adv, raw.adv)


@pytest.mark.parametrize('name', ['ddn', 'pgd_l2', 'apgd_l2', 'square_l2'])
def test_per_example_keys_make_an_example_independent_of_its_batch(name):
  """With a key per example (as evaluation passes them), example i's random start does not
  depend on which examples share its batch; one key split per batch does."""
  problem = LinearProblem(8, seed=8)
  settings = {'ddn': {'steps': 5},
              'pgd_l2': {'eps': 0.3, 'steps': 1, 'step_size': 0.05, 'random_start': True},
              'apgd_l2': {'eps': 0.3, 'steps': 2, 'loss': 'ce', 'random_start': True},
              'square_l2': {'eps': 2.0, 'queries': 10}}[name]  # fmt: skip
  attack = functools.partial(getattr(attacks, name), problem.logits_fn, **settings)
  keys = jax.vmap(functools.partial(jax.random.fold_in, jax.random.key(1)))(np.arange(8))
  whole = attack(problem.inputs, problem.labels, key=keys)
  part = attack(problem.inputs[5:], problem.labels[5:], key=keys[5:])
  # Equal up to XLA's batch-shape-dependent rounding (float32 ulps over a few steps).
  np.testing.assert_allclose(part.adv, whole.adv[5:], atol=1e-5)
  if name != 'ddn':  # DDN draws its key only for a zero gradient, which this model never has
    split = attack(problem.inputs[5:], problem.labels[5:], key=jax.random.key(1))
    assert not np.allclose(split.adv, whole.adv[5:], atol=1e-3)


# --- one API across the attacks --------------------------------------------------------------


def test_every_attack_is_exported_from_the_package():
  names = ['AttackResult', 'project_l2_ball'] + list(ALL_ATTACKS)
  for name in names:
    assert name in ddn_jax.__all__ and getattr(ddn_jax, name) is getattr(attacks, name)
  for name in ('LogitsFn', 'validate_inputs', 'check_count', 'check_hyperparameter'):
    assert name in attacks.__all__
  for name in ('as_pytree_fn', 'default_key', 'compacting_while_loop'):
    assert name in attacks.__all__


def test_carlini_wagner_result_feeds_evaluate_attack(problem):
  cw = functools.partial(
    attacks.carlini_wagner_l2, binary_search_steps=1, steps=20, learning_rate=0.1, initial_const=1.0
  )
  ev = evaluation.evaluate_attack(cw, problem.logits_fn, problem.inputs, problem.labels, name='cw')
  r = cw(problem.logits_fn, problem.inputs, problem.labels)
  np.testing.assert_array_equal(ev.success, r.success)
  np.testing.assert_allclose(ev.l2, r.l2)


@pytest.mark.parametrize(
  'attack, old, new',
  [
    (
      functools.partial(attacks.carlini_wagner_l2, binary_search_steps=1, learning_rate=0.1),
      'max_iterations',
      'steps',
    ),
    (functools.partial(attacks.ddn, steps=10), 'max_norm', 'eps'),
  ],
  ids=['carlini_wagner_l2', 'ddn'],
)
def test_renamed_arguments_keep_their_old_names(problem, attack, old, new):
  value = 7 if new == 'steps' else float(problem.min_norm.min()) * 0.5
  run = functools.partial(attack, problem.logits_fn, problem.inputs, problem.labels)
  a, b = run(**{new: value}), run(**{old: value})
  for field in ('adv', 'l2', 'success', 'num_grads'):
    np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
  if new == 'steps':
    assert int(np.max(a.num_grads)) <= 7
  else:
    assert (np.asarray(a.l2) <= value + 1e-6).all()
  with pytest.raises(TypeError, match=f'Give {new} only'):
    run(**{new: value, old: value})


def test_deepfool_default_candidates_adapt_to_few_classes():
  p = LinearProblem(3, num_classes=5, seed=3)
  r = attacks.deepfool(p.logits_fn, p.inputs, p.labels)
  assert r.success.all()
  # All 5 classes linearised: 4 backward passes per step.
  np.testing.assert_array_equal(r.num_grads, 4)
  same = attacks.deepfool(p.logits_fn, p.inputs, p.labels, candidates=5)
  np.testing.assert_array_equal(r.adv, same.adv)


def test_attack_result_is_a_pytree(problem):
  r = ATTACKS['carlini_wagner_l2'](problem.logits_fn, problem.inputs, problem.labels)
  leaves, tree = jax.tree.flatten(r)
  assert len(leaves) == 7  # four fields, model_finite, extras['num_forwards'] and ['best_const']
  assert jax.tree.unflatten(tree, leaves).extras.keys() == {'num_forwards', 'best_const'}
  # Results of an attack vmapped over a hyperparameter, extras included.
  swept = jax.vmap(
    lambda c: attacks.carlini_wagner_l2(
      problem.logits_fn, problem.inputs, problem.labels, steps=5, initial_const=c
    )
  )(jnp.array([0.1, 1.0]))
  assert swept.extras['best_const'].shape == swept.model_finite.shape == (2, 4)
  # The first four fields still build a result by position (without a count of its queries).
  assert attacks.AttackResult(*leaves[:4]).model_finite is None
  with pytest.raises(ValueError, match=r"no extras\['num_forwards'\]"):
    _ = attacks.AttackResult(*leaves[:4]).num_queries
