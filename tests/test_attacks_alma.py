"""ALMA: adv-lib's own steps in float64, the exact minimal norms of the linear problem, its
traced hyperparameters, registry entry and errors. Its contract with the other attacks is tested
in test_attacks_api.py and test_nonfinite.py, its parity on the reference CNN in
test_compare_pytorch.py."""

import functools

import chex
import jax
import numpy as np
import pytest
from optional_deps import require

from ddn_jax import attacks, interop
from ddn_jax.attacks import _alma
from ddn_jax.reference import LinearProblem


@pytest.fixture(scope='module')
def problem():
  return LinearProblem(8, seed=7)


def _norms(r, x):
  """Float64 norms of the returned perturbations (float32 sums round by ~1e-6)."""
  return np.linalg.norm((np.asarray(r.adv, np.float64) - x).reshape(len(x), -1), axis=1)


# --- adv-lib's steps, in float64 -----------------------------------------------------------------

STEPS = 60
# Checks of ρ every 4 steps with a demanding improvement rate, and a small learning rate: some
# examples are still not adversarial at the checks, where ρ grows (see the test).
SETTINGS = {
  'steps': STEPS,
  'check_steps': 4,
  'improvement_rate': 0.5,
  'learning_rate': 0.02,
}


def _untied_problem(n=6, seed=5):
  """Examples of the linear problem moved by a fixed pattern, in float64: its clean logits tie
  eight classes, which the DLR ranks (the pattern unties them by far more than rounding)."""
  p = LinearProblem(n, seed=seed)
  pattern = 0.01 * np.sin(np.arange(p.inputs[0].size)).reshape(p.inputs.shape[1:])
  x = (p.inputs + pattern).astype(np.float64)
  logits = np.sort(x.reshape(n, -1) @ p.w.astype(np.float64) + p.b, axis=1)
  assert np.diff(logits, axis=1).min() > 1e-3
  return p, x


def _float64_torch():
  """A stand-in for adv-lib's ``torch`` module whose ``full`` makes float64 tensors: adv-lib's
  ALMA keeps its learning rate, μ and ρ in float32 (``dtype=torch.float``) and its in-place
  update of μ refuses a float64 one, so it cannot run in float64 as it is."""
  import torch

  class Float64Torch:
    def __getattr__(self, name):
      return getattr(torch, name)

    @staticmethod
    def full(*args, dtype=None, **kwargs):
      dtype = torch.float64 if dtype in (None, torch.float32) else dtype
      return torch.full(*args, dtype=dtype, **kwargs)

  return Float64Torch()


def _trajectories(monkeypatch, settings, targeted):
  """ddn_jax's and adv-lib's ALMA (both in float64) on the untied linear problem: every point
  each evaluates the model at, ``(steps, N, ...)``, what each returns, and adv-lib's DLR at its
  points."""
  require('torch')
  require('adv_lib')
  import torch

  interop.import_adv_lib()
  from adv_lib.attacks import augmented_lagrangian

  p, x = _untied_problem()
  labels = p.near if targeted else p.labels
  calls = []

  def recorded(v):
    jax.debug.callback(lambda a: calls.append(np.asarray(a)), v)
    return p.logits_fn(v)

  # Globally: the callbacks run on another thread, where a context manager's setting would not
  # hold and the points would reach them rounded to float32.
  jax.config.update('jax_enable_x64', True)
  try:
    r = jax.block_until_ready(attacks.alma_l2(recorded, x, labels, targeted=targeted, **settings))
    jax.effects_barrier()
    adv = np.asarray(r.adv)
  finally:
    jax.config.update('jax_enable_x64', False)
  assert adv.dtype == np.float64
  # Under vmap the callback runs once per example; each point is near its own clean input only.
  calls = np.concatenate([c for c in calls if c.shape[0] == 1])
  owner = np.linalg.norm((calls[:, None] - x[None]).reshape(len(calls), len(x), -1), axis=2)
  owner = owner.argmin(1)
  ours = np.stack([calls[owner == i] for i in range(len(x))], axis=1)

  seen = []

  class Recorded(torch.nn.Module):
    def __init__(self, module):
      super().__init__()
      self.module = module

    def forward(self, v):
      seen.append(v.detach().numpy().copy())
      return self.module(v)

  module = Recorded(p.torch_module().double())
  monkeypatch.setattr(augmented_lagrangian, 'torch', _float64_torch())
  nchw = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))
  ref_adv = augmented_lagrangian.alma(
    module,
    nchw(x),
    torch.from_numpy(labels.astype(np.int64)),
    targeted=targeted,
    **interop.comparison.ref_kwargs('alma', settings),
  )
  ref = np.stack(seen).transpose(0, 1, 3, 4, 2)
  with torch.no_grad():
    ref_logits = np.stack([module.module(nchw(s)).numpy() for s in ref])
  return ours, ref, adv, ref_adv.numpy().transpose(0, 2, 3, 1), ref_logits, labels


def _dlr(logits, labels, targeted, tolerance):
  """adv-lib's constraint (ours when the tolerance is 0), in NumPy: ``(..., N, K) -> (..., N)``."""
  rows = np.arange(logits.shape[-2])
  z_y = logits[..., rows, labels]
  others = logits.copy()
  others[..., rows, labels] = -np.inf
  top = -np.sort(-logits, axis=-1)
  if targeted:
    return (others.max(-1) - z_y - tolerance) / (top[..., 0] - (top[..., 2] + top[..., 3]) / 2)
  return (z_y - others.max(-1) + tolerance) / (top[..., 0] - top[..., 2])


@pytest.mark.parametrize(
  'penalty, targeted',
  [('P2', False), ('P2', True), ('P1', False), ('P3', False), ('PHRQuad', False)],
  ids=['P2', 'P2-targeted', 'P1', 'P3', 'PHRQuad'],
)
def test_alma_runs_adv_libs_steps_in_float64(monkeypatch, penalty, targeted):
  """Every point ALMA evaluates the model at is adv-lib's, for 60 steps (15 checks of ρ, μ
  updated every step), and it returns adv-lib's point.

  Targeted with a logit tolerance 0, where adv-lib's constraint and ours are the same (adv-lib
  counts a targeted point as adversarial up to the tolerance before the target, see alma_l2).
  Not a rounding call: along adv-lib's trajectory every sign of the constraint (adversarial or
  not, and the branch of the penalty) is decided by a margin of more than 1e-6, and each
  best-norm comparison by one of more than 1e-9; the trajectories agree to 1e-10, and a fault
  moves them by 1e-4 and more.
  """
  settings = {**SETTINGS, 'penalty': penalty}
  if targeted:
    settings['logit_tolerance'] = 0.0
  tolerance = settings.get('logit_tolerance', 1e-4)
  ours, ref, adv, ref_adv, ref_logits, labels = _trajectories(monkeypatch, settings, targeted)
  assert ours.shape == ref.shape == (STEPS, *adv.shape)
  dlr = _dlr(ref_logits, labels, targeted, tolerance)
  assert np.abs(dlr).min() > 1e-6
  found = dlr < 0
  assert found.any(0).all() and not found[0].any()  # every example is broken, none at once
  _, x = _untied_problem()
  norms = np.linalg.norm((ref - x).reshape(STEPS, len(x), -1), axis=-1)
  best = np.minimum.accumulate(np.where(found, norms, np.inf), axis=0)
  gaps = np.abs(norms[1:] - best[:-1])[found[1:] & np.isfinite(best[:-1])]
  assert gaps.min() > 1e-9
  np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)
  np.testing.assert_allclose(adv, ref_adv, rtol=0, atol=1e-10)


def test_the_steps_compared_change_rho_and_mu(monkeypatch):
  # The settings of the float64 comparison reach ρ's growth and μ's update: freezing either
  # changes the trajectory, so the comparison above would see a fault in them.
  p, x = _untied_problem()
  run = lambda **kw: np.asarray(
    attacks.alma_l2(p.logits_fn, x.astype(np.float32), p.labels, **{**SETTINGS, **kw}).adv
  )
  base = run()
  for frozen in ({'penalty_growth': 1.0}, {'multiplier_smoothing': 1.0, 'momentum': 0.9}):
    assert np.abs(run(**frozen) - base).max() > 1e-3, frozen


# --- exact facts of the linear problem -------------------------------------------------------


@pytest.mark.parametrize('targeted', [False, True], ids=['untargeted', 'targeted'])
def test_found_norm_approaches_the_exact_minimal_norm(problem, targeted):
  # The minimal perturbation (untargeted, or to the nearest class) crosses one hyperplane, at
  # the norm min_norm; ALMA ends just past it (its tolerance: 1e-4 in logits, a relative 1e-5).
  labels = problem.near if targeted else problem.labels
  r = attacks.alma_l2(problem.logits_fn, problem.inputs, labels, targeted=targeted, steps=200)
  assert np.asarray(r.success).all()
  pred = np.asarray(problem.logits_fn(r.adv)).argmax(1)
  assert (pred == labels).all() if targeted else (pred != labels).all()
  ratio = _norms(r, problem.inputs) / problem.min_norm
  assert (ratio > 1 - 1e-5).all() and (ratio < 1.01).all(), ratio
  np.testing.assert_array_equal(r.num_grads, 200)


@pytest.mark.parametrize('targeted', [False, True], ids=['untargeted', 'targeted'])
def test_the_logit_tolerance_is_a_margin_past_the_boundary(problem, targeted):
  # A point counts only where the constraint is negative: the returned points clear the
  # boundary by the tolerance in logits, on the adversarial side (targeted too, see alma_l2).
  labels = problem.near if targeted else problem.labels
  r = attacks.alma_l2(
    problem.logits_fn, problem.inputs, labels, targeted=targeted, steps=100, logit_tolerance=1.0
  )
  assert np.asarray(r.success).all()
  z = np.asarray(r.adv, np.float64).reshape(len(labels), -1) @ problem.w + problem.b
  rows = np.arange(len(labels))
  z_label, others = z[rows, labels], z.copy()
  others[rows, labels] = -np.inf
  margin = z_label - others.max(1) if targeted else others.max(1) - z_label
  assert (margin > 1 - 1e-4).all(), margin  # float32 logits of ~10 round by ~1e-6


def test_quantised_points_lie_on_the_grid(problem):
  r = attacks.alma_l2(problem.logits_fn, problem.inputs, problem.labels, steps=100, levels=256)
  assert np.asarray(r.success).all()
  adv = np.asarray(r.adv, np.float64) * 255
  np.testing.assert_allclose(adv, np.round(adv), atol=1e-4)


# --- batches, devices, tracing and the registry ---

# The contract every attack keeps is tested in test_attacks_api.py, except these two, which need
# untied logits (there the linear problem's tied logits make the DLR's ranks a rounding call).


def test_batch_equals_stacked_single_examples():
  p, x = _untied_problem(4, seed=21)
  x = x.astype(np.float32)
  attack = functools.partial(attacks.alma_l2, p.logits_fn, steps=20)
  batch = attack(x, p.labels)
  assert np.asarray(batch.success).all()
  for i in range(4):
    one = attack(x[i : i + 1], p.labels[i : i + 1])
    np.testing.assert_allclose(one.adv[0], batch.adv[i], atol=1e-6)
    assert one.success[0] == batch.success[i] and one.num_grads[0] == batch.num_grads[i]


def test_sharded_over_8_devices_equals_one_device():
  assert jax.device_count() == 8
  p, x = _untied_problem(8, seed=4)
  x = x.astype(np.float32)
  mesh = jax.make_mesh((8,), ('data',))
  put = lambda a: jax.device_put(
    a, jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  )
  attack = functools.partial(attacks.alma_l2, p.logits_fn, steps=20)
  sharded, single = attack(put(x), put(p.labels)), attack(x, p.labels)
  assert len(sharded.adv.sharding.device_set) == 8
  assert np.asarray(single.success).all()
  np.testing.assert_allclose(sharded.adv, single.adv, atol=1e-6)
  np.testing.assert_array_equal(sharded.success, single.success)


# --- tracing and registry ----------------------------------------------------------------------


def test_new_float_hyperparameters_do_not_retrace(problem, monkeypatch):
  x, y = problem.inputs, problem.labels
  _alma._alma_l2.clear_cache()
  monkeypatch.setattr(_alma, '_alma_single', chex.assert_max_traces(_alma._alma_single, n=1))
  run = functools.partial(attacks.alma_l2, problem.logits_fn, x, y, steps=5)
  results = [
    run(learning_rate=lr, penalty_init=rho, multiplier_smoothing=a, logit_tolerance=tol)
    for lr, rho, a, tol in ((0.1, 1.0, 0.9, 1e-4), (0.3, 2.0, 0.8, 0.0), (1.0, 0.5, 0.5, 1e-2))
  ]
  assert _alma._alma_l2._cache_size() == 1
  assert not np.allclose(results[0].adv, results[1].adv)  # the new values were used
  with pytest.raises(AssertionError, match='trace'):
    run(check_steps=3)  # a static argument does recompile: the counter itself can fail


def test_registered_with_its_adv_lib_counterpart():
  alma = attacks.parse_attack('alma')
  assert alma.label == 'ALMA 1000' and alma.entry.adv_lib == 'alma'
  assert attacks.get_attack('alma_l2') is alma.entry
  assert 'alma (alma_l2, ALMA 1000)' in attacks.attack_help()  # the command line's help
  spec = attacks.parse_attack('alma:steps=50,learning_rate=0.2,penalty=P3', adv_lib=True)
  assert spec.label == 'ALMA 50 (penalty=P3, learning_rate=0.2)'
  assert dict(interop.DEFAULT_HPARAMS['alma_l2']) == dict(alma.entry.adv_lib_settings)
  # adv-lib's names for ours: the mapping the comparisons use.
  require('torch')
  require('adv_lib')
  kwargs = interop.comparison.ref_kwargs('alma', spec.settings)
  assert kwargs['num_steps'] == 50 and kwargs['lr_init'] == 0.2 and kwargs['distance'] == 'l2'
  from adv_lib.utils.lagrangian_penalties import all_penalties

  assert kwargs['penalty'] is all_penalties['P3']


def test_bad_settings_get_clear_errors(problem):
  x, y, f = problem.inputs, problem.labels, problem.logits_fn
  bad = [
    ({'steps': 0}, ValueError, 'steps must be >= 1'),
    ({'check_steps': 2.0}, TypeError, 'check_steps must be a Python int'),
    ({'learning_rate': 0.0}, ValueError, 'learning_rate must be > 0'),
    ({'learning_rate_reduction': 2.0}, ValueError, 'learning_rate_reduction must be <= 1'),
    ({'multiplier_init': 0.0}, ValueError, 'multiplier_init must be > 0'),
    ({'penalty_init': -1.0}, ValueError, 'penalty_init must be > 0'),
    ({'penalty_growth': 0.5}, ValueError, 'penalty_growth must be >= 1'),
    ({'improvement_rate': 1.5}, ValueError, 'improvement_rate must be <= 1'),
    ({'rms_smoothing': 1.5}, ValueError, 'rms_smoothing must be <= 1'),
    ({'momentum': -0.1}, ValueError, 'momentum must be >= 0'),
    ({'logit_tolerance': -1e-4}, ValueError, 'logit_tolerance must be >= 0'),
    ({'penalty': 'P9'}, ValueError, 'penalty must be one of'),
    ({'levels': 1}, ValueError, 'levels must be >= 2'),
  ]
  for kwargs, error, match in bad:
    with pytest.raises(error, match=match):
      attacks.alma_l2(f, x, y, **kwargs)
  three = LinearProblem(2, num_classes=3, seed=1)
  with pytest.raises(ValueError, match='at least 4 classes when targeted'):
    attacks.alma_l2(three.logits_fn, three.inputs, three.labels, targeted=True)
  # Three classes are enough untargeted.
  attacks.alma_l2(three.logits_fn, three.inputs, three.labels, steps=1)
