"""DeepFool and FMN: exact linear problems, real digits against DDN, and the attack API contract."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from linear_model import LinearProblem

from ddn_jax import attacks
from ddn_jax.attacks import _deepfool, _fmn

# No attack can beat the exact minimum; float32 rounding of the norm allows this much.
_BELOW = 1 - 1e-5
# DeepFool's step crosses the linearised boundary by this much, as in the original code.
_PAST_BOUNDARY = 1e-4

ATTACKS = {
  'deepfool': attacks.deepfool,
  'fmn_l2': functools.partial(attacks.fmn_l2, steps=20),
}


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
  np.testing.assert_array_equal(r.num_grads, 100)


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
  np.testing.assert_array_equal(r.num_grads, 100)
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


# --- API contract ----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def problem():
  return LinearProblem(4, seed=21)


@pytest.mark.parametrize('name', list(ATTACKS))
def test_result_invariants(problem, name):
  r = ATTACKS[name](problem.logits_fn, problem.inputs, problem.labels)
  assert isinstance(r, attacks.AttackResult)
  assert r.adv.shape == problem.inputs.shape and r.adv.dtype == problem.inputs.dtype
  assert r.l2.shape == r.success.shape == r.num_grads.shape == (4,)
  assert r.success.dtype == bool and r.num_grads.dtype == np.int32
  _check_invariants(problem.logits_fn, problem.inputs, problem.labels, r)


@pytest.mark.parametrize('name', list(ATTACKS))
def test_quantised_points_lie_on_the_grid(problem, name):
  r = ATTACKS[name](problem.logits_fn, problem.inputs, problem.labels, levels=256)
  assert r.success.any()
  adv = np.asarray(r.adv, np.float64)[np.asarray(r.success)] * 255
  np.testing.assert_allclose(adv, np.round(adv), atol=1e-4)


def test_already_misclassified_example_costs_deepfool_nothing(problem):
  wrong = (problem.labels + 1) % 10
  r = attacks.deepfool(problem.logits_fn, problem.inputs, wrong)
  assert r.success.all()
  np.testing.assert_array_equal(r.l2, 0)
  np.testing.assert_array_equal(r.num_grads, 0)


@pytest.mark.parametrize('name', list(ATTACKS))
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


def test_new_float_hyperparameters_do_not_retrace(problem, monkeypatch):
  x, y = problem.inputs, problem.labels
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


@pytest.mark.parametrize('name', list(ATTACKS))
def test_sharded_over_8_devices_equals_one_device(name):
  assert jax.device_count() == 8
  p = LinearProblem(8, seed=4)
  mesh = jax.make_mesh((8,), ('data',))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  put = lambda a: jax.device_put(a, sharding)
  # FMN keeps the best iterate on the boundary, where the model's rounding (which differs by
  # ~1e-7 between a batch of 8 and one example per device) can change which iterate that is; on
  # the grey-level grid, as DDN works by default, the results are identical.
  kwargs = {} if name == 'deepfool' else {'levels': 256}
  attack = functools.partial(ATTACKS[name], p.logits_fn, **kwargs)
  sharded, single = attack(put(p.inputs), put(p.labels)), attack(p.inputs, p.labels)
  assert len(sharded.adv.sharding.device_set) == 8
  assert sharded.success.any()
  np.testing.assert_allclose(sharded.adv, single.adv, atol=1e-6)
  np.testing.assert_array_equal(sharded.success, single.success)
  np.testing.assert_array_equal(sharded.num_grads, single.num_grads)


# --- the compacting loop DeepFool runs in ------------------------------------------------------


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


# --- bad input -------------------------------------------------------------------------------


def test_bad_inputs_get_clear_errors(problem):
  x, y, f = problem.inputs, problem.labels, problem.logits_fn
  bad = [
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
    (attacks.fmn_l2, {'starting_points': x}, ValueError, r'must all be adversarial; examples \['),
    (attacks.fmn_l2, {'starting_points': x[:2]}, ValueError, 'shape of inputs'),
    (attacks.fmn_l2, {'starting_points': x + 0.5}, ValueError, r'pixels in \[0, 1\]'),
  ]
  for attack, kwargs, error, match in bad:
    with pytest.raises(error, match=match):
      attack(f, x, y, **kwargs)
  # The shared input checks apply too.
  for attack in ATTACKS.values():
    with pytest.raises(ValueError, match=r'pixels in \[0, 1\]'):
      attack(f, x + 0.5, y)
    with pytest.raises(ValueError, match=r'labels must be in \[0, 10\)'):
      attack(f, x, np.full_like(y, 10))
