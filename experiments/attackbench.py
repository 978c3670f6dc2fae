"""An AttackBench-style table: every minimum-norm attack at fixed per-example query budgets.

Each attack of the config runs at each budget (``attacks.within_query_budget``: the inner loop
count that fits, a query being one forward or one backward pass of the model on one example), on
the same images of one model. Columns: the budget, the attack's label at that budget, the most
queries it may make per example and their mean over the examples, the attack success rate and
the median L2 over the correctly classified images (a failure counts as an infinite norm), the
optimality score (`ddn_jax.evaluation.optimality`) against the per-example best of every run of
the table, and the time. Writes ``attackbench_<name>.{md,json,csv}`` under ``--out``.

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.attackbench \
    --config experiments/configs/attackbench_mnist.py
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks, evaluation, reports
from experiments import _common, _report

_MODULE = 'experiments.attackbench'
_HEADER = (
  'queries', 'attack', 'max queries / image', 'mean queries / image', 'ASR', 'median L2',
  'optimality', 's (run)', 's (compile)',
)  # fmt: skip


def _timed(attack, logits_fn, images, labels):
  start = time.perf_counter()
  r = jax.block_until_ready(attack(logits_fn, images, labels))
  return r, time.perf_counter() - start


def _run(attack, logits_fn, images, labels) -> dict[str, Any]:
  """``attack`` on the images in two halves: the first call compiles, the second only runs; the
  run time of all the images is the second's scaled to them."""
  half = len(images) // 2
  first, first_s = _timed(attack, logits_fn, images[:half], labels[:half])
  second, second_s = _timed(attack, logits_fn, images[half:], labels[half:])
  run_s = second_s * len(images) / (len(images) - half)
  join = lambda f: np.concatenate([np.asarray(f(first)), np.asarray(f(second))])
  success, l2 = join(lambda r: r.success), join(lambda r: r.l2).astype(np.float64)
  finite = join(lambda r: r.model_finite)
  # Norms as evaluation has them: 0 already misclassified, inf failed, NaN non-finite model.
  norms = np.where(finite, np.where(success, l2, np.inf), np.nan)
  return {
    'norms': norms,
    'queries': join(lambda r: r.num_queries),
    'seconds': run_s,
    'compile_seconds': max(first_s - run_s * half / len(images), 0.0),
  }


def _summary(result: dict[str, Any], correct: np.ndarray) -> dict[str, Any]:
  """One run's row: ASR and median L2 over the correctly classified images."""
  norms = np.asarray(result['norms'])[correct]
  return {
    'queries': result['budget'],
    'attack': result['label'],
    'max_queries': result['max_queries'],
    'mean_queries': float(np.mean(result['queries'])),
    'asr': float(np.mean(np.isfinite(norms))),
    'median_l2': float(np.median(norms)),
    'optimality': result['optimality'],
    'seconds': result['seconds'],
    'compile_seconds': result['compile_seconds'],
  }


def _cells(row: dict[str, Any]) -> list[Any]:
  cell = reports.format_cell
  return [
    row['queries'],
    row['attack'],
    row['max_queries'],
    f'{row["mean_queries"]:.1f}',
    f'{row["asr"]:.1%}',
    cell(row['median_l2'], '.4f'),
    cell(row['optimality'], '.3f'),
    f'{row["seconds"]:.1f}',
    f'{row["compile_seconds"]:.1f}',
  ]


def run(config: dict[str, Any], out, command: str) -> None:
  report = reports.Report(
    out / f'attackbench_{config["name"]}', title=config['title'], command=command
  )
  report.data['config'] = config
  defence = config['model']['defence']
  logits_fn = _common.load_models(config['model'], [defence])[defence]
  images, labels = _common.evaluation_images(config['images'])
  logits = np.asarray(logits_fn(images))
  num_classes, correct = logits.shape[-1], logits.argmax(-1) == labels
  report.add_text(config['notes'])
  report.add_text(
    f'{len(images)} images, {int(correct.sum())} classified correctly (ASR and median L2 are over '
    'these); optimality against the per-example best of all the runs below.'
  )
  results = report.data.setdefault('results', [])
  for budget in config['queries']:
    for spec in config['attacks']:
      attack = attacks.within_query_budget(spec, budget, num_classes=num_classes)
      print(f'== {budget} queries: {attack.label}', flush=True)
      results.append(
        {
          'budget': budget,
          'spec': attack.spec,
          'label': attack.label,
          'max_queries': attack.max_queries(num_classes=num_classes),
          **_run(attack, logits_fn, images, labels),
        }
      )
      # Every run so far: the best norms, hence the scores, change as runs are added.
      names = [f'{r["budget"]}:{r["spec"]}' for r in results]
      scores = evaluation.optimality({n: r['norms'] for n, r in zip(names, results)})
      for name, r in zip(names, results):
        r['optimality'] = scores[name]
      rows = [_summary(r, correct) for r in results]
      table = reports.markdown_table(_HEADER, [_cells(r) for r in rows], align='rl' + 'r' * 7)
      report.add_table(table, rows, key='table')
      report.write()  # After each run: an interrupted run keeps what it finished.


def main(argv: list[str] | None = None) -> None:
  config, out, command = _report.parse_args(argv, __doc__.split('\n')[0], _MODULE)
  run(config, out, command)


if __name__ == '__main__':
  main()
