"""Models with non-finite logits or gradients: never a success, never a non-finite image.

An example is adversarial only where the model's logits are all finite; attacks keep non-finite
gradients and evaluations out of their state, return finite images in [0, 1], and flag the
examples where the model is non-finite at the clean input; evaluations never count those.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ddn_jax import attacks, evaluation, reports
from ddn_jax.reference import LinearProblem

MIN_NORM = {
  'ddn': functools.partial(attacks.ddn, levels=None),
  # Adam's first steps move every pixel by about the learning rate: small enough here to stay
  # inside the radius of the test below, where a search step stops at the first NaN.
  'carlini_wagner_l2': functools.partial(
    attacks.carlini_wagner_l2, binary_search_steps=9, steps=300, learning_rate=0.01
  ),
  'deepfool': attacks.deepfool,
  'fmn_l2': attacks.fmn_l2,
  'alma_l2': functools.partial(attacks.alma_l2, steps=200),
  'fab_l2': functools.partial(attacks.fab_l2, steps=20),
  'fab_targeted_l2': functools.partial(attacks.fab_targeted_l2, steps=20, num_targets=2),
}
ATTACKS = {
  **MIN_NORM,
  # Bounded attacks get their budget from the test: 'eps' is filled in below.
  'fgm_l2': attacks.fgm_l2,
  'pgd_l2': functools.partial(attacks.pgd_l2, steps=10, random_start=False),
  'apgd_l2': functools.partial(attacks.apgd_l2, steps=10),
  'apgd_targeted_l2': functools.partial(attacks.apgd_targeted_l2, steps=5, num_targets=2),
}
BOUNDED = ('fgm_l2', 'pgd_l2', 'apgd_l2', 'apgd_targeted_l2')


def _run(name, logits_fn, x, y, eps=0.5, **kwargs):
  if name in BOUNDED:
    kwargs = {'eps': eps, 'step_size': eps / 4} if name == 'pgd_l2' else {'eps': eps}
  return ATTACKS[name](logits_fn, x, y, **kwargs)


@pytest.fixture(scope='module')
def problem():
  p = LinearProblem(4, seed=21)
  # A class no example has: +inf there makes argmax pick it, which was a "success" at L2 0.
  p.absent = int(np.setdiff1d(np.arange(10), p.labels)[0])
  return p


def _broken_gradient(value):
  """The identity, whose gradient is ``value`` everywhere."""

  @jax.custom_vjp
  def identity(x):
    return x

  identity.defvjp(lambda x: (x, None), lambda _, g: (jnp.full_like(g, value),))
  return identity


def _models(p):
  return {
    'nan_everywhere': lambda x: p.logits_fn(x) * jnp.nan,
    'inf_one_class': lambda x: p.logits_fn(x).at[:, p.absent].set(jnp.inf),
    'nan_gradient': lambda x: p.logits_fn(_broken_gradient(jnp.nan)(x)),
    'inf_gradient': lambda x: p.logits_fn(_broken_gradient(jnp.inf)(x)),
  }


def _watched(logits_fn, finite_inputs):
  """``logits_fn``, recording whether each image it is called on is finite: a non-finite step
  that entered an attack's state would show as a non-finite image at the next call."""

  def fn(x):
    record = lambda ok: finite_inputs.append(bool(np.all(ok)))
    jax.debug.callback(record, jnp.all(jnp.isfinite(x), axis=(1, 2, 3)))
    return logits_fn(x)

  return fn


def _adversarial(logits_fn, adv, labels):
  """The finite rule, computed independently of the library."""
  logits = np.asarray(logits_fn(adv))
  return np.isfinite(logits).all(1) & (logits.argmax(1) != labels)


def _check_images(r, x):
  adv = np.asarray(r.adv)
  assert adv.dtype == np.float32 and np.isfinite(adv).all()
  assert adv.min() >= 0 and adv.max() <= 1
  l2 = np.asarray(r.l2)
  assert np.isfinite(l2).all()
  np.testing.assert_allclose(l2, np.linalg.norm((adv - x).reshape(len(x), -1), axis=1), atol=1e-5)


@pytest.mark.parametrize(
  'model', ['nan_everywhere', 'inf_one_class', 'nan_gradient', 'inf_gradient']
)
@pytest.mark.parametrize('name', list(ATTACKS))
def test_broken_models_give_no_success_and_finite_images(problem, name, model):
  p = problem
  logits_fn, finite_inputs = _models(p)[model], []
  r = jax.block_until_ready(_run(name, _watched(logits_fn, finite_inputs), p.inputs, p.labels))
  jax.effects_barrier()
  assert finite_inputs and all(finite_inputs)
  _check_images(r, p.inputs)
  success = np.asarray(r.success)
  np.testing.assert_array_equal(success, _adversarial(logits_fn, r.adv, p.labels))
  if model.endswith('gradient'):
    # The logits are fine; no gradient step can be taken, so no minimum-norm attack moves.
    np.testing.assert_array_equal(r.model_finite, True)
    # DDN steps along a random direction instead, APGD stays at its random start.
    if name not in ('ddn', 'apgd_l2', 'apgd_targeted_l2'):
      np.testing.assert_array_equal(r.adv, p.inputs)
  else:
    np.testing.assert_array_equal(r.model_finite, False)
    assert not success.any()
    np.testing.assert_array_equal(r.adv, p.inputs)  # the clean input, bounded attacks too
  if name not in BOUNDED:
    np.testing.assert_array_equal(np.asarray(r.adv)[~success], p.inputs[~success])


def _radius_model(w, b, x0, radius, x):
  """The linear model, NaN (logits and gradient) farther than ``radius`` from ``x0``."""
  far = jnp.sqrt(jnp.sum(jnp.square(x - x0))) > radius
  return (x * jnp.where(far, jnp.nan, 1)).reshape(x.shape[0], -1) @ w + b


@pytest.mark.parametrize('name', list(ATTACKS))
def test_nan_beyond_a_radius_still_breaks_examples_inside_it(problem, name):
  """Examples whose minimal perturbation lies well inside the finite ball are broken at that
  norm; the one whose ball holds no adversarial point fails, with a finite image."""
  p = problem
  factors = np.array([1.5, 1.5, 2.0, 0.8])  # radius / minimal norm; the last is unbreakable
  radii = (factors * p.min_norm).astype(np.float32)
  for i in range(len(p.labels)):
    x, y = p.inputs[i : i + 1], p.labels[i : i + 1]
    # One Partial for every example: the radius and centre are traced, compiled once.
    logits_fn = jax.tree_util.Partial(_radius_model, p.w, p.b, x, radii[i])
    breakable = factors[i] > 1
    # A bounded attack is given a budget between the minimal norm and the radius, or, for the
    # unbreakable example, past the radius.
    eps = 1.1 * p.min_norm[i] if breakable else 2 * radii[i]
    kwargs = {}
    if name == 'fmn_l2' and breakable:
      # From a cold start FMN's first step lands exactly on this model's boundary, where float
      # rounding decides (see test_attacks_deepfool_fmn); start past it, inside the radius.
      normal = p.w[:, p.near[i]] - p.w[:, p.labels[i]]
      step = 1.2 * p.min_norm[i] * normal / np.linalg.norm(normal)
      kwargs['starting_points'] = x + step.reshape(x.shape).astype(np.float32)
    r = _run(name, logits_fn, x, y, eps=float(eps), **kwargs)
    _check_images(r, x)
    assert bool(r.model_finite[0])
    np.testing.assert_array_equal(r.success, _adversarial(logits_fn, r.adv, y))
    assert bool(r.success[0]) == breakable, (i, r.success, r.l2)
    if breakable and name not in BOUNDED:
      ratio = float(r.l2[0]) / p.min_norm[i]
      assert 1 - 1e-5 < ratio < 1.05, (i, ratio)
    if not breakable:
      # No point where the model is NaN is returned, not even by a bounded attack.
      assert np.isfinite(np.asarray(logits_fn(r.adv))).all()


# --- evaluation ------------------------------------------------------------------------------


def _fake_attack(logits_fn, inputs, labels, *, targeted=False, key=None):
  """Claims success everywhere at L2 0.5; the model is non-finite at images whose first pixel
  is 0."""
  n = inputs.shape[0]
  return attacks.AttackResult(
    adv=inputs,
    l2=jnp.full(n, 0.5),
    success=jnp.ones(n, bool),
    num_grads=jnp.ones(n, jnp.int32),
    model_finite=inputs[:, 0, 0, 0] > 0,
  )


def _fake_images():
  images = np.full((4, 2, 2, 1), 0.75, np.float32)
  images[[1, 3], 0, 0, 0] = 0.0  # examples 1 and 3: the model is non-finite there
  return images, np.array([0, 1, 2, 3])


def test_evaluation_counts_no_nonfinite_example(tmp_path):
  images, labels = _fake_images()
  zeros = lambda x: jnp.zeros((x.shape[0], 5))
  ev = evaluation.evaluate_attack(_fake_attack, zeros, images, labels, name='fake', batch_size=3)
  np.testing.assert_array_equal(ev.model_finite, [True, False, True, False])
  np.testing.assert_array_equal(ev.success, [True, False, True, False])
  np.testing.assert_array_equal(ev.norms, [0.5, np.nan, 0.5, np.nan])
  s = ev.summary
  assert s.success_rate == 0.5 and s.num_nonfinite == 2 and s.mean_l2 == 0.5
  # Failures, so the worst case (distance to grey) enters the median.
  assert s.median_l2 == pytest.approx(np.median(np.where(ev.success, 0.5, ev.worst_l2)))
  assert evaluation.summarize(_fake_attack(zeros, images, labels), images, attack='f') == (
    evaluation.summarize(
      attacks.AttackResult(
        adv=None,
        l2=np.full(4, 0.5),
        success=ev.success,
        num_grads=np.ones(4),
        model_finite=ev.model_finite,
      ),
      images,
      attack='f',
    )
  )
  table = reports.attack_table([ev])
  assert table.splitlines()[0].endswith('| Non-finite |') and table.splitlines()[2].endswith(' 2 |')

  # Never robust, not even at ε = 0 (where the curve is the clean accuracy).
  curve = evaluation.robustness_curve(ev.norms, [0.0, 0.25, 1.0])
  np.testing.assert_array_equal(curve.accuracy, [0.5, 0.5, 0.0])
  assert curve.num_nonfinite == 2
  # Over [0, 1]: the two finite examples, robust up to 0.5, add 0.5 each; the others 0.
  assert curve.area == pytest.approx((0.5 + 0.5) / 4)
  assert evaluation.robust_accuracy(ev.norms, [0.0]) == {0.0: 0.5}

  # The All row: a second attack that "succeeds" on the non-finite examples changes nothing.
  other = evaluation.AttackEvaluation(
    name='other',
    success=np.ones(4, bool),
    l2=np.full(4, 0.1),
    num_grads=np.ones(4),
    worst_l2=ev.worst_l2,
    seconds=1.0,
    first_batch_seconds=1.0,
    batch_size=4,
    num_devices=1,
  )
  best = evaluation.combine_best([ev, other])
  np.testing.assert_array_equal(best.success, [True, False, True, False])
  np.testing.assert_array_equal(best.norms, [0.1, np.nan, 0.1, np.nan])
  assert best.summary.num_nonfinite == 2 and best.summary.success_rate == 0.5

  reports.write_csv(tmp_path / 'e.csv', ev)
  assert 'model_finite' in (tmp_path / 'e.csv').read_text().splitlines()[0]


def test_targeted_protocol_counts_no_nonfinite_image():
  images, labels = _fake_images()
  result = evaluation.evaluate_targeted(
    _fake_attack, lambda x: jnp.zeros((x.shape[0], 5)), images, labels, name='fake', batch_size=5
  )
  finite = np.repeat([True, False, True, False], 4)
  np.testing.assert_array_equal(result.pairs.success, finite)
  assert result.pairs.summary.num_nonfinite == 8
  ll = result.least_likely
  np.testing.assert_array_equal(ll.success, [True, False, True, False])
  assert ll.summary.num_nonfinite == 2 and ll.summary.success_rate == 0.5


@pytest.mark.parametrize('model', ['nan_everywhere', 'inf_one_class'])
def test_real_attacks_on_a_broken_model_report_it(problem, model):
  """End to end: the CLI's path (evaluate_attack, the All row, the curve, the targeted protocol,
  a sweep) on a model that is never finite reports no success and every example non-finite."""
  p = problem
  nan_model = _models(p)[model]
  ddn = functools.partial(attacks.ddn, steps=5)
  evaluations = [
    evaluation.evaluate_attack(ddn, nan_model, p.inputs, p.labels, name='DDN'),
    evaluation.evaluate_attack(attacks.deepfool, nan_model, p.inputs, p.labels, name='DeepFool'),
  ]
  for ev in [*evaluations, evaluation.combine_best(evaluations)]:
    assert ev.summary.success_rate == 0 and ev.summary.num_nonfinite == 4
    assert np.isnan(ev.norms).all()
    np.testing.assert_array_equal(ev.summary.median_l2, np.median(ev.worst_l2))
  curve = evaluation.robustness_curve(evaluations[0].norms, [0.0, 1.0])
  np.testing.assert_array_equal(curve.accuracy, 0)
  assert curve.area == 0 and curve.num_nonfinite == 4
  targeted = evaluation.evaluate_targeted(
    ddn, nan_model, p.inputs[:2], p.labels[:2], name='DDN', num_targets=2
  )
  assert targeted.pairs.summary.success_rate == 0 and targeted.pairs.summary.num_nonfinite == 4
  assert targeted.least_likely.summary.success_rate == 0
  swept = evaluation.sweep(
    attacks.ddn, nan_model, p.inputs, p.labels, grid={'gamma': [0.05, 0.1]}, static={'steps': [5]}
  )
  assert not swept.success.any() and not swept.model_finite.any()
  assert [row['num_nonfinite'] for row in swept.rows()] == [4, 4]
  assert [row['success_rate'] for row in swept.rows()] == [0, 0]


def test_predictions_and_training_metrics_never_count_a_broken_model_as_right():
  # argmax picks a NaN (or +inf) logit: with the label on that class a broken model would score
  # 100%. Every accuracy (evaluation.predict, training.evaluate, the training step's metrics)
  # goes through attacks.predicted_class, which has no class for non-finite logits.
  from ddn_jax import models, training

  logits = jnp.array([[jnp.nan, 0.0, 1.0], [jnp.inf, 0.0, 1.0], [0.0, 2.0, 1.0]])
  np.testing.assert_array_equal(attacks.predicted_class(logits), [-1, -1, 1])
  images = np.zeros((4, 28, 28, 1), np.uint8)
  labels = np.zeros(4, np.int32)
  nan_on_label = lambda x: jnp.zeros((len(x), 10)).at[:, 0].set(jnp.nan)
  assert (evaluation.predict(nan_on_label, images) == -1).all()
  assert training.evaluate(nan_on_label, images, labels)['accuracy'] == 0.0
  state = training.create_train_state(
    models.SmallCNN(), rng=jax.random.key(0), input_shape=(1, 28, 28, 1), optimizer=optax.sgd(0.1)
  )
  poisoned = jax.tree.map(lambda p: jnp.full_like(p, jnp.nan), state.params)
  _, metrics = training.train_step(
    state.replace(params=poisoned), {'image': images, 'label': labels}
  )
  assert float(metrics['accuracy']) == 0.0, metrics
