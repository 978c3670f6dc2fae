"""Our results beside the paper's published numbers, with the ratios that carry across models.

Reads the committed results of the Table 1 experiment (``experiments.attacks_untargeted``), names
each row as the paper does from its attack spec, and writes, under ``--out``,
``paper_comparison_<name>.{md,json,csv}``: every number next to the paper's with how it was
obtained (the paper's protocol, or reduced and how), the model's test accuracy re-measured from
its checkpoint on the whole test split, and the mean-L2 ratios of the config (for us on the images
both rows attacked).

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.paper_comparison \
    --config experiments/configs/paper_mnist.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddn_jax import data, evaluation, reports, training
from experiments import _common, _report

_MODULE = 'experiments.paper_comparison'
_FIELDS = ('success_percent', 'mean_l2', 'median_l2', 'grads', 'seconds')
_FORMATS = ('.1f', '.4f', '.4f', '.0f', '.1f')
_TABLE2_FIELDS = ('average_success_percent', 'average_mean_l2', 'least_likely_success_percent')
_TABLE2_FIELDS += ('least_likely_mean_l2',)
_TABLE2_FORMATS = ('.2f', '.4f', '.1f', '.4f')
_TABLE5_FIELDS = ('success_percent', 'mean_l2', 'median_l2', 'accuracy_percent_at_epsilon')
_TABLE5_FORMATS = ('.1f', '.4f', '.4f', '.1f')


def paper_name(spec: dict[str, Any]) -> str:
  """The paper's name of an attack row: ``C&W 9×10000``, ``DeepFool 100``, ``DDN 1000``."""
  kwargs = spec['kwargs']
  if spec['attack'] == 'cw':
    return f'C&W {kwargs["binary_search_steps"]}×{kwargs["steps"]}'
  return {'ddn': 'DDN', 'deepfool': 'DeepFool'}[spec['attack']] + f' {kwargs["steps"]}'


def _protocol(spec, row, num_images):
  reductions = []
  if row['num_examples'] < num_images:
    reductions.append(f'first {row["num_examples"]} of the {num_images} images')
  if 'grid' in spec:
    reductions.append(f'grid search on the first {spec["grid_images"]} images')
  return 'reduced: ' + '; '.join(reductions) if reductions else "the paper's"


def mean_l2_ratio(norms, numerator, denominator):
  """Mean L2 of ``numerator``'s successes over ``denominator``'s, on the images both attacked."""
  n = min(len(norms[numerator]), len(norms[denominator]))
  means = []
  for name in (numerator, denominator):
    values = np.array([np.inf if v is None else v for v in norms[name][:n]], float)
    means.append(values[np.isfinite(values)].mean() if np.isfinite(values).any() else np.nan)
  return float(means[0] / means[1]), n


def _test_accuracy(experiment_config, defences=None) -> tuple[dict[str, float], int]:
  """``{defence: accuracy}`` of an experiment's models on their whole test split, re-measured
  from their checkpoints (default: its one model's defence), and the split's size."""
  spec = experiment_config['model']
  logits_fns = _common.load_models(spec, defences or [spec.get('defence', 'baseline')])
  images = experiment_config['images']
  x, y = data.load(images['dataset'], images['split'], source=images.get('source', 'auto'))
  return {d: training.evaluate(f, x, y)['accuracy'] for d, f in logits_fns.items()}, len(y)


def run(config: dict[str, Any], report) -> None:
  table1 = config['table1']
  results = reports.read_json(table1['results'])
  specs, num_images = results['config']['attacks'], results['num_images']
  names = [paper_name(spec) for spec in specs]
  accuracy, num_test = _test_accuracy(_report.load_config(table1['config']))
  (accuracy,) = accuracy.values()
  report.add_text(config['notes'])
  report.add_text(
    "The protocol column says how each row departs from the paper's attack protocol; every row "
    "also has our model in place of the paper's. "
    f'Model and images: {results["config"]["notes"]} Test accuracy re-measured from the checkpoint on the '
    f'{num_test} test images: **{accuracy:.2%}** (the paper: {config["paper_test_accuracy"]:.2%}).'
    f' Ours from `{table1["results"]}` ({num_images} images; its command and machine are there).'
  )
  header = ['Attack', 'protocol', 'success %', 'paper', 'mean L2', 'paper', 'median L2', 'paper']
  header += ['#grads', 'paper', 'run-time s', 'paper']
  rows, data_rows = [], []
  run_rows = results['rows'] + [None] * (len(specs) - len(results['rows']))  # a stopped run
  for spec, name, ours in zip(specs, names, run_rows):
    paper = table1['paper'][name]
    if ours is None:
      protocol, values = 'not run yet', [None] * 5
    else:
      protocol = _protocol(spec, ours, num_images)
      values = [100 * ours['success_rate'], ours['mean_l2'], ours['median_l2']]
      values += [ours['mean_grads'], ours['seconds']]
    row = {'attack': name, 'protocol': protocol}
    cells = _beside(row, _FIELDS, _FORMATS, values, paper)
    rows.append([name, protocol, *cells])
    data_rows.append(row)
  report.add_table(reports.markdown_table(header, rows, align='ll' + 'r' * 10), data_rows)

  norms = {
    name: results['per_example_l2'][row['attack']] for name, row in zip(names, results['rows'])
  }
  report.add_text('Mean L2 ratios (each mean over the successes of its row):')
  ratios = _ratios(report, config['ratios'], norms, {k: v[1] for k, v in table1['paper'].items()})
  report.data.update(test_accuracy=accuracy, num_test=num_test, table1=data_rows, ratios=ratios)
  if 'table2' in config:
    _table2(config['table2'], report)
  if 'table5' in config:
    _table5(config['table5'], report)
  print(report.write())


def _beside(row, fields, formats, ours, paper) -> list[str]:
  """Our value and the paper's of each field: the markdown cells, and into ``row`` (for the
  JSON and CSV) ``<field>`` and ``paper_<field>``."""
  cells = []
  for field, fmt, value, published in zip(fields, formats, ours, paper):
    cells += [reports.format_cell(value, fmt), reports.format_cell(published, fmt)]
    row.update({field: value, f'paper_{field}': published})
  return cells


def _ratios(report, pairs, norms, paper_mean_l2) -> list[dict[str, Any]]:
  """A table of mean-L2 ratios (numerator, denominator) beside the paper's: ours over the
  examples both rows attacked (`mean_l2_ratio`); returns its rows."""
  cells, ratios = [], []
  for numerator, denominator in pairs:
    ours, n = None, 0
    if numerator in norms and denominator in norms:
      ours, n = mean_l2_ratio(norms, numerator, denominator)
    paper = paper_mean_l2[numerator] / paper_mean_l2[denominator]
    name = f'{numerator} / {denominator}'
    cells.append([name, reports.format_cell(ours, '.3f'), f'{paper:.3f}', n or 'not run yet'])
    ratios.append({'ratio': name, 'ours': ours, 'paper': paper, 'examples': n})
  report.add_table(reports.markdown_table(['ratio', 'ours', 'paper', 'examples (ours)'], cells))
  return ratios


def _norms(values) -> np.ndarray:
  """Per-example norms as the result files store them (null for a failure) -> inf."""
  return np.array([np.inf if v is None else v for v in values], float)


def _table2(table2: dict[str, Any], report) -> None:
  """Table 2 (targeted: average and least-likely cases) beside the paper's, and mean-L2
  ratios over the (image, target) pairs both rows attacked."""
  results = reports.read_json(table2['results'])
  specs, num_images = results['config']['attacks'], results['num_images']
  names = [paper_name(spec) for spec in specs]
  header = ['Attack', 'protocol', 'avg success %', 'paper', 'avg mean L2', 'paper']
  header += ['LL success %', 'paper', 'LL mean L2', 'paper']
  rows, data_rows, norms = [], [], {}
  for i, (spec, name) in enumerate(zip(specs, names)):
    paper = table2['paper'][name]
    count = min(spec.get('num_images', num_images), num_images)
    reductions = [f'first {count} of the 1000 images, × 9 targets']
    if 'grid' in spec:
      reductions.append(f'grid search on the pairs of the first {spec["grid_images"]} images')
    cases = results['rows'][2 * i : 2 * i + 2]  # its average and least-likely rows, if run
    values = [None] * 4
    if cases:
      average, least_likely = cases
      norms[name] = results['per_pair'][average['attack']]['norms']
      values = [100 * average['success_rate'], average['mean_l2']]
      values += [100 * least_likely['success_rate'], least_likely['mean_l2']]
    protocol = 'reduced: ' + '; '.join(reductions) if cases else 'not run yet'
    row = {'attack': name, 'protocol': protocol}
    cells = _beside(row, _TABLE2_FIELDS, _TABLE2_FORMATS, values, paper)
    rows.append([name, protocol, *cells])
    data_rows.append(row)
  report.add_text(
    f'**Table 2** (targeted, MNIST): ours from `{table2["results"]}` (the model of Table 1; its '
    'command and machine are there). Average case over all (image, target) pairs, least likely '
    '(LL) per image its worst target; mean L2 over the successes.'
  )
  report.add_table(reports.markdown_table(header, rows, align='ll' + 'r' * 8), data_rows)
  report.add_text('Average-case mean L2 ratios (on the (image, target) pairs both attacked):')
  ratios = _ratios(report, table2['ratios'], norms, {k: v[1] for k, v in table2['paper'].items()})
  report.data.update(table2=data_rows, table2_ratios=ratios)


def _table5(table5: dict[str, Any], report) -> None:
  """Table 5 (defences) beside the paper's, and the robust accuracy of All at each ε."""
  results = reports.read_json(table5['results'])
  config, num_images = results['config'], results['num_images']
  names = [paper_name(spec) for spec in config['attacks']] + ['All']  # each model's rows
  header = ['Defence', 'Attack', 'protocol', 'success %', 'paper', 'mean L2', 'paper']
  header += ['median L2', 'paper', f'acc. ε≤{config["epsilon"]:g} %', 'paper']
  rows, data_rows = [], []
  for i, ours in enumerate(results['rows']):
    name = names[i % len(names)]
    paper = table5['paper'][ours['defence']][name]
    count = ours['num_examples']
    protocol = f'reduced: first {count} of the 1000 images'
    values = [100 * ours['success_rate'], ours['mean_l2'], ours['median_l2']]
    values.append(100 * ours[f'accuracy_at_{config["epsilon"]:g}'])
    row = {'defence': ours['defence'], 'attack': name, 'protocol': protocol}
    cells = _beside(row, _TABLE5_FIELDS, _TABLE5_FORMATS, values, paper)
    rows.append([ours['defence'], name, protocol, *cells])
    data_rows.append(row)
  epsilons = table5['epsilons']
  tested = {}  # the models' test accuracy, re-measured from their checkpoints
  if 'paper_test_accuracy' in table5:
    tested, num_test = _test_accuracy(config, list(config['defences']))
  robust_rows, robust = [], []
  for defence, title in config['defences'].items():
    norms = _norms(results['per_example_l2'][defence]['All'])
    accuracy = evaluation.robust_accuracy(norms, epsilons)
    paper = table5['paper_robust_accuracy'][title]
    cells, row = [], {'defence': title}
    if tested:
      published = table5['paper_test_accuracy'][title]
      cells += [f'{100 * tested[defence]:.2f}', f'{published:.2f}']
      row.update(test_accuracy_percent=100 * tested[defence], paper_test_accuracy_percent=published)
    for eps, published in zip(epsilons, paper):
      cells += [f'{100 * accuracy[float(eps)]:.1f}', f'{published:.1f}']
      row.update({f'accuracy_percent_{eps:g}': 100 * accuracy[float(eps)]})
      row.update({f'paper_accuracy_percent_{eps:g}': published})
    robust_rows.append([title, *cells])
    robust.append(row)
  report.add_text(
    f'**Table 5** (defences, MNIST): ours from `{table5["results"]}` ({num_images} images; its '
    f'command, machine and the reduction of the training are there). {results["config"]["notes"]}'
  )
  report.add_table(reports.markdown_table(header, rows, align='lll' + 'r' * 8), data_rows)
  report.add_text(
    'Figure 4: accuracy under All (robust accuracy) at ε, ours on the images above, the paper '
    'read from its text (Section 6) on 1000'
    + (
      f'; test accuracy on all {num_test} test images, re-measured from the checkpoints:'
      if tested
      else ':'
    )
  )
  header = ['Defence', *(['test acc. %', 'paper'] if tested else [])]
  for eps in epsilons:
    header += [f'ε = {eps:g} %', 'paper']
  report.add_table(reports.markdown_table(header, robust_rows), robust)
  report.data.update(table5=data_rows, robust_accuracy=robust)


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem=lambda config: f'paper_comparison_{config["name"]}',
    title=lambda config: f'The paper beside ours: {config["name"]}',
    run=run,
  )


if __name__ == '__main__':
  main()
