"""The ddn-jax command line: help, one-line errors, train -> attack/evaluate, and the demo.

The tests run in-process on the 8 forced CPU devices, so batch sizes are multiples of 8. Every
run uses the default DDN-100, C&W 1x100 and DeepFool-100 on batches of 8, so each attack is
compiled once for the whole module.
"""

import argparse
import csv
import functools
import json
import os
import pathlib
import shutil
import subprocess
import sys
import warnings

import jax
import numpy as np
import pytest
from optional_deps import require

from ddn_jax import attacks, cli, data, evaluation, models, reference, reports, training, workflows

_TRAIN = [
  'train',
  '--dataset',
  'mnist',
  '--source',
  'mlxtend',
  '--num-train',
  '1024',
  '--epochs',
  '1',
  '--batch-size',
  '32',
]
_IMAGES = ['--source', 'mlxtend', '--split', 'train', '--num-images', '8', '--batch-size', '8']


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
  require('mlxtend')
  out = tmp_path_factory.mktemp('train')
  assert cli.main([*_TRAIN, '--checkpoint-every', '16', '--out', str(out)]) == 0
  return out


@pytest.fixture
def trained_copy(checkpoint, tmp_path):
  """A copy of the trained model's directory (checkpoints of steps 16 and 32), to damage."""
  return pathlib.Path(shutil.copytree(checkpoint, tmp_path / 'run'))


def _files(directory):
  return {
    str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob('*') if p.is_file()
  }


def _with(argv, **flags):
  """``argv`` with the values of some ``--flag``s replaced (or appended)."""
  argv = list(argv)
  for name, value in flags.items():
    flag = '--' + name.replace('_', '-')
    if flag in argv:
      argv[argv.index(flag) + 1] = value
    else:
      argv += [flag, value]
  return argv


def _subcommands(parser):
  (action,) = [a for a in parser._actions if a.dest == 'command']
  return action.choices


def test_help_describes_every_flag(capsys):
  commands = _subcommands(cli.build_parser())
  assert set(commands) == {
    'demo',
    'attack',
    'evaluate',
    'train',
    'sweep',
    'compare-torch',
    'bench',
  }
  for name in ('demo', 'attack', 'evaluate', 'train'):
    options = [a for a in commands[name]._actions if a.option_strings and a.dest != 'help']
    for action in options:
      assert action.help, f'{name} {action.option_strings} has no help'
    with pytest.raises(SystemExit) as e:
      cli.main([name, '--help'])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for action in options:
      assert action.option_strings[0] in text
  for common in ('--out', '--seed', '--debug'):
    assert all(common in commands[n].format_help() for n in ('demo', 'attack', 'evaluate', 'train'))
  for name in ('attack', 'evaluate'):
    for flag in ('--checkpoint', '--dataset', '--source', '--num-images', '--batch-size'):
      assert flag in commands[name].format_help()


@pytest.mark.parametrize('command', ['sweep', 'compare-torch', 'bench'])
def test_library_commands_show_their_help(command, capsys):
  with pytest.raises(SystemExit) as e:
    cli.main([command, '--help'])
  assert e.value.code == 0
  assert 'usage:' in capsys.readouterr().out


def _one_line_error(capsys, argv, expected):
  assert cli.main(argv) == 2
  err = capsys.readouterr().err
  # A progress bar may precede the error if the attack itself rejects its hyperparameters.
  assert 'Traceback' not in err and err.endswith('\n'), err
  (line,) = [line for line in err.splitlines() if 'error' in line]
  assert line.startswith('ddn-jax: error: ') and line == err.splitlines()[-1], err
  assert expected in line, err
  return line


def test_bad_arguments_give_one_line_errors(tmp_path, capsys, monkeypatch, checkpoint):
  with pytest.raises(SystemExit) as e:
    cli.main(['demo', '--num-images', '0'])
  assert e.value.code == 2
  assert 'argument --num-images: expected a positive integer' in capsys.readouterr().err
  with pytest.raises(SystemExit) as e:
    cli.main(['no-such-command'])
  assert e.value.code == 2
  capsys.readouterr()

  _one_line_error(capsys, ['attack', '--checkpoint', str(tmp_path)], 'model.json not found')
  _one_line_error(capsys, ['attack'], 'give exactly one of --checkpoint DIR and --state-dict')
  _one_line_error(
    capsys,
    ['evaluate', '--checkpoint', str(checkpoint), *_IMAGES, '--attacks', 'ddn', 'nosuch'],
    "unknown attack 'nosuch'",
  )
  _one_line_error(
    capsys,
    ['attack', '--checkpoint', str(checkpoint), *_IMAGES, '--attack', 'ddn:steps'],
    "bad setting 'steps'",
  )
  _one_line_error(  # every spec is checked before the model is even loaded
    capsys,
    ['evaluate', '--checkpoint', str(tmp_path / 'none'), '--attacks', 'ddn', 'ddn:stepz=3'],
    "unknown setting 'stepz'",
  )
  _one_line_error(
    capsys,
    ['evaluate', '--checkpoint', str(tmp_path / 'none'), '--attacks', 'cw:steps=3,steps=4'],
    "'steps' is given twice",
  )
  a_file = tmp_path / 'a_file'
  a_file.write_text('')
  _one_line_error(
    capsys, ['attack', '--checkpoint', str(checkpoint), '--out', str(a_file)], 'is a file'
  )
  _one_line_error(
    capsys, ['evaluate', '--checkpoint', str(checkpoint), '--out', '/proc/ddn_jax'], 'Cannot create'
  )
  _one_line_error(  # the library's own check of the hyperparameter
    capsys,
    ['attack', '--checkpoint', str(checkpoint), *_IMAGES, '--attack', 'ddn:gamma=-1'],
    'gamma',
  )
  _one_line_error(
    capsys,
    ['attack', '--checkpoint', str(checkpoint), '--dataset', 'cifar10', '--source', 'foolbox'],
    'the model takes images of shape (28, 28, 1)',
  )
  monkeypatch.delenv('DDN_JAX_MNIST_DIR', raising=False)
  _one_line_error(capsys, ['train', '--source', 'idx', '--out', str(tmp_path)], 'mnist')
  # --debug shows the exception itself.
  with pytest.raises(FileNotFoundError):
    cli.main(['--debug', 'attack', '--checkpoint', str(tmp_path)])


def test_installed_command_prints_no_traceback(tmp_path):
  script = pathlib.Path(sys.executable).parent / 'ddn-jax'
  assert script.exists(), 'pip install . gives the ddn-jax command'
  run = subprocess.run(
    [str(script), 'evaluate', '--checkpoint', str(tmp_path / 'missing')],
    capture_output=True,
    text=True,
    check=False,
    env={**os.environ, 'JAX_PLATFORMS': 'cpu'},
  )
  assert run.returncode == 2
  assert run.stderr.startswith('ddn-jax: error: ') and 'Traceback' not in run.stderr
  assert run.stderr.count('\n') == 1, run.stderr


def test_train_writes_a_loadable_checkpoint(checkpoint):
  info = json.loads((checkpoint / 'model.json').read_text())
  assert info['model'] == 'small_cnn' and info['input_shape'] == [28, 28, 1]
  assert info['dataset'] == 'mnist' and info['num_train'] == 1024
  history = json.loads((checkpoint / 'metrics.json').read_text())
  assert [row['epoch'] for row in history] == [1]
  saved = models.load_model(checkpoint)
  assert saved.info['step'] == 1024 // 32
  assert isinstance(saved.model, models.SmallCNN)


def test_attack_runs_the_library_attack_on_the_checkpoint(checkpoint, tmp_path, capsys):
  out = tmp_path / 'attack'
  assert cli.main(['attack', '--checkpoint', str(checkpoint), *_IMAGES, '--out', str(out)]) == 0
  assert '| DDN 100 |' in capsys.readouterr().out
  saved = np.load(out / 'adversarials.npz')
  images, adv = saved['images'].astype(np.float32) / 255, saved['adv']
  assert adv.shape == (8, 28, 28, 1) and 0 <= adv.min() and adv.max() <= 1
  np.testing.assert_allclose(
    saved['l2'], np.linalg.norm((adv - images).reshape(8, -1), axis=1), rtol=1e-5, atol=1e-6
  )
  np.testing.assert_array_equal(saved['success'], saved['predictions'] != saved['labels'])
  # The same numbers as the library called directly on the reloaded model and the same digits.
  model = models.load_model(checkpoint)
  expected = evaluation.evaluate_attack(
    functools.partial(attacks.ddn, steps=100),
    models.make_logits_fn(model.model, model.variables),
    saved['images'],
    saved['labels'],
    name='DDN 100',
    batch_size=8,
    mesh=training.data_mesh(),
    key=jax.random.key(0),
  )
  np.testing.assert_array_equal(saved['success'], expected.success)
  np.testing.assert_allclose(saved['l2'], expected.l2, rtol=1e-6)
  report = json.loads((out / 'results.json').read_text())
  assert report['attacks'][0]['success_rate'] == pytest.approx(expected.summary.success_rate)
  assert report['attacks'][0]['mean_forwards'] == expected.summary.mean_forwards == 100
  with open(out / 'per_example.csv', newline='') as f:
    assert [int(r['num_forwards']) for r in csv.DictReader(f)] == expected.num_forwards.tolist()
  for name in ('results.csv', 'results.md', 'per_example.csv', 'adversarial_examples.png'):
    assert (out / name).stat().st_size > 0


def test_attack_in_bfloat16_reports_what_the_float32_model_confirms(checkpoint, tmp_path):
  out = tmp_path / 'attack'
  argv = ['attack', '--checkpoint', str(checkpoint), *_IMAGES, '--precision', 'bfloat16']
  assert cli.main([*argv, '--out', str(out)]) == 0
  assert 'bfloat16 gradients' in (out / 'results.md').read_text()
  saved = np.load(out / 'adversarials.npz')
  model = models.load_model(checkpoint)
  logits = models.make_logits_fn(model.model, model.variables)(saved['adv'])
  np.testing.assert_array_equal(
    saved['success'], attacks.is_adversarial(logits, saved['labels'], False)
  )
  assert saved['success'].any()


def test_attack_resumes_its_batches_and_refuses_other_arguments(checkpoint, tmp_path, capsys):
  out = tmp_path / 'attack'
  argv = ['attack', '--checkpoint', str(checkpoint), *_IMAGES, '--out', str(out)]
  assert cli.main(argv) == 0
  (batch,) = (out / 'batches').glob('*/batch_*.npz')
  written = batch.stat().st_mtime_ns
  first = np.load(out / 'adversarials.npz')
  assert cli.main(argv) == 0  # the same command: the finished batch is read back
  assert batch.stat().st_mtime_ns == written
  np.testing.assert_array_equal(np.load(out / 'adversarials.npz')['adv'], first['adv'])
  capsys.readouterr()
  assert cli.main([*_with(argv, seed='1')]) == 2
  error = capsys.readouterr().err.strip()
  assert len(error.splitlines()) == 1 and 'holds the batches of another evaluation' in error
  assert 'key' in error
  np.testing.assert_array_equal(np.load(out / 'adversarials.npz')['adv'], first['adv'])


def test_attack_on_a_state_dict_equals_the_attack_on_its_checkpoint(checkpoint, tmp_path, capsys):
  """--state-dict FILE reads a PyTorch state_dict: the same weights as the checkpoint's give the
  same adversarials, and --dataset must be named since the file does not say."""
  require('torch')
  from ddn_jax import interop

  saved = models.load_model(checkpoint)
  state_dict = tmp_path / 'small_cnn.pt'
  interop.save_torch_state_dict(saved.model, saved.variables, state_dict)
  argv = ['attack', *_IMAGES, '--attack', 'ddn:steps=20']
  assert cli.main([*argv, '--checkpoint', str(checkpoint), '--out', str(tmp_path / 'a')]) == 0
  assert (
    cli.main(
      [*argv, '--state-dict', str(state_dict), '--dataset', 'mnist', '--out', str(tmp_path / 'b')]
    )
    == 0
  )
  ours, theirs = (
    np.load(tmp_path / 'a' / 'adversarials.npz'),
    np.load(tmp_path / 'b' / 'adversarials.npz'),
  )
  for key in ('images', 'adv', 'l2', 'success'):
    np.testing.assert_array_equal(ours[key], theirs[key])
  capsys.readouterr()
  _one_line_error(
    capsys, ['attack', '--state-dict', str(state_dict), *_IMAGES], '--dataset is required'
  )


def test_evaluate_reports_every_attack_and_the_all_row(checkpoint, tmp_path, capsys):
  out = tmp_path / 'evaluate'
  assert cli.main(['evaluate', '--checkpoint', str(checkpoint), *_IMAGES, '--out', str(out)]) == 0
  printed = capsys.readouterr().out
  report = reports.read_json(out / 'results.json')
  rows = {row['attack']: row for row in report['attacks']}
  assert list(rows) == [
    'DDN 100',
    'C&W 1×100 (learning_rate=0.1, initial_const=1)',
    'DeepFool 100',
    'All',
  ]
  assert '| All |' in printed
  for name in ('DDN 100', 'C&W 1×100 (learning_rate=0.1, initial_const=1)', 'DeepFool 100'):
    assert rows['All']['success_rate'] >= rows[name]['success_rate']
    assert rows['All']['median_l2'] <= rows[name]['median_l2'] + 1e-9
    assert rows[name]['num_examples'] == 8
  curve = report['robust_accuracy']['All']
  assert np.all(np.diff(curve['accuracy']) <= 0)
  assert curve['accuracy'][0] == pytest.approx(report['clean_accuracy'])
  for name in ('robust_accuracy.png', 'adversarial_examples.png', 'robust_accuracy.csv'):
    assert (out / name).stat().st_size > 0


def test_demo_at_a_tiny_size(tmp_path, capsys):
  require('mlxtend')
  argv = ['demo', '--num-images', '8', '--batch-size', '8', '--epochs', '1', '--num-train', '1024']
  assert cli.main([*argv, '--out', str(tmp_path)]) == 0
  printed = capsys.readouterr().out
  report = reports.read_json(tmp_path / 'results.json')
  names = [row['attack'] for row in report['attacks']]
  assert names == [
    'DDN 100',
    'C&W 1×100 (learning_rate=0.1, initial_const=1)',
    'DeepFool 100',
    'All',
  ]
  # The demo's model is the reference recipe's, and its digits the last 8 held-out ones.
  saved = models.load_model(tmp_path / 'model')
  split = reference.mnist_split(num_train=1024)
  expected_state, _ = reference.train_small_cnn(split.train, num_epochs=1)
  jax.tree.map(np.testing.assert_array_equal, saved.variables, expected_state.variables)
  x, y = (a[-8:] for a in split.held_out)
  logits_fn = models.make_logits_fn(saved.model, saved.variables)
  accuracy = np.mean(np.asarray(logits_fn(x.astype(np.float32) / 255)).argmax(1) == y)
  assert report['clean_accuracy'] == pytest.approx(accuracy)
  expected = evaluation.evaluate_attack(
    functools.partial(attacks.ddn, steps=100),
    logits_fn,
    x,
    y,
    name='DDN 100',
    batch_size=8,
    mesh=training.data_mesh(),
    key=jax.random.key(0),
  )
  ddn = report['attacks'][0]
  assert ddn['success_rate'] == pytest.approx(expected.summary.success_rate)
  assert ddn['median_l2'] == pytest.approx(expected.summary.median_l2, rel=1e-6)
  assert '| DDN 100 | 100.0 |' in printed
  for name in (
    'adversarial_examples.png',
    'robust_accuracy.png',
    'results.csv',
    'model/model.json',
  ):
    assert (tmp_path / name).stat().st_size > 0


def test_missing_tfds_is_a_one_line_error(tmp_path, capsys, monkeypatch):
  # tensorflow-datasets is the optional `tfds` extra; the offline sources work without it.
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  _one_line_error(
    capsys,
    ['train', '--source', 'tfds', '--out', str(tmp_path)],
    "needs TensorFlow Datasets: `pip install 'ddn_jax[tfds]'`",
  )


def test_evaluate_targeted_reports_average_and_least_likely(checkpoint, tmp_path):
  out = tmp_path / 'targeted'
  argv = ['evaluate', '--checkpoint', str(checkpoint), *_IMAGES, '--attacks', 'ddn:steps=10']
  assert cli.main([*argv, '--targeted', '--num-targets', '2', '--out', str(out)]) == 0
  rows = reports.read_json(out / 'results.json')['targeted']
  assert [(row['attack'], row['case']) for row in rows] == [
    ('DDN 10', 'average'),
    ('DDN 10', 'least likely'),
  ]
  assert [row['num_examples'] for row in rows] == [16, 8]  # 2 targets per image; per image
  # An image's least-likely case succeeds only if every one of its targets did.
  assert rows[1]['success_rate'] <= rows[0]['success_rate']


def test_evaluate_autoattack_reports_each_component(checkpoint, tmp_path, capsys):
  # At a radius this large APGD-CE breaks every digit: the later components attack none.
  out = tmp_path / 'autoattack'
  argv = ['evaluate', '--checkpoint', str(checkpoint), *_IMAGES, '--autoattack', '4']
  assert cli.main([*argv, '--out', str(out)]) == 0
  result = reports.read_json(out / 'results.json')['autoattack']
  names = [c['name'] for c in result['components']]
  assert names == ['APGD-CE', 'APGD-T', 'FAB-T', 'Square']
  per_example = result['per_example']
  clean = np.array(per_example['clean'])
  assert result['robust_accuracy'] == 0.0 and result['clean_accuracy'] == clean.mean()
  assert [c['num_attacked'] for c in result['components']] == [clean.sum(), 0, 0, 0]
  assert np.all(np.array(per_example['l2'])[clean] <= 4.0 * (1 + 1e-5))
  assert 'robust accuracy at eps=4: 0.00%' in capsys.readouterr().out
  _one_line_error(capsys, [*argv, '--targeted', '--out', str(out)], 'drop --attacks and --targeted')


def test_a_failing_attack_keeps_the_results_of_the_ones_before(checkpoint, tmp_path, capsys):
  # The second spec parses, but the attack rejects its step size when it runs.
  out = tmp_path / 'partial'
  argv = ['evaluate', '--checkpoint', str(checkpoint), *_IMAGES, '--examples', '0']
  argv += ['--attacks', 'ddn:steps=5', 'pgd:eps=1.0,steps=2,step_size=-1.0', '--out', str(out)]
  _one_line_error(capsys, argv, 'step_size')
  report = reports.read_json(out / 'results.json')
  assert [row['attack'] for row in report['attacks']] == ['DDN 5']
  assert '| DDN 5 |' in (out / 'results.md').read_text()


def test_an_unexpected_failure_is_one_line_naming_it(capsys, monkeypatch, tmp_path):
  def broken(*args, **kwargs):
    raise RuntimeError('something\nbroke')

  monkeypatch.setattr(cli, '_setup', broken)
  _one_line_error(capsys, ['attack', '--out', str(tmp_path)], 'RuntimeError: something broke')


def test_sweep_runs_the_grid_of_a_spec(checkpoint, tmp_path):
  out = tmp_path / 'sweep'
  argv = ['sweep', '--checkpoint', str(checkpoint), *_IMAGES, '--attack', 'ddn:steps=5']
  assert (
    cli.main([*argv, '--grid', 'gamma=0.05,0.2', '--static', 'levels=256,None', '--out', str(out)])
    == 0
  )
  rows = reports.read_json(out / 'sweep.json')['rows']
  assert [(r['gamma'], r['levels']) for r in rows] == [
    (0.05, 256),
    (0.2, 256),
    (0.05, None),
    (0.2, None),
  ]
  assert [r['mean_forwards'] for r in rows] == [5] * 4  # one forward pass per DDN step
  assert (out / 'sweep.png').stat().st_size > 0


def test_a_rerun_with_other_settings_is_refused_and_changes_nothing(trained_copy, capsys):
  out = ['--out', str(trained_copy)]
  before = _files(trained_copy)
  for flags, expected in [
    ({'num_train': '512'}, 'num_train 1024 then, 512 now'),
    ({'batch_size': '64'}, 'batch_size 32 then, 64 now'),
    ({'seed': '1'}, 'seed 0 then, 1 now'),
    ({'source': 'auto'}, "source 'mlxtend' then, 'auto' now"),
    ({'learning_rate': '0.01'}, 'learning_rate 0.001 then, 0.01 now'),
    ({'adversary': 'madry', 'attack_steps': '2'}, "adversary 'none' then, 'madry' now"),
  ]:
    line = _one_line_error(capsys, _with(_TRAIN, **flags) + out, expected)
    assert f'{trained_copy} holds the checkpoints of another run' in line
    assert _files(trained_copy) == before
  # The same settings: nothing to train, only the command recorded anew.
  assert cli.main([*_TRAIN, *out]) == 0
  assert 'nothing to train for num_epochs=1' in capsys.readouterr().out
  after = _files(trained_copy)
  info, info_before = (json.loads(files.pop('model.json')) for files in (after, before))
  assert (
    after == before and info.pop('command') != info_before.pop('command') and info == info_before
  )
  # More epochs continue the run.
  assert cli.main([*_with(_TRAIN, epochs='2'), *out]) == 0
  assert [row['epoch'] for row in json.loads((trained_copy / 'metrics.json').read_text())] == [1, 2]
  assert models.load_model(trained_copy).info['step'] == 2 * 1024 // 32


def test_unusable_checkpoints_give_a_warning_or_one_error_line(trained_copy, tmp_path, capsys):
  (trained_copy / 'checkpoints' / '32' / 'state' / '_METADATA').unlink()
  argv = ['attack', '--checkpoint', str(trained_copy), *_IMAGES, '--out', str(tmp_path / 'out')]
  assert cli.main(argv) == 0
  err = capsys.readouterr().err
  assert 'Traceback' not in err
  (warning,) = [line for line in err.splitlines() if line.startswith('ddn-jax: warning: ')]
  assert 'checkpoints/32 (state/_METADATA is missing); using step 16' in warning
  shutil.rmtree(trained_copy / 'checkpoints' / '16' / 'progress')
  _one_line_error(capsys, argv, 'checkpoints/16: progress/ is missing')
  (trained_copy / 'model.json').write_text('')
  _one_line_error(capsys, argv, f'{trained_copy / "model.json"} is empty')


def test_train_checks_its_output_directory_and_batch_size(tmp_path, capsys, unwritable_directory):
  file = tmp_path / 'file'
  file.write_text('')
  _one_line_error(capsys, [*_TRAIN, '--out', str(file)], f'{file} is a file, not a directory')
  _one_line_error(
    capsys,
    [*_TRAIN, '--out', str(unwritable_directory)],
    'Cannot write in the output directory',
  )
  _one_line_error(
    capsys,
    [*_with(_TRAIN, num_train='16'), '--out', str(tmp_path / 'small')],
    'batch_size=32 is larger than the 16 training examples',
  )


def test_bad_state_dict_files_give_one_line_errors(tmp_path, capsys):
  torch = pytest.importorskip('torch')
  empty = tmp_path / 'empty.pt'
  empty.write_bytes(b'')
  pickled = tmp_path / 'pickled.pt'
  torch.save(argparse.Namespace(a=1), pickled)
  for path, expected in [
    (empty, 'empty.pt is empty'),
    (pickled, 'pickled.pt holds pickled objects other than tensors'),
  ]:
    argv = ['attack', '--state-dict', str(path), '--dataset', 'mnist', *_IMAGES]
    _one_line_error(capsys, [*argv, '--out', str(tmp_path / 'out')], expected)


def test_evaluation_images_are_never_training_images(checkpoint, tmp_path, capsys):
  info = json.loads((checkpoint / 'model.json').read_text())
  images, _ = data.load('mnist', 'train', source='mlxtend')
  trained = {images[i].tobytes() for i in np.random.default_rng(0).permutation(5000)[:1024]}
  # Another seed than the training one: the last 8 of its permutation would include 2.
  out = tmp_path / 'attack'
  argv = ['attack', '--checkpoint', str(checkpoint), *_with(_IMAGES, seed='1'), '--out', str(out)]
  assert cli.main(argv) == 0
  attacked = np.load(out / 'adversarials.npz')['images']
  assert len(attacked) == 8 and not trained & {image.tobytes() for image in attacked}
  # More images than are held out: all of those, and a warning saying how many.
  with pytest.warns(UserWarning, match='Only 3976 of the 5000 images'):
    selected, _ = workflows.images_to_attack(
      {**info, 'model_info': info}, split='train', source='mlxtend', num_images=5000, seed=0
    )
  assert len(selected) == 3976 and not trained & {image.tobytes() for image in selected}


def test_a_library_warning_is_one_line(capsys, monkeypatch, tmp_path):
  def warns(*args, **kwargs):
    warnings.warn('careful:\nonly 3 images', stacklevel=1)

  monkeypatch.setattr(cli, '_setup', warns)
  with pytest.raises(TypeError):  # _attack unpacks _setup's None
    cli.main(['attack', '--out', str(tmp_path), '--debug'])
  assert capsys.readouterr().err == 'ddn-jax: warning: careful: only 3 images\n'
