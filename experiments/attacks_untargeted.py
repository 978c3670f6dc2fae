"""Table 1 of the paper: untargeted minimum-norm attacks (C&W, DeepFool, DDN) on one model.

The config names the model (an `experiments/adversarial_training.py` training config and its
defence, or Inception V3), the attacked images and the attack rows. C&W rows with a ``grid`` are
first grid-searched (one vmapped `ddn_jax.evaluation.sweep` per row) on the first
``grid_images`` images over learning rate × initial constant, keeping the best median L2, as the
paper does for its short budgets. Writes, under ``--out`` (default ``experiments/results``):

* ``table1_<name>.md`` — the table with the command, machine and date;
* ``table1_<name>.json`` / ``.csv`` — the rows, the grid searches and per-example norms (null
  where the attack failed);
* ``table1_<name>_robustness.png`` — accuracy under each attack vs ε (the paper's supplement).

Each row's finished batches (and grid search) are kept under ``--workdir`` (default
``runs/experiments``)``/table1_<name>``: rerun the same command after an interruption and it
continues where it stopped; a changed row, model or image set is refused, not mixed in.

  python -m experiments.attacks_untargeted --config experiments/configs/table1_local.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddn_jax import evaluation, plotting, reports
from experiments import _common, _report

_MODULE = 'experiments.attacks_untargeted'


def run(config: dict[str, Any], out, command: str, workdir=None) -> dict[str, Any]:
  stem = f'table1_{config["name"]}'
  report = reports.Report(out / stem, title=f'Table 1: {config["title"]}', command=command)
  logits_fn = _common.load_models(config['model'], [config['model'].get('defence', 'baseline')])
  logits_fn = next(iter(logits_fn.values()))
  images, labels = _common.evaluation_images(config['images'], logits_fn)
  clean = float(np.mean(np.asarray(logits_fn(images)).argmax(-1) == labels))
  report.add_text(config['notes'])
  report.add_text(
    f'{len(images)} images, clean accuracy {clean:.1%}. Success in %, L2 in [0, 1] pixel units; '
    'the median counts a failure as the distance to a uniform grey image; #Grads: mean gradient '
    'evaluations per image; run-time: total wall time in seconds, compilation included.'
  )
  report.data.update(config=config, num_images=len(images), clean_accuracy=clean)
  epsilons = np.linspace(0, config['max_epsilon'], 101)

  def write(evaluations, searches):
    """The report of the rows run so far: a stopped run keeps the rows it finished."""
    pending = len(config['attacks']) - len(evaluations)
    report.add_text(f'{pending} more rows to run.' if pending else '', key='pending')
    report.add_text(_common.resumed_text(evaluations), key='resumed')
    report.add_table(
      reports.attack_table(evaluations), [e.summary for e in evaluations], key='table'
    )
    report.add_text('\n'.join(_common.grid_search_lines(searches)), key='searches')
    curves = {e.name: evaluation.robustness_curve(e.norms, epsilons) for e in evaluations}
    figure = plotting.robust_accuracy(
      {name: (c.epsilons, c.accuracy) for name, c in curves.items()}, title=config['title']
    )
    report.add_figure(
      figure, f'{stem}_robustness.png', caption='Accuracy under each attack vs ε', key='figure'
    )
    report.data.update(
      rows=[e.summary for e in evaluations],
      grid_searches=searches,
      per_example_l2={e.name: e.norms for e in evaluations},
    )
    return report.write()

  evaluations, searches = _common.run_rows(
    config,
    logits_fn,
    images,
    labels,
    workdir=None if workdir is None else workdir / stem,
    on_row=write,
  )
  print(write(evaluations, searches))
  return report.data


def main(argv: list[str] | None = None) -> None:
  run(*_report.parse_args_resumable(argv, __doc__.split('\n')[0], _MODULE))


if __name__ == '__main__':
  main()
