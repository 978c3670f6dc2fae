"""AutoAttack's L2 protocol (`evaluation.autoattack_l2`): only verified adversarials count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks, evaluation, reference

_EPS = 0.5
# The standard components without FAB-T, with fewer Square queries (a linear model needs few).
_COMPONENTS = [
  ('APGD-CE', 'apgd', {'loss': 'ce', 'steps': 50}),
  ('APGD-T', 'apgd-t', {'steps': 50, 'num_targets': 3}),
  ('Square', 'square', {'queries': 300}),
]


@pytest.fixture(scope='module')
def linear():
  # Exact minimal norms spread over [0.4, 0.6] around eps = 0.5.
  return reference.LinearProblem(48, seed=3)


@pytest.fixture(scope='module')
def result(linear):
  return evaluation.autoattack_l2(
    linear.logits_fn, linear.inputs, linear.labels, eps=_EPS, components=_COMPONENTS, batch_size=16
  )


def test_breaks_exactly_the_examples_within_eps_on_a_linear_model(linear, result):
  assert result.clean.all()
  # Nothing beyond eps can be broken; everything clearly within it is (by APGD-CE already).
  within = linear.min_norm <= _EPS
  assert not np.any(~result.robust & (linear.min_norm > _EPS * (1 + 1e-5)))
  assert not np.any(result.robust & (linear.min_norm < 0.95 * _EPS))
  assert 0.2 < within.mean() < 0.8  # the test has examples on both sides
  broken = ~result.robust
  assert np.all(result.l2[broken] <= _EPS * (1 + 1e-5))
  assert np.all(result.l2[broken] >= linear.min_norm[broken] * (1 - 1e-4))
  assert np.all(np.isinf(result.l2[result.robust]))
  # Each later component attacks exactly what the ones before left robust.
  counts = [c.num_attacked for c in result.components]
  assert counts[0] == len(linear.labels)
  assert counts[1:] == [c.num_attacked - c.num_broken for c in result.components[:-1]]
  assert result.components[-1].robust_accuracy == result.robust_accuracy
  assert all(c.num_unverified == 0 and c.num_box_violations == 0 for c in result.components)
  assert result.lines()[-1] == f'robust accuracy at eps=0.5: {result.robust_accuracy:.2%}'


def _liar(linear):
  """An attack that claims success everywhere and crosses the nearest boundary of the linear
  model, but beyond eps on even examples and outside [0, 1] (within eps) on odd ones."""
  w = jnp.asarray(linear.w)

  def attack(logits_fn, inputs, labels, *, eps, key=None):
    del key
    logits = logits_fn(inputs)
    near = jnp.argsort(logits, axis=1)[:, -2]
    normal = (w[:, near] - w[:, labels]).T
    distance = (
      jnp.take_along_axis(logits, labels[:, None], 1)
      - jnp.max(
        jnp.where(jnp.arange(logits.shape[1]) == labels[:, None], -jnp.inf, logits),
        axis=1,
        keepdims=True,
      )
    ) / jnp.linalg.norm(normal, axis=1, keepdims=True)
    unit = (normal / jnp.linalg.norm(normal, axis=1, keepdims=True)).reshape(inputs.shape)
    beyond = inputs + 1.5 * eps * unit
    outside = (inputs + 1.2 * distance[:, :, None, None] * unit).at[:, 0, 0, 0].set(1.2)
    even = (jnp.arange(len(labels)) % 2 == 0)[:, None, None, None]
    adv = jnp.where(even, beyond, outside)
    n = len(labels)
    return attacks.AttackResult(
      adv=adv, success=jnp.ones(n, bool), l2=jnp.zeros(n), num_grads=jnp.zeros(n, jnp.int32)
    )

  return attack


def test_a_claimed_success_beyond_eps_or_outside_the_box_does_not_count(linear):
  eps = 2.0  # room for the odd examples' pixel outside the box
  liar = _liar(linear)
  # Both kinds of point are misclassified: only the checks of eps and of the box reject them.
  x = jnp.asarray(linear.inputs[:16])
  adv = liar(linear.logits_fn, x, jnp.asarray(linear.labels[:16]), eps=eps).adv
  assert np.all(np.asarray(linear.logits_fn(adv)).argmax(1) != linear.labels[:16])
  result = evaluation.autoattack_l2(
    linear.logits_fn,
    linear.inputs,
    linear.labels,
    eps=eps,
    components=[('liar', liar, {})],
    batch_size=16,
  )
  (report,) = result.components
  assert result.robust.all() and report.num_broken == 0
  assert report.num_unverified == len(linear.labels)
  assert report.num_box_violations == len(linear.labels) // 2
  assert report.settings == {'attack': 'attack', 'eps': eps}


def test_misclassified_and_non_finite_examples_are_never_robust(linear):
  def logits_fn(x):
    logits = linear.logits_fn(x)
    # Example 0 gives NaN logits, example 1 is classified as another class.
    first = x[:, 0, 0, 0]
    nan = jnp.isclose(first, linear.inputs[0, 0, 0, 0])[:, None]
    wrong = jnp.isclose(first, linear.inputs[1, 0, 0, 0])[:, None]
    logits = jnp.where(nan, jnp.nan, logits)
    return jnp.where(wrong, -logits, logits)

  result = evaluation.autoattack_l2(
    logits_fn, linear.inputs[:4], linear.labels[:4], eps=_EPS, components=_COMPONENTS[:1]
  )
  assert list(result.clean) == [False, False, True, True]
  assert not result.robust[:2].any() and list(result.broken_by[:2]) == [-1, -1]
  assert result.components[0].num_attacked == 2


def test_bad_arguments_are_refused(linear):
  run = lambda **kw: evaluation.autoattack_l2(linear.logits_fn, linear.inputs, linear.labels, **kw)
  with pytest.raises(ValueError, match='Unknown AutoAttack version'):
    run(eps=_EPS, version='rand')
  with pytest.raises(ValueError, match='eps must be positive'):
    run(eps=0.0)
  with pytest.raises(ValueError, match='unknown setting'):
    run(eps=_EPS, components=[('x', 'apgd', {'stepz': 3})])


def test_model_warnings_name_softmax_outputs_randomness_and_zero_gradients(linear):
  x, y = linear.inputs[:20], linear.labels[:20]
  assert evaluation.model_warnings(linear.logits_fn, x, y) == []
  softmax = lambda inputs: jax.nn.softmax(linear.logits_fn(inputs))
  (found,) = evaluation.model_warnings(softmax, x, y)
  assert 'look like probabilities' in found
  rng = np.random.default_rng(0)
  noisy = lambda inputs: linear.logits_fn(inputs) + 1e-3 * rng.standard_normal((len(inputs), 10))
  (found,) = evaluation.model_warnings(noisy, x, y)
  assert 'randomised' in found
  frozen = lambda inputs: jax.lax.stop_gradient(linear.logits_fn(inputs))
  (found,) = evaluation.model_warnings(frozen, x, y)
  assert 'exactly zero at 20 of 20 examples' in found
  with pytest.warns(UserWarning, match='autoattack_l2: the loss gradient is exactly zero'):
    result = evaluation.autoattack_l2(frozen, x, y, eps=_EPS, components=_COMPONENTS[:1])
  assert result.warnings == (found,) and result.lines()[-1] == f'warning: {found}'
