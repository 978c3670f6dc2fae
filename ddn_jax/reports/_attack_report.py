"""The standard report of attacks evaluated on one model: what the CLI and the experiments add."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ddn_jax import data, evaluation, plotting
from ddn_jax.reports._report import Report
from ddn_jax.reports._tables import attack_table, robustness_rows


def add_attack_results(
  report: Report,
  evaluations: Sequence[evaluation.AttackEvaluation],
  *,
  epsilons: Sequence[float] | None = None,
  figure_title: str | None = None,
) -> list[evaluation.AttackEvaluation]:
  """Adds (or replaces) the blocks of a Table-1 evaluation of one model.

  The Table-1 table with the "All" row when there are several attacks (`attack_table`, its rows
  in the report's CSV), the per-example results (``per_example.csv``), robust accuracy vs ε
  (``robust_accuracy.csv`` and ``robust_accuracy.png``), and in `Report.data` the summaries
  (``attacks``) and curves (``robust_accuracy``). Call it again after each attack, then
  `Report.write`: the blocks are replaced, not repeated.

  Args:
    report: the report to add to.
    evaluations: `evaluation.evaluate_attack` results on the same images.
    epsilons: the curve's ε values (default: 51 from 0 to the largest norm found).
    figure_title: the robust-accuracy figure's title.

  Returns:
    The rows of the table: ``evaluations``, then "All" if there are several.
  """
  rows = list(evaluations)
  if len(rows) > 1:
    rows.append(evaluation.combine_best(rows, name='All'))
  if epsilons is None:
    finite = np.concatenate([e.norms[np.isfinite(e.norms)] for e in rows] + [np.zeros(1)])
    epsilons = np.linspace(0.0, max(float(finite.max()), 1e-3), 51)
  curves = {e.name: evaluation.robustness_curve(e.norms, sorted(epsilons)) for e in rows}
  report.add_table(attack_table(rows), [e.summary for e in rows], key='table')
  report.add_rows(rows, csv='per_example.csv', key='per_example')
  report.add_rows(robustness_rows(curves), csv='robust_accuracy.csv', key='curves')
  figure = plotting.robust_accuracy(
    {name: (c.epsilons, c.accuracy) for name, c in curves.items()}, title=figure_title
  )
  report.add_figure(figure, 'robust_accuracy.png', caption='Robust accuracy vs ε')
  report.data.update(
    attacks=[e.summary for e in rows],
    robust_accuracy={
      name: {'epsilons': c.epsilons, 'accuracy': c.accuracy, 'area': c.area}
      for name, c in curves.items()
    },
  )
  return rows


def add_examples_figure(
  report: Report,
  logits_fn: Any,
  images: Any,
  labels: Any,
  adversarials: Mapping[str, Any],
  *,
  max_images: int = 8,
  batch_size: int = 256,
) -> None:
  """Adds ``adversarial_examples.png``: the first images and each attack's adversarials, titled
  with the model's predictions (`plotting.adversarial_examples`)."""
  k = min(max_images, len(images))
  clean = np.asarray(images[:k])
  advs = {name: np.asarray(adv[:k]) for name, adv in adversarials.items()}
  predictions = {
    name: evaluation.predict(logits_fn, x, batch_size=batch_size)
    for name, x in {'clean': clean, **advs}.items()
  }
  figure = plotting.adversarial_examples(
    data.to_float_images(clean), labels[:k], advs, predictions, max_images=k
  )
  report.add_figure(figure, 'adversarial_examples.png', caption='Adversarial examples')
