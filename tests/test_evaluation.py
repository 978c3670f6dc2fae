"""Evaluation: metrics on hand-made cases, the targeted protocol's bookkeeping, and batched and
sharded runs on real digits (the writers are tested in test_reports.py)."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks, evaluation, training


def _evaluation(name, success, l2, *, worst=None, num_grads=None, adv=None, seconds=1.0):
  n = len(success)
  return evaluation.AttackEvaluation(
    name=name,
    success=np.asarray(success, bool),
    l2=np.asarray(l2, np.float64),
    num_grads=np.full(n, 10) if num_grads is None else np.asarray(num_grads),
    worst_l2=np.full(n, 5.0) if worst is None else np.asarray(worst, np.float64),
    seconds=seconds,
    first_batch_seconds=seconds / 2,
    batch_size=n,
    num_devices=1,
    adv=adv,
  )


def test_summary_counts_failures_as_the_distance_to_grey():
  # Image 1 is black: its distance to the grey image is 0.5 * sqrt(4) = 1.
  images = np.stack([np.full((2, 2, 1), v, np.float32) for v in (0.5, 0.0, 0.75, 1.0)])
  np.testing.assert_allclose(evaluation.worst_case_l2(images), [0.0, 1.0, 0.5, 1.0])
  np.testing.assert_array_equal(
    evaluation.worst_case_l2((images * 255).round().astype(np.uint8)),
    evaluation.worst_case_l2(np.round(images * 255) / np.float32(255)),
  )
  result = attacks.AttackResult(
    adv=None,
    l2=np.array([0.1, 0.0, 0.3, 0.2], np.float32),
    success=np.array([True, False, True, True]),
    num_grads=np.array([100, 100, 50, 50], np.int32),
  )
  s = evaluation.summarize(result, images, attack='A', seconds=2.5)
  assert s.num_examples == 4 and s.success_rate == 0.75 and s.mean_grads == 75
  np.testing.assert_allclose(s.mean_l2, 0.2, rtol=1e-6)
  np.testing.assert_allclose(s.median_l2, 0.25, rtol=1e-6)  # median of 0.1, 1 (failure), 0.3, 0.2
  assert s.seconds == 2.5
  assert s.mean_forwards is None  # a result built by hand, without the count: unknown, not 0
  counted = result._replace(extras={'num_forwards': np.array([101, 100, 51, 50], np.int32)})
  assert evaluation.summarize(counted, images, attack='A').mean_forwards == 75.5
  none = evaluation.summarize(result._replace(success=np.zeros(4, bool)), images, attack='B')
  assert math.isnan(none.mean_l2) and none.median_l2 == 0.75  # median of the worst cases


def test_robustness_curve_and_its_area():
  norms = np.array([0.0, 0.5, 1.0, np.inf])  # misclassified, two found, one failure
  curve = evaluation.robustness_curve(norms, [0.0, 0.5, 1.0, 2.0])
  np.testing.assert_array_equal(curve.accuracy, [0.75, 0.5, 0.25, 0.25])
  # Exact area of the step curve: (0.5 * 0.75 + 0.5 * 0.5 + 1 * 0.25) / 2.
  assert curve.area == pytest.approx(0.4375) and curve.num_examples == 4
  fine = np.linspace(0, 2, 200_001)
  riemann = evaluation.robustness_curve(norms, fine).accuracy.mean()
  assert riemann == pytest.approx(curve.area, abs=1e-4)
  # The area is over the grid's range only, whatever the points in between.
  assert evaluation.robustness_curve(norms, [0.0, 2.0]).area == pytest.approx(0.4375)
  assert evaluation.robustness_curve(norms, [0.5, 1.0]).area == pytest.approx(0.25 + 0.25 * 1)
  assert evaluation.robust_accuracy(norms, [0.0, 0.5, 2.0]) == {0.0: 0.75, 0.5: 0.5, 2.0: 0.25}
  with pytest.raises(ValueError, match='strictly increasing'):
    evaluation.robustness_curve(norms, [0.0, 1.0, 1.0])
  with pytest.raises(ValueError, match='strictly increasing'):
    evaluation.robustness_curve(norms, [1.0])
  with pytest.raises(ValueError, match='got negative values'):
    evaluation.robustness_curve([0.1, -1.0], [0.0, 1.0])
  with pytest.raises(ValueError, match='finite and >= 0'):
    evaluation.robust_accuracy(norms, [-1.0])


def test_optimality_on_hand_made_norms():
  inf = np.inf
  norms = {
    'A': [0.0, 1.0, 2.0, inf, 3.0],
    'B': [0.0, 2.0, 1.0, 4.0, inf],
    'best': [0.0, 1.0, 1.0, 4.0, 3.0],  # the per-example best of A and B
    'none': [0.0, inf, inf, inf, inf],  # finds nothing
  }
  # ε* = 4, clean accuracy 4/5: A* = 9/5, A_0 = 16/5, A_A = 10/5, A_B = 11/5.
  expected = {'A': 1 - 1 / 7, 'B': 1 - 2 / 7, 'best': 1.0, 'none': 0.0}
  scores = evaluation.optimality(norms)
  assert scores == pytest.approx(expected, abs=1e-12)
  # A ratio of areas: the scale of the norms does not matter.
  scaled = {k: 3.7 * np.asarray(v) for k, v in norms.items()}
  assert evaluation.optimality(scaled) == pytest.approx(expected, abs=1e-12)
  # A non-finite model (NaN for every attack) is never robust: it weighs on no attack.
  with_nan = {k: [*v, np.nan] for k, v in norms.items()}
  assert evaluation.optimality(with_nan) == pytest.approx(expected, abs=1e-12)
  # No example separates the attacks: one correctly classified example, or none.
  assert all(math.isnan(v) for v in evaluation.optimality({'A': [2.0], 'B': [inf]}).values())
  assert all(math.isnan(v) for v in evaluation.optimality({'A': [0.0, 0.0]}).values())


def test_optimality_is_the_area_between_robust_accuracy_curves():
  """Against a Riemann sum of the robust-accuracy curves of `robustness_curve`."""
  rng = np.random.default_rng(3)
  norms = {k: rng.exponential(1.0, 400) for k in 'ABC'}
  norms['A'][rng.random(400) < 0.1] = np.inf
  for d in norms.values():
    d[:20] = 0.0  # misclassified
  best = np.min(list(norms.values()), axis=0)
  eps_star = best[np.isfinite(best)].max()
  grid = np.linspace(0, eps_star, 400_001)
  area = lambda d: evaluation.robustness_curve(d, grid).accuracy.mean() * eps_star
  nothing = np.where(best > 0, np.inf, 0.0)
  for name, score in evaluation.optimality(norms).items():
    riemann = 1 - (area(norms[name]) - area(best)) / (area(nothing) - area(best))
    assert score == pytest.approx(riemann, abs=1e-4)
    assert 0 <= score <= 1


def test_optimality_rejects_bad_norms():
  with pytest.raises(ValueError, match='at least one attack'):
    evaluation.optimality({})
  with pytest.raises(ValueError, match='same examples'):
    evaluation.optimality({'A': [1.0, 2.0], 'B': [1.0]})
  with pytest.raises(ValueError, match='disagree on where the model is non-finite'):
    evaluation.optimality({'A': [1.0, np.nan], 'B': [1.0, 2.0]})
  with pytest.raises(ValueError, match='got negative values'):
    evaluation.optimality({'A': [1.0, -2.0]})


def test_combine_best_takes_the_smallest_success_per_example():
  adv_a, adv_b = np.zeros((4, 1, 1, 1), np.float32), np.ones((4, 1, 1, 1), np.float32)
  a = _evaluation('A', [1, 1, 0, 0], [1.0, 2.0, 0.0, 0.0], num_grads=[1, 2, 3, 4], adv=adv_a)
  b = _evaluation('B', [1, 0, 1, 0], [0.5, 3.0, 4.0, 0.0], num_grads=[10, 10, 10, 10], adv=adv_b)
  best = evaluation.combine_best([a, b])
  assert best.name == 'All'
  np.testing.assert_array_equal(best.success, [True, True, True, False])
  np.testing.assert_array_equal(best.l2, [0.5, 2.0, 4.0, 0.0])
  np.testing.assert_array_equal(best.norms, [0.5, 2.0, 4.0, np.inf])
  np.testing.assert_array_equal(best.adv.ravel(), [1, 0, 1, 0])  # the winner's image
  np.testing.assert_array_equal(best.num_grads, [11, 12, 13, 14])  # the cost of running both
  assert best.num_forwards is None  # unknown for a hand-made evaluation
  counted = [dataclasses.replace(e, num_forwards=np.arange(4) + k) for k, e in ((1, a), (5, b))]
  np.testing.assert_array_equal(evaluation.combine_best(counted).num_forwards, [6, 8, 10, 12])
  assert evaluation.combine_best(counted).summary.mean_forwards == 9
  assert evaluation.combine_best([counted[0], b]).num_forwards is None
  assert best.summary.mean_forwards is None and counted[0].summary.mean_forwards == 2.5
  assert best.seconds == 2.0
  s = best.summary
  assert s.attack == 'All' and s.success_rate == 0.75 and s.mean_l2 == pytest.approx(6.5 / 3)
  assert s.median_l2 == pytest.approx(3.0)  # median of 0.5, 2, 4 and the worst case 5
  assert evaluation.combine_best([a, _evaluation('C', [0] * 4, [0] * 4)], name='X').adv is None

  with pytest.raises(ValueError, match='at least one evaluation'):
    evaluation.combine_best([])
  with pytest.raises(ValueError, match="'A' has 4, 'D' has 3"):
    evaluation.combine_best([a, _evaluation('D', [1, 1, 1], [1.0, 1.0, 1.0])])
  with pytest.raises(ValueError, match='different images'):
    evaluation.combine_best([a, _evaluation('E', [1] * 4, [1.0] * 4, worst=[1.0] * 4)])


def test_target_classes():
  labels = np.array([0, 3, 9, 3])
  targets = evaluation.target_classes(labels, 10)
  assert targets.shape == (4, 9)
  for label, row in zip(labels, targets):
    np.testing.assert_array_equal(row, [c for c in range(10) if c != label])

  many = np.arange(50) % 1000 * 17 % 1000
  drawn = evaluation.target_classes(many, 1000, num_targets=100, seed=3)
  assert drawn.shape == (50, 100)
  assert all(len(set(row)) == 100 and label not in row for label, row in zip(many, drawn))
  assert (np.diff(drawn, axis=1) > 0).all()
  np.testing.assert_array_equal(
    drawn, evaluation.target_classes(many, 1000, num_targets=100, seed=3)
  )
  assert not np.array_equal(drawn, evaluation.target_classes(many, 1000, num_targets=100, seed=4))
  with pytest.raises(ValueError, match='at most num_classes - 1 = 9, got 10'):
    evaluation.target_classes(labels, 10, num_targets=10)
  with pytest.raises(ValueError, match=r'in \[0, 5\)'):
    evaluation.target_classes(labels, 5)


def _bookkeeping_attack(
  calls, logits_fn, inputs, labels, *, targeted=False, key=None, count_forwards=True
):
  """A fake attack whose norm and forward passes encode (image, target); image 1 fails on
  target 3."""
  calls.append((targeted, key, inputs.shape[0]))
  image = jnp.round(inputs[:, 0, 0, 0] * 10)
  l2 = image + 0.1 * labels
  success = ~((image == 1) & (labels == 3))
  forwards = {'num_forwards': (10 * image + labels).astype(jnp.int32)} if count_forwards else {}
  num_grads = jnp.full(labels.shape, 7, jnp.int32)
  return attacks.AttackResult(inputs, l2, success, num_grads, extras=forwards)


@pytest.mark.parametrize('mesh', [False, True])
def test_targeted_protocol_bookkeeping(mesh):
  images = np.stack([np.full((2, 2, 1), i / 10, np.float32) for i in range(3)])
  labels = np.array([4, 0, 2])
  calls = []
  result = evaluation.evaluate_targeted(
    functools.partial(_bookkeeping_attack, calls),
    lambda x: jnp.zeros((x.shape[0], 5)),
    images,
    labels,
    name='fake',
    batch_size=8 if mesh else 5,
    mesh=training.data_mesh() if mesh else None,
    key=jax.random.key(42),
  )
  # K - 1 = 4 targets per image, never the true class, image-major.
  np.testing.assert_array_equal(result.image_index, np.repeat([0, 1, 2], 4))
  np.testing.assert_array_equal(result.target, [0, 1, 2, 3, 1, 2, 3, 4, 0, 1, 3, 4])
  pairs = result.pairs
  np.testing.assert_allclose(pairs.l2, result.image_index + 0.1 * result.target, rtol=1e-6)
  np.testing.assert_array_equal(pairs.success, ~((result.image_index == 1) & (result.target == 3)))
  # Every call was targeted, with a key per pair (folded in by the pair's index); the last batch
  # is padded to the batch size (one shape, one compilation) with copies of its own pairs, keys
  # included.
  sizes = [8, 8] if mesh else [5, 5, 5]
  assert [c[2] for c in calls] == sizes and all(c[0] for c in calls)
  batch = 8 if mesh else 5
  for i, (_, keys, size) in enumerate(calls):
    rows = np.resize(np.arange(i * batch, min((i + 1) * batch, 12)), size)
    expected = [jax.random.fold_in(jax.random.key(42), j) for j in rows]
    np.testing.assert_array_equal(
      jax.random.key_data(keys), np.stack([jax.random.key_data(k) for k in expected])
    )
  assert pairs.summary.success_rate == 11 / 12

  # Least likely: per image the largest norm; a failure on any target is the image's failure.
  ll = result.least_likely
  np.testing.assert_array_equal(ll.success, [True, False, True])
  np.testing.assert_array_equal(result.least_likely_target, [3, 3, 4])
  np.testing.assert_allclose(ll.l2[[0, 2]], [0.3, 2.4], rtol=1e-6)
  # The chosen pair's forward passes (10 * image + target), as its norm.
  np.testing.assert_array_equal(pairs.num_forwards, 10 * result.image_index + result.target)
  np.testing.assert_array_equal(ll.num_forwards, [3, 13, 24])
  assert ll.summary.mean_forwards == pytest.approx(40 / 3)
  assert pairs.summary.mean_forwards == pytest.approx(pairs.num_forwards.mean())
  assert ll.summary.success_rate == 2 / 3
  assert ll.summary.mean_l2 == pytest.approx(1.35)
  assert ll.summary.median_l2 == pytest.approx(np.median([0.3, ll.worst_l2[1], 2.4]))
  assert ll.summary.num_examples == 3 and pairs.summary.num_examples == 12
  # An attack without the count: unknown in both cases, never 0.
  uncounted = evaluation.evaluate_targeted(
    functools.partial(_bookkeeping_attack, [], count_forwards=False),
    lambda x: jnp.zeros((x.shape[0], 5)),
    images,
    labels,
    name='fake',
    batch_size=12,
  )
  assert uncounted.pairs.num_forwards is None and uncounted.least_likely.num_forwards is None
  assert uncounted.pairs.summary.mean_forwards is None
  assert uncounted.least_likely.summary.mean_forwards is None


@pytest.fixture(scope='module')
def digits(mnist_cnn):
  logits_fn, images, labels = mnist_cnn
  return logits_fn, images[:12], labels[:12]


# Unquantised: XLA:CPU rounds differently depending on the batch per device and on the number of
# devices (logits differ by ~1e-7); quantising every step to 256 levels can turn that into a
# different grid point and ~3e-4 in one norm, which would hide what is tested here.
DDN = functools.partial(attacks.ddn, steps=20, levels=None)


def _assert_same(a, b):
  np.testing.assert_array_equal(a.success, b.success)
  np.testing.assert_allclose(a.l2, b.l2, rtol=1e-5)  # float32 rounding, see DDN above
  np.testing.assert_array_equal(a.num_grads, b.num_grads)


def test_evaluate_ddn_on_real_digits_sharded_and_batched(digits):
  logits_fn, x, y = digits
  key = jax.random.key(3)
  single = evaluation.evaluate_attack(
    DDN, logits_fn, x, y, name='DDN 20', batch_size=12, key=key, keep_adv=True
  )
  assert single.success.any() and single.l2.dtype == np.float64
  assert single.num_devices == 1 and 0 < single.first_batch_seconds <= single.seconds
  np.testing.assert_array_equal(single.num_grads, 20)
  np.testing.assert_array_equal(single.num_forwards, 20)  # one value_and_grad per step
  assert single.summary.mean_forwards == 20
  np.testing.assert_allclose(
    single.l2, np.linalg.norm((single.adv - x).reshape(12, -1), axis=1), rtol=1e-5
  )
  predicted = np.asarray(logits_fn(single.adv)).argmax(1)
  np.testing.assert_array_equal(predicted != y, single.success)
  np.testing.assert_array_equal(single.worst_l2, evaluation.worst_case_l2(x))
  summary = evaluation.summarize(single, x, attack='DDN 20', seconds=single.seconds)
  assert single.summary == dataclasses.replace(
    summary, first_batch_seconds=single.first_batch_seconds
  )

  # 8 devices with a padded last batch (12 = 8 + 4), uint8 images; another batch size.
  sharded = evaluation.evaluate_attack(
    DDN,
    logits_fn,
    (x * 255).round().astype(np.uint8),
    y,
    name='DDN 20',
    batch_size=8,
    mesh=training.data_mesh(),
    key=key,
  )
  assert sharded.num_devices == 8 and sharded.adv is None
  _assert_same(sharded, single)
  _assert_same(
    evaluation.evaluate_attack(DDN, logits_fn, x, y, name='b', batch_size=6, key=key), single
  )
  norms = evaluation.minimal_norms(logits_fn, x, y, steps=20, levels=None, batch_size=12, key=key)
  np.testing.assert_array_equal(norms, single.norms)


def test_random_starts_do_not_depend_on_the_batching(digits):
  """Each example gets its own key (fold_in by its index): PGD's random start is the same
  whatever the batch size, device count or padding."""
  logits_fn, x, y = digits
  pgd = functools.partial(attacks.pgd_l2, eps=1.0, steps=2, step_size=0.2, random_start=True)
  run = lambda **kw: evaluation.evaluate_attack(
    pgd, logits_fn, x, y, name='PGD', key=jax.random.key(5), keep_adv=True, **kw
  )
  single = run(batch_size=12)
  for other in (run(batch_size=5), run(batch_size=8, mesh=training.data_mesh())):
    np.testing.assert_allclose(other.adv, single.adv, atol=1e-5)  # float32 rounding only
    np.testing.assert_allclose(other.l2, single.l2, rtol=1e-5)


def test_evaluate_attack_errors(digits):
  logits_fn, x, y = digits
  mesh = training.data_mesh()
  with pytest.raises(ValueError, match='12 examples does not split evenly over the 8 devices'):
    evaluation.evaluate_attack(DDN, logits_fn, x, y, name='a', batch_size=12, mesh=mesh)
  with pytest.raises(ValueError, match='12 images and 11 labels'):
    evaluation.evaluate_attack(DDN, logits_fn, x, y[:11], name='a')
  with pytest.raises(ValueError, match='0 images'):
    evaluation.evaluate_attack(DDN, logits_fn, x[:0], y[:0], name='a')
  with pytest.raises(ValueError, match="must have a 'data' axis"):
    evaluation.evaluate_attack(
      DDN, logits_fn, x, y, name='a', batch_size=8, mesh=jax.make_mesh((8,), ('batch',))
    )
  with pytest.raises(ValueError, match='binds key'):
    evaluation.evaluate_attack(
      functools.partial(DDN, key=jax.random.key(0)), logits_fn, x, y, name='a'
    )
  with pytest.raises(TypeError, match='batch_size must be a Python int'):
    evaluation.evaluate_attack(DDN, logits_fn, x, y, name='a', batch_size=8.0)
