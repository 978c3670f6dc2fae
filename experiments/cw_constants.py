"""Figure 2 of the paper: histogram of the best constant C that C&W finds per example.

Runs C&W (the paper: 9×10000, initial constant 0.01) on models with and without adversarial
training; each example reports the constant of its lowest-norm adversarial example (the
result's ``extras['best_const']``), and plots the histograms of log2 C per model. Writes
``cw_constants_<name>.md`` / ``.json`` / ``.csv`` (per-example constants) and
``cw_constants_<name>.png`` under ``--out``.

  python -m experiments.cw_constants --config experiments/configs/cw_constants_local.py
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from ddn_jax import evaluation, plotting, reports
from experiments import _common, _report

_MODULE = 'experiments.cw_constants'


def _best_constants(logits_fn, images, labels, attack, batch_size):
  """C&W over the images in batches: its summary and the per-example best constants."""
  results = []
  start = time.perf_counter()
  for i in range(0, len(images), batch_size):
    result = attack(logits_fn, images[i : i + batch_size], labels[i : i + batch_size])
    results.append(jax.device_get(result))
  seconds = time.perf_counter() - start
  result = jax.tree.map(lambda *batches: np.concatenate(batches), *results)
  return result, np.asarray(result.extras['best_const'], np.float64), seconds


def run(config: dict[str, Any], out, command: str) -> dict[str, Any]:
  stem = f'cw_constants_{config["name"]}'
  report = reports.Report(
    out / stem, title=f'Figure 2: best C&W constants, {config["title"]}', command=command
  )
  defences = config['defences']
  logits_fns = _common.load_models(config['model'], list(defences))
  images, labels = _common.evaluation_images(config['images'])
  attack = _common.make_attack(config['attack'])
  rows, constants = [], {}
  for defence, title in defences.items():
    print(f'== {title}: {attack.label}', flush=True)
    result, best_const, seconds = _best_constants(
      logits_fns[defence], images, labels, attack, config['batch_size']
    )
    summary = evaluation.summarize(result, images, attack=attack.label, seconds=seconds)
    # Examples misclassified from the start need no constant (C&W's point there is the clean
    # image up to its tanh round trip, with a norm of about 1e-6 rather than 0).
    correct = np.asarray(logits_fns[defence](images)).argmax(-1) == labels
    found = np.asarray(result.success) & correct
    constants[title] = best_const[found]
    log2 = np.log2(constants[title])
    rows.append(
      {
        'defence': title,
        **vars(summary),
        'num_constants': int(found.sum()),
        'log2_c_min': float(log2.min()) if found.any() else float('nan'),
        'log2_c_median': float(np.median(log2)) if found.any() else float('nan'),
        'log2_c_max': float(log2.max()) if found.any() else float('nan'),
      }
    )

  report.add_text(config['notes'])
  report.add_text(
    f'{len(images)} test images; per successfully attacked image that the model classifies '
    'correctly, the constant C of its lowest-norm adversarial example.'
  )
  header = ['Model', 'Success (%)', 'Median L2', '#Grads', 'Images with a C']
  header += ['log2 C min', 'median', 'max']
  table = reports.markdown_table(
    header,
    [
      [
        row['defence'],
        f'{100 * row["success_rate"]:.1f}',
        reports.format_cell(row['median_l2']),
        f'{row["mean_grads"]:.0f}',
        row['num_constants'],
        *(reports.format_cell(row[f'log2_c_{k}'], '.1f') for k in ('min', 'median', 'max')),
      ]
      for row in rows
    ],
  )
  report.add_table(table, rows)
  report.add_figure(
    plotting.constant_histogram(constants, title=f'{config["title"]}: best C of {attack.label}'),
    f'{stem}.png',
    caption='Histogram of log2 C per model',
  )
  report.data.update(config=config, num_images=len(images), rows=rows, best_constants=constants)
  print(report.write())
  return report.data


def main(argv: list[str] | None = None) -> None:
  config, out, command = _report.parse_args(argv, __doc__.split('\n')[0], _MODULE)
  run(config, out, command)


if __name__ == '__main__':
  main()
