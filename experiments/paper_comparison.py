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

from ddn_jax import data, reports, training
from experiments import _common, _report

_MODULE = 'experiments.paper_comparison'
_FIELDS = ('success_percent', 'mean_l2', 'median_l2', 'grads', 'seconds')
_FORMATS = ('.1f', '.4f', '.4f', '.0f', '.1f')


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


def _test_accuracy(table1_config) -> tuple[float, int]:
  """The model's accuracy on its whole test split, re-measured from its checkpoint."""
  spec = table1_config['model']
  logits_fn = next(iter(_common.load_models(spec, [spec.get('defence', 'baseline')]).values()))
  images = table1_config['images']
  x, y = data.load(images['dataset'], images['split'], source=images.get('source', 'auto'))
  return training.evaluate(logits_fn, x, y)['accuracy'], len(y)


def run(config: dict[str, Any], report) -> None:
  table1 = config['table1']
  results = reports.read_json(table1['results'])
  specs, num_images = results['config']['attacks'], results['num_images']
  names = [paper_name(spec) for spec in specs]
  accuracy, num_test = _test_accuracy(_report.load_config(table1['config']))
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
    cells, row = [], {'attack': name, 'protocol': protocol}
    for field, value, published, spec in zip(_FIELDS, values, paper, _FORMATS):
      cells += [reports.format_cell(value, spec), reports.format_cell(published, spec)]
      row.update({field: value, f'paper_{field}': published})
    rows.append([name, protocol, *cells])
    data_rows.append(row)
  report.add_table(reports.markdown_table(header, rows, align='ll' + 'r' * 10), data_rows)

  norms = {
    name: results['per_example_l2'][row['attack']] for name, row in zip(names, results['rows'])
  }
  ratio_rows, ratios = [], []
  for numerator, denominator in config['ratios']:
    ours, n = None, 0
    if numerator in norms and denominator in norms:
      ours, n = mean_l2_ratio(norms, numerator, denominator)
    paper = table1['paper'][numerator][1] / table1['paper'][denominator][1]
    cells = [reports.format_cell(ours, '.3f'), f'{paper:.3f}', n or 'not run yet']
    ratio_rows.append([f'{numerator} / {denominator}', *cells])
    ratios.append(
      {'ratio': f'{numerator} / {denominator}', 'ours': ours, 'paper': paper, 'images': n}
    )
  report.add_text('Mean L2 ratios (each mean over the successes of its row):')
  report.add_table(reports.markdown_table(['ratio', 'ours', 'paper', 'images (ours)'], ratio_rows))
  report.data.update(test_accuracy=accuracy, num_test=num_test, table1=data_rows, ratios=ratios)
  print(report.write())


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
