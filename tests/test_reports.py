"""Reports: strict JSON, CSV round trips, the paper's markdown tables on hand-made results, the
report on disk written incrementally, and a machine description that never imports PyTorch."""

import csv
import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import types

import numpy as np
import pytest

from ddn_jax import evaluation, interop, plotting, reports


def _evaluation(name, success, l2, *, worst=None, num_grads=None, seconds=1.0):
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
  )


def _cells(table):
  """The rows of a markdown table as ``{header: cell}`` dicts."""
  lines = table.strip('\n').splitlines()
  split = lambda line: [c.strip() for c in re.split(r'(?<!\\)\|', line.strip()[1:-1])]
  header = split(lines[0])
  assert set(lines[1].replace(':', '').strip('|').split('|')) == {'---'}
  return [dict(zip(header, split(line), strict=True)) for line in lines[2:]]


def _strict_loads(text):
  return json.loads(text, parse_constant=lambda c: pytest.fail(f'non-standard JSON constant {c}'))


# ---------------------------------------------------------------------------------------------
# JSON and CSV.


def test_json_is_strict_non_finite_floats_become_null(tmp_path):
  failed = _evaluation('Never', [0, 0], [0.0, 0.0], num_grads=[3, 5])
  found = _evaluation('Found', [1, 0], [0.25, 0.0], num_grads=[1, 1])
  curve = evaluation.robustness_curve(np.array([0.25, np.inf]), [0.0, 0.5])
  report = {
    'curve': curve,
    'rows': [failed.summary, found.summary],
    'per_example': found,
    'norms': found.norms,  # [0.25, inf]
    'scalars': [np.float32('nan'), -math.inf, np.float64(1.5), np.int64(7), True, 'NaN', None],
  }
  reports.write_json(tmp_path / 'r.json', report)
  back = _strict_loads((tmp_path / 'r.json').read_text())
  assert back == reports.read_json(tmp_path / 'r.json')
  assert back['rows'][0]['mean_l2'] is None and back['rows'][1]['mean_l2'] == 0.25
  assert back['norms'] == [0.25, None]
  assert back['scalars'] == [None, None, 1.5, 7, True, 'NaN', None]
  assert back['curve']['accuracy'] == [1.0, 0.5] and back['curve']['area'] == 0.75
  assert back['per_example']['success'] == [True, False]
  assert back['per_example']['summary']['median_l2'] == pytest.approx(2.625)
  assert back['per_example']['adv'] is None


def test_json_round_trips_finite_values_exactly(tmp_path):
  rng = np.random.default_rng(0)
  values = {
    'floats': rng.standard_normal(50) * 10.0 ** rng.integers(-12, 12, size=50),
    'ints': list(range(-3, 3)),
    'nested': {'a': [{'b': 'text'}], '1.5': [True, False]},
    1.5: 'a float key',
  }
  reports.write_json(tmp_path / 'v.json', values)
  back = reports.read_json(tmp_path / 'v.json')
  assert back['floats'] == values['floats'].tolist()
  assert back['ints'] == values['ints'] and back['nested'] == values['nested']
  assert back['1.5'] == 'a float key'  # JSON keys are strings


def test_read_json_rejects_non_standard_constants(tmp_path):
  (tmp_path / 'bare.json').write_text('{"mean_l2": NaN}')
  with pytest.raises(ValueError, match='NaN is not JSON'):
    reports.read_json(tmp_path / 'bare.json')


def test_a_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
  path = tmp_path / 'r.json'
  reports.write_json(path, {'a': 1})

  def interrupted(*args):
    raise KeyboardInterrupt

  monkeypatch.setattr(os, 'replace', interrupted)  # the new file is complete, never in place
  with pytest.raises(KeyboardInterrupt):
    reports.write_json(path, {'a': 2})
  with pytest.raises(KeyboardInterrupt):
    reports.write_csv(tmp_path / 'r.csv', {'a': 2})
  monkeypatch.undo()
  assert reports.read_json(path) == {'a': 1}
  assert [p.name for p in tmp_path.iterdir()] == ['r.json']  # no temporary file left


def test_csv_round_trips_floats_and_flattens_results(tmp_path):
  rng = np.random.default_rng(1)
  values = (rng.standard_normal(20) * 10.0 ** rng.integers(-9, 9, size=20)).tolist()
  values += [math.nan, math.inf, -math.inf, 0.1 + 0.2]
  reports.write_csv(tmp_path / 'f.csv', [{'i': i, 'x': v} for i, v in enumerate(values)])
  with open(tmp_path / 'f.csv', newline='') as f:
    rows = list(csv.DictReader(f))
  back = [float(r['x']) for r in rows]
  assert [b == v or (math.isnan(b) and math.isnan(v)) for b, v in zip(back, values)] == [
    True
  ] * len(values)
  assert [int(r['i']) for r in rows] == list(range(len(values)))

  failed = _evaluation('Never', [0, 0], [0.0, 0.0], num_grads=[3, 5])
  found = _evaluation('Found', [1, 0], [0.25, 0.0], num_grads=[1, 1])
  # Rows of different columns: the header is their union, a missing cell is empty.
  reports.write_csv(tmp_path / 's.csv', [failed.summary, {'attack': 'extra', 'note': 'x'}])
  with open(tmp_path / 's.csv', newline='') as f:
    rows = list(csv.DictReader(f))
  assert rows[0]['note'] == '' and rows[1]['mean_l2'] == '' and rows[1]['note'] == 'x'
  assert math.isnan(float(rows[0]['mean_l2'])) and float(rows[0]['seconds']) == 1.0
  counted = dataclasses.replace(found, num_forwards=np.array([2, 3]))
  reports.write_csv(tmp_path / 'e.csv', [failed, counted])
  with open(tmp_path / 'e.csv', newline='') as f:
    rows = list(csv.DictReader(f))
  # Forward passes where counted, an empty cell (unknown, not 0) where not.
  assert [(r['attack'], r['example'], r['success'], r['num_forwards']) for r in rows] == [
    ('Never', '0', 'False', ''),
    ('Never', '1', 'False', ''),
    ('Found', '0', 'True', '2'),
    ('Found', '1', 'False', '3'),
  ]
  reports.write_csv(tmp_path / 's.csv', [failed.summary, counted.summary])
  with open(tmp_path / 's.csv', newline='') as f:
    assert [r['mean_forwards'] for r in csv.DictReader(f)] == ['', '2.5']
  curve = evaluation.robustness_curve(np.array([0.25, np.inf]), [0.0, 0.5])
  reports.write_csv(tmp_path / 'c.csv', curve)
  with open(tmp_path / 'c.csv', newline='') as f:
    assert list(csv.reader(f)) == [['epsilon', 'robust_accuracy'], ['0.0', '1.0'], ['0.5', '0.5']]
  other = evaluation.robustness_curve(np.array([0.75]), [0.0, 0.5, 1.0])
  reports.write_csv(tmp_path / 'n.csv', reports.robustness_rows({'A': curve, 'B': other}))
  with open(tmp_path / 'n.csv', newline='') as f:
    assert [
      (r['attack'], float(r['epsilon']), float(r['robust_accuracy'])) for r in csv.DictReader(f)
    ] == [
      ('A', 0.0, 1.0),
      ('A', 0.5, 0.5),
      ('B', 0.0, 1.0),
      ('B', 0.5, 1.0),
      ('B', 1.0, 0.0),
    ]
  with pytest.raises(TypeError, match='A: curves must be RobustnessCurve'):
    reports.robustness_rows({'A': (curve.epsilons, curve.accuracy)})
  with pytest.raises(ValueError, match=r"\['b'\] are not"):
    reports.write_csv(tmp_path / 'x.csv', {'a': 1, 'b': [1, 2]})
  with pytest.raises(TypeError, match='Cannot write a set'):
    reports.write_csv(tmp_path / 'x.csv', {1, 2})


# ---------------------------------------------------------------------------------------------
# Markdown tables.


def test_markdown_table_checks_its_shape():
  table = reports.markdown_table(['a', 'b'], [['x|y', 1]])
  assert _cells(table) == [{'a': 'x\\|y', 'b': '1'}]
  assert table.splitlines()[1] == '|---|---:|'
  with pytest.raises(ValueError, match='Row 1 has 1 cells but the header has 2 columns'):
    reports.markdown_table(['a', 'b'], [['x', 1], ['y']])
  with pytest.raises(ValueError, match='align must be one of l or r per column'):
    reports.markdown_table(['a', 'b'], [], align='lc')
  assert reports.format_cell(float('nan')) == reports.format_cell(None) == '–'
  assert reports.format_cell(0.5, '.1%') == '50.0%'


def test_attack_table():
  failed = _evaluation('Never', [0, 0], [0.0, 0.0], num_grads=[3, 5], seconds=2.0)
  found = _evaluation('Found', [1, 0], [0.25, 0.0], worst=[5.0, 4.0], num_grads=[1, 1])
  unmeasured = dataclasses.replace(found.summary, attack='Unmeasured', seconds=None)
  rows = _cells(reports.attack_table([failed, found.summary, unmeasured]))
  assert list(rows[0]) == [
    'Attack',
    'Success (%)',
    'Mean L2',
    'Median L2',
    '#Grads',
    'Run-time (s)',
  ]
  assert [r['Attack'] for r in rows] == ['Never', 'Found', 'Unmeasured']
  never, found_row, unmeasured_row = rows
  # No success: the mean is undefined, the median is the worst case (5 for both examples).
  assert never['Success (%)'] == '0.0' and never['Mean L2'] == '–'
  assert float(never['Median L2']) == 5.0 and never['#Grads'] == '4'
  assert float(never['Run-time (s)']) == 2.0
  # One success at 0.25, one failure counted at its worst case 4: median (0.25 + 4) / 2.
  assert found_row['Success (%)'] == '50.0' and float(found_row['Mean L2']) == 0.25
  assert float(found_row['Median L2']) == pytest.approx(2.125, abs=5e-5)
  assert unmeasured_row['Run-time (s)'] == '–'
  with pytest.raises(TypeError, match='AttackSummary or AttackEvaluation'):
    reports.attack_table([{'attack': 'x'}])


def _targeted(name, success, l2, targets_per_image, num_forwards=None):
  """A TargetedEvaluation of image-major pairs, its least-likely case as evaluate_targeted does."""
  pairs = dataclasses.replace(_evaluation(name, success, l2), num_forwards=num_forwards)
  num_images = len(success) // targets_per_image
  norms = pairs.norms.reshape(num_images, targets_per_image)
  chosen = np.arange(num_images) * targets_per_image + np.argmax(norms, axis=1)
  least = dataclasses.replace(
    pairs,
    success=pairs.success.reshape(num_images, targets_per_image).all(axis=1),
    l2=pairs.l2[chosen],
    num_grads=pairs.num_grads[chosen],
    worst_l2=pairs.worst_l2[chosen],
    model_finite=pairs.model_finite[chosen],
    num_forwards=None if num_forwards is None else pairs.num_forwards[chosen],
  )
  return evaluation.TargetedEvaluation(
    image_index=np.repeat(np.arange(num_images), targets_per_image),
    target=np.tile(np.arange(1, targets_per_image + 1), num_images),
    pairs=pairs,
    least_likely=least,
    least_likely_target=np.ones(num_images, int),
  )


def test_targeted_rows_and_table():
  # Image 0: both targets at 1 and 3; image 1: one target at 2, one failed.
  ddn = _targeted(
    'DDN', [1, 1, 1, 0], [1.0, 3.0, 2.0, 0.0], targets_per_image=2, num_forwards=np.arange(4)
  )
  never = _targeted('Never', [0, 0, 0, 0], [0.0] * 4, targets_per_image=2)
  rows = reports.targeted_rows([ddn, never])
  assert [(r['attack'], r['case']) for r in rows] == [
    ('DDN', 'average'),
    ('DDN', 'least likely'),
    ('Never', 'average'),
    ('Never', 'least likely'),
  ]
  assert [r['num_examples'] for r in rows] == [4, 2, 4, 2]
  assert rows[0]['success_rate'] == 0.75 and rows[0]['mean_l2'] == 2.0
  # Least likely: image 0's worst target (3) succeeded, image 1 failed.
  assert rows[1]['success_rate'] == 0.5 and rows[1]['mean_l2'] == 3.0
  assert math.isnan(rows[3]['mean_l2'])
  # Forward passes: the mean over pairs, then over the chosen pairs (1 and 3); unknown: None.
  assert [r['mean_forwards'] for r in rows] == [1.5, 2.0, None, None]

  cells = _cells(reports.targeted_table([ddn, never]))
  # The paper's columns: no forward passes.
  assert list(cells[0]) == ['Attack', 'Case', 'Success (%)', 'Mean L2', 'Median L2', '#Grads',
                            'Run-time (s)']  # fmt: skip
  assert [(c['Attack'], c['Case']) for c in cells] == [(r['attack'], r['case']) for r in rows]
  assert [c['Success (%)'] for c in cells] == ['75.0', '50.0', '0.0', '0.0']
  assert float(cells[1]['Mean L2']) == 3.0 and cells[3]['Mean L2'] == '–'
  with pytest.raises(TypeError, match='TargetedEvaluation'):
    reports.targeted_table([ddn.pairs])


def test_defence_rows_and_table():
  # Minimal norms (inf where the attack failed): the robust accuracy at ε = 1 counts norms > 1.
  a = _evaluation('A', [1, 1, 0, 1], [0.5, 2.0, 0.0, 3.0])  # norms 0.5, 2, inf, 3
  b = _evaluation('B', [1, 0, 1, 1], [1.5, 0.0, 0.8, 1.0])  # norms 1.5, inf, 0.8, 1
  models = {
    'Baseline': [a, b, evaluation.combine_best([a, b], name='All')],
    'Robust': [b],
  }
  rows = reports.defence_rows(models, epsilon=1.0)
  assert [(r['defence'], r['attack']) for r in rows] == [
    ('Baseline', 'A'),
    ('Baseline', 'B'),
    ('Baseline', 'All'),
    ('Robust', 'B'),
  ]
  # A: 2, inf, 3 exceed 1; B: 1.5 and inf (1 is within the budget); All: min per image
  # (0.5, 2, 0.8, 1), of which only 2 exceeds 1.
  assert [r['accuracy_at_1'] for r in rows] == [0.75, 0.5, 0.25, 0.5]
  assert [r['mean_forwards'] for r in rows] == [None] * 4  # hand-made: unknown, not 0
  cells = _cells(
    reports.defence_table(models, epsilon=1.0, clean_accuracy={'Baseline': 1.0, 'Robust': 0.9})
  )
  assert [c['Acc. at ε ≤ 1 (%)'] for c in cells] == ['75.0', '50.0', '25.0', '50.0']
  assert [c['Clean acc. (%)'] for c in cells] == ['100.0', '100.0', '100.0', '90.0']
  assert cells[2]['Attack'] == 'All' and cells[2]['Success (%)'] == '100.0'
  assert 'Clean acc. (%)' not in _cells(reports.defence_table(models, epsilon=1.0))[0]
  with pytest.raises(ValueError, match=r"no entry for \['Robust'\]"):
    reports.defence_table(models, epsilon=1.0, clean_accuracy={'Baseline': 1.0})


def _sweep_result():
  summaries = tuple(
    evaluation.AttackSummary('ddn', 2, s, m, m, g, g + 1)
    for s, m, g in [(1.0, 1.5, 3), (0.5, 2.5, 3), (1.0, 1.25, 5), (0.0, math.nan, 5)]
  )
  points = tuple({'steps': s, 'gamma': g} for s in (3, 5) for g in (0.05, 0.1))
  empty = np.zeros((4, 2))
  return evaluation.SweepResult('ddn', points, empty, empty > 0, empty, summaries, 1.0)


def test_sweep_table():
  result = _sweep_result()
  cells = _cells(reports.sweep_table(result))
  assert list(cells[0]) == ['steps', 'gamma', 'Success (%)', 'Mean L2', 'Median L2', '#Grads']
  assert [(c['steps'], c['gamma']) for c in cells] == [
    ('3', '0.05'),
    ('3', '0.1'),
    ('5', '0.05'),
    ('5', '0.1'),
  ]
  assert [c['Success (%)'] for c in cells] == ['100.0', '50.0', '100.0', '0.0']
  assert cells[3]['Mean L2'] == '–' and float(cells[2]['Median L2']) == 1.25
  # The rows read back from a report (labelled, and NaN as None) give the same table.
  assert [r['mean_forwards'] for r in result.rows()] == [4, 4, 6, 6]  # not a table column
  labelled = [{'sweep': 'DDN', 'attack': 'ddn', **r} for r in reports.to_dict(result.rows())]
  labelled[3]['mean_l2'] = None
  assert reports.sweep_table(labelled) == reports.sweep_table(result)
  with pytest.raises(ValueError, match=r"Sweep row 1 has no \['median_l2'\]"):
    reports.sweep_table([labelled[0], {k: v for k, v in labelled[1].items() if k != 'median_l2'}])


def test_comparison_table():
  side = lambda l2, success, seconds: interop.comparison.SideResult(
    adv=np.zeros((4, 1, 1, 1)),
    l2=np.asarray(l2),
    success=np.asarray(success),
    grads_per_example=10.0,
    seconds=seconds,
  )
  ours = side([1.0, 2.0, 0.0, 0.0], [True, True, True, False], 1.0)
  ref = side([1.0, 1.0, 0.0, 3.0], [True, True, True, True], 2.0)
  stats = interop.comparison.agreement_stats(ours, ref)
  result = {
    'model': 'SmallCNN',
    'n': 4,
    'clean_accuracy': {'ddn_jax': 1.0, 'adv_lib': 1.0},
    'logits_max_abs_diff': 0.0,
    'attacks': {
      'ddn': {
        'hparams': {'steps': 3},
        'stats': stats,
        'load_average': {'before': [1.0, 1, 1], 'after': [2.0, 1, 1]},
      },
      'deepfool': {'hparams': {}, 'skipped': 'not here'},
    },
  }
  markdown = reports.comparison_table(result)
  tables = [t for t in markdown.split('\n\n') if t.startswith('|')]
  agreement, ratios = (_cells(t) for t in tables)
  assert [r['Attack'] for r in agreement] == ['ddn', 'deepfool']
  assert agreement[0]['Success ddn_jax / adv-lib'] == '0.750 / 1.000'
  assert agreement[0]['Success agreement'] == '0.750'
  # Mean L2 over successes: ours (1 + 2 + 0) / 3 = 1, adv-lib (1 + 1 + 0 + 3) / 4 = 1.25.
  assert agreement[0]['Mean L2 ddn_jax / adv-lib (rel. diff)'] == '1.0000 / 1.2500 (-20.00%)'
  assert agreement[0]['Time (s) ddn_jax (compile) / adv-lib'] == '1.0 (incl.) / 2.0'
  assert agreement[1]['Success ddn_jax / adv-lib'] == 'skipped: not here'
  # Ratios over the two examples both broke at a nonzero norm: 1/1 and 2/1.
  assert len(ratios) == 1 and ratios[0]['n'] == '2'
  assert float(ratios[0]['q0']) == 1.0 and float(ratios[0]['q0.5']) == 1.5
  assert float(ratios[0]['q1']) == 2.0
  assert 'ddn 1.0→2.0' in markdown and "- ddn: `{'steps': 3}`" in markdown


# ---------------------------------------------------------------------------------------------
# The report on disk.


def test_report_writes_incrementally(tmp_path):
  path = tmp_path / 'out' / 'table'
  report = reports.Report(path, title='A title', command='ddn-jax evaluate --x 1')
  evaluations = [_evaluation('A', [1, 0], [0.5, 0.0])]
  report.add_text('Some notes.')
  report.add_table(reports.attack_table(evaluations), [e.summary for e in evaluations], key='t1')
  report.add_rows(evaluations, csv='per_example.csv', key='per_example')
  report.data['rows'] = [e.summary for e in evaluations]
  first = report.write()
  assert first == (tmp_path / 'out' / 'table.md').read_text()
  lines = first.splitlines()
  assert lines[0] == '# A title' and lines[2] == 'Command: `ddn-jax evaluate --x 1`'
  assert lines[4].startswith('Machine: ') and 'load average at the end' in lines[4]
  assert 'Wall time of the command: ' in lines[4]
  assert 'Some notes.' in first and [
    r['Attack'] for r in _cells(reports.attack_table(evaluations))
  ] == ['A']
  data = reports.read_json(tmp_path / 'out' / 'table.json')
  assert list(data)[:2] == ['command', 'machine'] and data['rows'][0]['attack'] == 'A'

  # A second attack: the table is replaced in place, text added after it, a figure linked.
  evaluations.append(_evaluation('B', [1, 1], [0.25, 0.75]))
  report.add_table(reports.attack_table(evaluations), [e.summary for e in evaluations], key='t1')
  report.add_rows(evaluations, csv='per_example.csv', key='per_example')
  report.add_text('After the table.')
  figure = plotting.robust_accuracy({'A': ([0, 1], [1, 0.5])})
  png = report.add_figure(figure, 'curve.png', caption='The curve')
  report.data['rows'] = [e.summary for e in evaluations]
  second = report.write()
  assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
  assert second.count('| Attack |') == 1
  order = [second.index(s) for s in ('Some notes.', '| A |', '| B |', 'After the table.')]
  assert order == sorted(order)
  assert second.rstrip().endswith('![The curve](curve.png)')
  with open(tmp_path / 'out' / 'table.csv', newline='') as f:
    assert [r['attack'] for r in csv.DictReader(f)] == ['A', 'B']
  with open(tmp_path / 'out' / 'per_example.csv', newline='') as f:
    assert [(r['attack'], r['example']) for r in csv.DictReader(f)] == [
      ('A', '0'),
      ('A', '1'),
      ('B', '0'),
      ('B', '1'),
    ]
  data = reports.read_json(tmp_path / 'out' / 'table.json')
  assert [r['attack'] for r in data['rows']] == ['A', 'B']
  assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == [
    'curve.png',
    'per_example.csv',
    'table.csv',
    'table.json',
    'table.md',
  ]

  report.data['machine'] = 'mine'
  with pytest.raises(ValueError, match=r"must not set \['machine'\]"):
    report.write()
  assert reports.read_json(tmp_path / 'out' / 'table.json')['machine'] != 'mine'


def test_report_without_command_or_tables(tmp_path):
  report = reports.Report(tmp_path / 'r.v1', title='T')
  report.add_text('only text')
  markdown = report.write()
  assert 'Command' not in markdown and 'only text' in markdown
  assert sorted(p.name for p in tmp_path.iterdir()) == ['r.v1.json', 'r.v1.md']
  assert 'command' not in reports.read_json(tmp_path / 'r.v1.json')


def test_sweep_figure_has_a_line_per_combination_of_hue_columns():
  rows = [
    {'gamma': g, 'steps': s, 'init': i, 'median_l2': g * s + i}
    for s in (3, 5)
    for i in (0.5, 1.0)
    for g in (0.1, 0.05)
  ]
  figure = plotting.sweep(rows, x='gamma', y='median_l2', hue=['steps', 'init'])
  (ax,) = figure.axes
  labels = ax.get_legend_handles_labels()[1]
  assert labels == ['steps=3, init=0.5', 'steps=3, init=1', 'steps=5, init=0.5', 'steps=5, init=1']
  for line, (s, i) in zip(ax.get_lines(), [(3, 0.5), (3, 1.0), (5, 0.5), (5, 1.0)]):
    np.testing.assert_allclose(line.get_xdata(), [0.05, 0.1])  # sorted along x
    np.testing.assert_allclose(line.get_ydata(), [0.05 * s + i, 0.1 * s + i])
  assert (
    plotting.sweep(rows, x='gamma', y='median_l2', hue='steps').axes[0].get_legend() is not None
  )
  with pytest.raises(ValueError, match="No column 'beta'"):
    plotting.sweep(rows, x='gamma', y='median_l2', hue=['steps', 'beta'])


# ---------------------------------------------------------------------------------------------
# The machine.


def test_describing_the_machine_does_not_import_torch(monkeypatch):
  pytest.importorskip('torch')  # otherwise nothing could import it
  code = (
    'import sys\n'
    'from ddn_jax import reports\n'
    'reports.describe_machine()\n'
    'info = reports.machine_info()\n'
    "assert 'torch' not in sys.modules, 'torch imported'\n"
    "assert info['torch_threads'] is None and info['versions']['torch']\n"
  )
  subprocess.run([sys.executable, '-c', code], check=True)
  # Once the caller has imported torch, its thread count is reported.
  monkeypatch.setitem(sys.modules, 'torch', types.SimpleNamespace(get_num_threads=lambda: 3))
  assert reports.machine_info(('jax',))['torch_threads'] == 3


def test_describe_machine_names_what_the_info_holds():
  info = reports.machine_info(('jax',))
  line = reports.describe_machine(info)
  assert info['cpu'] in line and f'jax {info["versions"]["jax"]}' in line
  more = {
    **info,
    'usable_cpus': 1,
    'logical_cpus': 4,
    'ld_preload': '/usr/lib/libjemalloc.so.2',
    'allocator': 'jemalloc',
    'torch_threads': 3,
    'versions': {'jax': '1', 'numpy': '2', 'foolbox': None},
  }
  line = reports.describe_machine(more)
  for part in ('4 cores visible', '1 usable CPUs', 'jemalloc (/usr', 'torch threads 3', 'numpy 2'):
    assert part in line
  assert 'foolbox' not in line
