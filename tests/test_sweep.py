"""Hyperparameter sweeps: one vmapped program per static combination, equal to each point alone.

A point runs the same per-example arithmetic as the attack alone, but the model and the norms
see batches of another size (G·N images, or N / devices per device). Success and gradient counts
must match exactly; L2 norms to rtol 1e-5: a norm is a float32 sum over 784 pixels whose
reduction order may change with the batch layout (worst-case relative error about
784 · 6e-8 ≈ 5e-5; 2e-6 observed).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks, evaluation
from ddn_jax.attacks import _ddn
from ddn_jax.evaluation import _sweep

_NUM_IMAGES = 8
_DDN_GRID = {'gamma': [0.05, 0.2], 'init_norm': [0.5, 2.0]}
_DDN_STATIC = {'steps': [10]}


@pytest.fixture(scope='module')
def digits(mnist_cnn):
  logits_fn, images, labels = mnist_cnn
  return logits_fn, images[:_NUM_IMAGES], labels[:_NUM_IMAGES]


def _assert_point_equals(sweep_result, p, alone):
  np.testing.assert_array_equal(sweep_result.success[p], alone.success)
  np.testing.assert_array_equal(sweep_result.num_grads[p], alone.num_grads)
  np.testing.assert_array_equal(sweep_result.num_forwards[p], alone.extras['num_forwards'])
  np.testing.assert_allclose(sweep_result.l2[p], alone.l2, rtol=1e-5)
  forwards = np.mean(alone.extras['num_forwards'])  # exact: a mean of a few small integers
  assert sweep_result.summaries[p].mean_forwards == sweep_result.rows()[p]['mean_forwards']
  assert sweep_result.summaries[p].mean_forwards == forwards


def test_new_grid_values_do_not_retrace(digits, monkeypatch):
  logits_fn, x, y = digits
  _sweep._sweep_program.clear_cache()
  _ddn._ddn.clear_cache()
  traces = []
  single = _ddn._ddn_single
  monkeypatch.setattr(_ddn, '_ddn_single', lambda *a, **k: traces.append(1) or single(*a, **k))
  run = lambda grid: evaluation.sweep(attacks.ddn, logits_fn, x, y, grid=grid, static=_DDN_STATIC)
  run(_DDN_GRID)
  assert traces, 'the trace counter saw nothing'
  first = len(traces)
  # Same grid size, new values; then the values permuted across the axes.
  run({'gamma': [0.1, 0.3], 'init_norm': [1.0, 4.0]})
  run({'init_norm': [3.0, 0.1], 'gamma': [0.02, 0.5]})
  assert len(traces) == first
  assert _sweep._sweep_program._cache_size() == 1


def test_ddn_sweep_equals_each_point_alone(digits):
  """DDN's key only sets the direction where a gradient is exactly zero: a per-example key
  (the sweep) and a batch key (alone) give the same results here."""
  logits_fn, x, y = digits
  result = evaluation.sweep(attacks.ddn, logits_fn, x, y, grid=_DDN_GRID, static=_DDN_STATIC)
  assert result.l2.shape == result.success.shape == result.num_grads.shape == (4, _NUM_IMAGES)
  assert [(p['gamma'], p['init_norm']) for p in result.points] == [
    (0.05, 0.5),
    (0.05, 2.0),
    (0.2, 0.5),
    (0.2, 2.0),
  ]
  for p, point in enumerate(result.points):
    _assert_point_equals(result, p, attacks.ddn(logits_fn, x, y, **point))
  # The grid matters: not every point gives the same norms.
  assert len({tuple(row) for row in result.l2.round(4)}) > 1
  row = result.rows()[0]
  assert row['steps'] == 10 and row['gamma'] == 0.05
  summary = evaluation.summarize(attacks.ddn(logits_fn, x, y, **result.points[0]), x, attack='ddn')
  for name in ('success_rate', 'mean_l2', 'median_l2', 'mean_grads', 'mean_forwards'):
    np.testing.assert_allclose(row[name], getattr(summary, name), rtol=1e-5)


def test_carlini_wagner_sweep_equals_each_point_alone(digits):
  logits_fn, x, y = digits
  static = {'binary_search_steps': [1], 'steps': [20], 'abort_early': ['example']}
  grid = {'learning_rate': [0.1, 0.5], 'initial_const': [1.0, 100.0]}
  result = evaluation.sweep(attacks.carlini_wagner_l2, logits_fn, x, y, grid=grid, static=static)
  for p, point in enumerate(result.points):
    _assert_point_equals(result, p, attacks.carlini_wagner_l2(logits_fn, x, y, **point))
  # The grid matters, and some examples stop early (the vmapped while loop's per-example mask).
  assert len(set(result.success.mean(axis=1))) > 1
  assert result.num_grads.min() < 20
  # C&W's forward passes are not its gradients (the clean check, the last iteration's).
  assert (result.num_forwards != result.num_grads).all()
  # A point's counts are evaluate_attack's for the same attack.
  p = 1
  evaluated = evaluation.evaluate_attack(
    functools.partial(attacks.carlini_wagner_l2, **result.points[p]), logits_fn, x, y, name='cw'
  )
  np.testing.assert_array_equal(result.num_forwards[p], evaluated.num_forwards)
  np.testing.assert_array_equal(result.num_grads[p], evaluated.num_grads)
  assert result.rows()[p]['mean_forwards'] == evaluated.summary.mean_forwards


def _uncounted(logits_fn, inputs, labels, *, targeted=False, scale: float = 1.0):
  """A result built by hand, without ``extras['num_forwards']``."""
  ones = jnp.ones(inputs.shape[0])
  return attacks.AttackResult(inputs, scale * ones, ones > 0, ones.astype(jnp.int32))


def test_an_attack_without_forward_counts_gives_none_not_zero(digits):
  logits_fn, x, y = digits
  result = evaluation.sweep(_uncounted, logits_fn, x, y, grid={'scale': [1.0, 2.0]})
  assert result.num_forwards is None
  assert [r['mean_forwards'] for r in result.rows()] == [None, None]
  np.testing.assert_array_equal(result.l2, [[1.0] * _NUM_IMAGES, [2.0] * _NUM_IMAGES])


def test_sharded_and_batched_sweeps_equal_the_plain_one(digits):
  """8 devices, and 3 calls of 3 examples (the last padded), give the one-call result."""
  assert jax.device_count() == 8
  logits_fn, x, y = digits
  run = lambda **kw: evaluation.sweep(
    attacks.ddn, logits_fn, x, y, grid=_DDN_GRID, static=_DDN_STATIC, key=jax.random.key(5), **kw
  )
  plain = run()
  mesh = jax.make_mesh((8,), ('data',))
  for case, other in (('8 devices', run(mesh=mesh)), ('3 calls', run(batch_size=3))):
    np.testing.assert_array_equal(other.success, plain.success, err_msg=case)
    np.testing.assert_array_equal(other.num_grads, plain.num_grads, err_msg=case)
    np.testing.assert_allclose(other.l2, plain.l2, rtol=1e-5, err_msg=case)
  # The sharded program really runs per device: its jaxpr holds the shard_map island.
  xs, ys = jax.device_put(
    (x, y), jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec('data'))
  )
  jaxpr = jax.make_jaxpr(
    lambda a, b: _sweep._sweep_program(
      attacks.ddn,
      attacks.as_pytree_fn(logits_fn),
      a,
      b,
      None,
      {'gamma': np.ones(2, np.float32)},
      static=(('steps', 1),),
      targeted=False,
      mesh=mesh,
    )
  )(xs, ys)
  assert 'shard_map' in str(jaxpr)


def test_bad_grids_get_clear_errors(digits):
  logits_fn, x, y = digits
  run = lambda attack=attacks.ddn, **kw: evaluation.sweep(attack, logits_fn, x, y, **kw)
  with pytest.raises(ValueError, match=r"'steps' is a static hyperparameter.*static="):
    run(grid={'steps': [10, 20]})
  with pytest.raises(ValueError, match=r"no hyperparameter 'gama'.*valid ones: .*gamma"):
    run(grid={'gama': [0.1]})
  with pytest.raises(ValueError, match=r"no hyperparameter 'gamma'.*learning_rate"):
    run(attacks.carlini_wagner_l2, grid={'gamma': [0.1]})
  with pytest.raises(ValueError, match='both grid and static'):
    run(grid={'gamma': [0.1]}, static={'gamma': [0.2]})
  with pytest.raises(ValueError, match="'targeted' is not swept"):
    run(grid={'gamma': [0.1]}, static={'targeted': [True]})
  with pytest.raises(ValueError, match='grid is empty'):
    run(grid={}, static={'steps': [10]})
  with pytest.raises(ValueError, match=r"grid\['gamma'\] is empty"):
    run(grid={'gamma': []})
  with pytest.raises(TypeError, match=r"grid\['gamma'\] must be a sequence"):
    run(grid={'gamma': 0.1})
  # Values are checked by the attack itself, before anything runs.
  with pytest.raises(ValueError, match='gamma must be < 1'):
    run(grid={'gamma': [0.1, 1.5]})
  with pytest.raises(TypeError, match='steps must be a Python int'):
    run(grid={'gamma': [0.1]}, static={'steps': [10.0]})
  with pytest.raises(ValueError, match='takes no key'):
    run(attacks.carlini_wagner_l2, grid={'learning_rate': [0.1]}, key=jax.random.key(0))
  with pytest.raises(ValueError, match=r'pixels in \[0, 1\]'):
    evaluation.sweep(attacks.ddn, logits_fn, x + 1, y, grid={'gamma': [0.1]})
  with pytest.raises(ValueError, match="'data' axis"):
    run(grid={'gamma': [0.1]}, mesh=jax.make_mesh((8,), ('batch',)))


def test_without_a_batch_size_the_chunk_fits_the_memory_budget(digits):
  """The batch is the largest whose estimated memory (G points × examples) fits the budget,
  and the estimate bounds what XLA allocates for an attack."""
  logits_fn, x, y = digits
  example = jax.ShapeDtypeStruct((1, *x.shape[1:]), x.dtype)
  per_point = evaluation.estimate_call_bytes(logits_fn, example)
  compiled = (
    jax.jit(lambda f, a, b: attacks.ddn(f, a, b, steps=10))
    .lower(attacks.as_pytree_fn(logits_fn), x, y)
    .compile()
  )
  assert compiled.memory_analysis().temp_size_in_bytes <= per_point * len(x)

  run = lambda **kw: evaluation.sweep(
    attacks.ddn, logits_fn, x, y, grid=_DDN_GRID, static=_DDN_STATIC, key=jax.random.key(5), **kw
  )
  points = 4  # the grid's product
  plain = run()
  assert (plain.batch_size, plain.num_calls) == (len(x), 1)
  assert plain.call_bytes == per_point * points * len(x)
  chunked = run(memory_budget=3 * points * per_point + 1)
  assert (chunked.batch_size, chunked.num_calls) == (3, 3)
  assert chunked.call_bytes <= 3 * points * per_point + 1
  np.testing.assert_array_equal(chunked.success, plain.success)
  np.testing.assert_allclose(chunked.l2, plain.l2, rtol=1e-5)
  # A budget below one example still runs, one example per call.
  assert run(memory_budget=1).batch_size == 1
  assert run(batch_size=4).call_bytes is None
