"""Attacks run into a report: the evaluation, targeted, sweep and comparison commands' work."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks, data, evaluation, plotting, reports
from ddn_jax.workflows._inputs import batch_mesh


def attack_report(
  report: reports.Report,
  attack_list: Sequence[attacks.Attack],
  logits_fn: Any,
  images: np.ndarray,
  labels: np.ndarray,
  *,
  batch_size: int,
  seed: int = 0,
  keep_adv: bool = True,
  epsilons: Sequence[float] | None = None,
  examples: int = 8,
  resume_dir: str | pathlib.Path | None = None,
) -> list[evaluation.AttackEvaluation]:
  """Evaluates each attack in turn into ``report`` (Table-1 rows, All row, robust accuracy).

  The report is rewritten after each attack, so that a later failure loses none; the figure of
  ``examples`` adversarial examples is added at the end (with ``keep_adv``).

  Args:
    report: the report to add to and write.
    attack_list: registry attacks (`attacks.parse_attack`).
    logits_fn: the model.
    images: ``(N, H, W, C)`` images (uint8 or float in [0, 1]).
    labels: ``(N,)`` labels.
    batch_size: images per compiled call; a multiple of the number of devices.
    seed: the attacks' key.
    keep_adv: keep the adversarial images (`evaluation.evaluate_attack`).
    epsilons: L2 budgets of the robust-accuracy curve (default `reports.add_attack_results`').
    examples: images in the examples figure (0: none).
    resume_dir: where each attack keeps its finished batches (a folder per attack label,
      `evaluation.evaluate_attack`'s ``resume_dir``): a rerun resumes them, a rerun with other
      arguments is refused.

  Returns:
    The attacks' `evaluation.AttackEvaluation`s.
  """
  mesh = batch_mesh(batch_size)
  predictions = evaluation.predict(logits_fn, images, batch_size=batch_size)
  report.data['clean_accuracy'] = float(np.mean(predictions == labels))
  report.add_text(f'Clean accuracy {report.data["clean_accuracy"]:.2%} on {len(images)} images.')
  evaluations = []
  for attack in attack_list:
    evaluations.append(
      evaluation.evaluate_attack(
        attack.function,
        logits_fn,
        images,
        labels,
        name=attack.label,
        batch_size=min(batch_size, len(images)) if mesh is None else batch_size,
        mesh=mesh,
        key=jax.random.key(seed),
        keep_adv=keep_adv,
        progress=True,
        resume_dir=None
        if resume_dir is None
        else pathlib.Path(resume_dir) / evaluation.folder_name(attack.label),
      )
    )
    reports.add_attack_results(report, evaluations, epsilons=epsilons)
    report.write()
  if keep_adv and examples > 0:
    adversarials = {e.name: e.adv for e in evaluations}
    reports.add_examples_figure(
      report, logits_fn, images, labels, adversarials, max_images=examples
    )
  report.write()
  return evaluations


def autoattack_report(
  report: reports.Report,
  logits_fn: Any,
  images: np.ndarray,
  labels: np.ndarray,
  *,
  eps: float,
  batch_size: int,
  seed: int = 0,
  resume_dir: str | pathlib.Path | None = None,
) -> evaluation.AutoAttackEvaluation:
  """AutoAttack's standard L2 evaluation at ``eps`` into ``report`` (`evaluation.autoattack_l2`).

  The report holds AutoAttack's lines (clean accuracy, robust accuracy after each component),
  a table of the components (examples attacked and broken, time, unverified claims and box
  violations, both zero for correct attacks) and, in the JSON, each example's outcome.

  Args:
    report: the report to add to and write.
    logits_fn: the model.
    images: ``(N, H, W, C)`` images.
    labels: ``(N,)`` labels.
    eps: the L2 radius.
    batch_size: images per compiled call; a multiple of the number of devices.
    seed: the attacks' key.
    resume_dir: where each component keeps its finished batches.

  Returns:
    The `evaluation.AutoAttackEvaluation`.
  """
  result = evaluation.autoattack_l2(
    logits_fn,
    images,
    labels,
    eps=eps,
    batch_size=batch_size,
    mesh=batch_mesh(batch_size),
    key=jax.random.key(seed),
    progress=True,
    resume_dir=resume_dir,
  )
  report.add_text('\n'.join(f'- {line}' for line in result.lines()))
  rows = [
    {
      'component': c.name,
      'attacked': c.num_attacked,
      'broken': c.num_broken,
      'robust_accuracy': c.robust_accuracy,
      'seconds': c.seconds,
      'unverified': c.num_unverified,
      'box_violations': c.num_box_violations,
    }
    for c in result.components
  ]
  table = reports.markdown_table(
    ['Component', 'Attacked', 'Broken', 'Robust acc. after', 'Time (s)', 'Unverified', 'Box'],
    [
      [r['component'], r['attacked'], r['broken'], f'{r["robust_accuracy"]:.2%}',
       f'{r["seconds"]:.1f}', r['unverified'], r['box_violations']]
      for r in rows
    ],
  )  # fmt: skip
  report.add_table(table, rows)
  report.data['autoattack'] = {
    'eps': result.eps,
    'version': result.version,
    'clean_accuracy': result.clean_accuracy,
    'robust_accuracy': result.robust_accuracy,
    'components': [dataclasses.asdict(c) for c in result.components],
    'seconds': result.seconds,
    'per_example': {
      'clean': result.clean,
      'robust': result.robust,
      'broken_by': result.broken_by,
      'l2': result.l2,
    },
  }
  report.write()
  return result


def targeted_report(
  report: reports.Report,
  attack_list: Sequence[attacks.Attack],
  logits_fn: Any,
  images: np.ndarray,
  labels: np.ndarray,
  *,
  batch_size: int,
  num_targets: int | None = None,
  seed: int = 0,
  resume_dir: str | pathlib.Path | None = None,
) -> list[evaluation.TargetedEvaluation]:
  """The paper's targeted protocol into ``report``: average and least-likely rows per attack.

  Args:
    report: the report to add to and write (after each attack).
    attack_list: registry attacks.
    logits_fn: the model.
    images: ``(N, H, W, C)`` images.
    labels: ``(N,)`` labels.
    batch_size: images per compiled call; a multiple of the number of devices.
    num_targets: random targets per image (None: every other class).
    seed: the targets' seed and the attacks' key.
    resume_dir: where each attack keeps its finished batches of pairs (a folder per attack
      label), to resume after an interruption.

  Returns:
    The `evaluation.TargetedEvaluation`s.
  """
  mesh = batch_mesh(batch_size)
  results = []
  for attack in attack_list:
    results.append(
      evaluation.evaluate_targeted(
        attack.function,
        logits_fn,
        images,
        labels,
        name=attack.label,
        num_targets=num_targets,
        seed=seed,
        batch_size=batch_size,
        mesh=mesh,
        key=jax.random.key(seed),
        progress=True,
        resume_dir=None
        if resume_dir is None
        else pathlib.Path(resume_dir) / evaluation.folder_name(attack.label),
      )
    )
    report.add_table(reports.targeted_table(results), reports.targeted_rows(results), key='table')
    report.data['targeted'] = reports.targeted_rows(results)
    report.write()
  return results


def sweep_report(
  report: reports.Report,
  attack: attacks.Attack,
  logits_fn: Any,
  images: np.ndarray,
  labels: np.ndarray,
  *,
  grid: Mapping[str, Sequence[Any]],
  static: Mapping[str, Sequence[Any]] | None = None,
  batch_size: int,
  seed: int = 0,
  resume_dir: str | pathlib.Path | None = None,
) -> evaluation.SweepResult:
  """`evaluation.sweep` of ``attack`` into ``report``: the table and a median-L2 figure.

  Args:
    report: the report to add to and write.
    attack: a registry attack, its settings the sweep's fixed ones.
    logits_fn: the model.
    images: ``(N, H, W, C)`` images.
    labels: ``(N,)`` labels.
    grid: float hyperparameters, their product vmapped in one program.
    static: static hyperparameters, one program per combination.
    batch_size: images per compiled call; a multiple of the number of devices.
    seed: the attack's key.
    resume_dir: where the sweep keeps its finished calls (`evaluation.sweep`'s
      ``resume_dir``): a rerun resumes them, a rerun with other arguments is refused.

  Returns:
    The `evaluation.SweepResult`.
  """
  static = dict(static or {})
  result = evaluation.sweep(
    attack.function,
    logits_fn,
    data.to_float_images(images),
    labels,
    grid=grid,
    static=static,
    mesh=batch_mesh(batch_size),
    batch_size=batch_size,
    key=jax.random.key(seed),
    resume_dir=resume_dir,
  )
  rows = result.rows()
  report.add_table(reports.sweep_table(rows), rows)
  x, hues = next(iter(grid)), [*list(grid)[1:], *static]
  figure = plotting.sweep(rows, x=x, y='median_l2', hue=hues or None, title=attack.label)
  report.add_figure(figure, f'{report.path.name}.png', caption='Median L2 over the grid')
  report.add_text(
    f'{result.num_calls} compiled call(s) of {result.batch_size} images per static combination, '
    'each running every grid point at once.'
  )
  report.data.update(
    attack=attack.spec,
    seconds=result.seconds,
    rows=rows,
    chunking={'batch_size': result.batch_size, 'num_calls': result.num_calls},
  )
  report.write()
  return result


def compare_report(
  report: reports.Report,
  attack_list: Sequence[attacks.Attack],
  model: Any,
  variables: Any,
  images: np.ndarray,
  labels: np.ndarray,
) -> dict[str, Any]:
  """`interop.compare` of each attack (ddn_jax vs adv-lib) into ``report``, written after each.

  Args:
    report: the report to add to and write.
    attack_list: registry attacks with an adv-lib counterpart (`attacks.parse_attack(...,
      adv_lib=True)`).
    model: a Flax module or an architecture name (`interop.compare`).
    variables: its variables.
    images: ``(N, H, W, C)`` images.
    labels: ``(N,)`` labels.

  Returns:
    The report's data: `interop.compare`'s result with every attack.
  """
  from ddn_jax import interop  # pylint: disable=g-import-not-at-top  (torch, when needed)

  interop.import_adv_lib()  # fails at once, in one line, where torch or adv-lib is missing
  images = data.to_float_images(images)
  for attack in attack_list:
    result = interop.compare(model, variables, images, labels, attacks=[attack])
    report.data.update(
      {**result, 'attacks': {**report.data.get('attacks', {}), **result['attacks']}}
    )
    report.add_table(reports.comparison_table(report.data), key='table')
    report.write()
  return report.data


def save_adversarials(
  path: str | pathlib.Path,
  result: evaluation.AttackEvaluation,
  logits_fn: Any,
  images: np.ndarray,
  labels: np.ndarray,
  *,
  batch_size: int,
) -> None:
  """Writes ``images, labels, adv, l2, success, predictions`` (the model's on ``adv``) to an
  ``.npz`` file."""
  np.savez_compressed(
    path,
    images=images,
    labels=labels,
    adv=result.adv,
    l2=result.l2,
    success=result.success,
    predictions=evaluation.predict(logits_fn, result.adv, batch_size=batch_size),
  )
