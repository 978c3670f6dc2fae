"""Markdown tables of the paper's reports: Table 1, the targeted cases, defences, sweeps, and
ddn_jax against adv-lib."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ddn_jax import evaluation

# Per-attack columns every sweep row has (`SweepResult.rows`); with the optional ones and the
# labels, the other columns are its hyperparameters.
_SWEEP_METRICS = ('success_rate', 'mean_l2', 'median_l2', 'mean_grads')
# Per-attack columns that rows written before them lack.
_SWEEP_OPTIONAL_METRICS = ('mean_forwards', 'num_nonfinite')
# Columns of a row that name it rather than a hyperparameter.
_SWEEP_LABELS = ('sweep', 'attack')
_SUMMARY_FIELDS = tuple(f.name for f in dataclasses.fields(evaluation.AttackSummary))
# The columns of a summary in every table (`_summary_cells`).
_SUMMARY_HEADER = ['Success (%)', 'Mean L2', 'Median L2', '#Grads', 'Run-time (s)']


def format_cell(value: Any, spec: str = '.4f') -> str:
  """``format(value, spec)``, or ``–`` for None or NaN (an undefined mean, an unmeasured time)."""
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return '–'
  return format(value, spec)


def markdown_table(
  header: Sequence[str], rows: Sequence[Sequence[Any]], *, align: str | None = None
) -> str:
  """A markdown table of ``header`` and ``rows`` of cells (each written as ``str(cell)``).

  Args:
    header: the column names.
    rows: one sequence of cells per row, as many as ``header`` has.
    align: one letter per column, ``l`` (left) or ``r`` (right); default the first column on
      the left, the others (numbers) on the right.

  Returns:
    The table, one line per row, ending in a newline.

  Raises:
    ValueError: a row or ``align`` does not match the header's length, or ``align`` holds
      another letter.
  """
  header = list(header)
  align = align if align is not None else 'l' + 'r' * (len(header) - 1)
  if len(align) != len(header) or set(align) - {'l', 'r'}:
    raise ValueError(
      f'align must be one of l or r per column ({len(header)} columns), got {align!r}.'
    )
  lines = [_line(header), '|' + ''.join('---|' if a == 'l' else '---:|' for a in align)]
  for i, row in enumerate(rows):
    row = list(row)
    if len(row) != len(header):
      raise ValueError(
        f'Row {i} has {len(row)} cells but the header has {len(header)} columns ({header}): {row}.'
      )
    lines.append(_line(row))
  return '\n'.join(lines) + '\n'


def _line(cells: Sequence[Any]) -> str:
  return '| ' + ' | '.join(str(c).replace('|', '\\|') for c in cells) + ' |'


def _summary(row: Any) -> evaluation.AttackSummary:
  summary = row.summary if isinstance(row, evaluation.AttackEvaluation) else row
  if not isinstance(summary, evaluation.AttackSummary):
    raise TypeError(f'Rows must be AttackSummary or AttackEvaluation, got {type(row).__name__}.')
  return summary


def _summary_cells(s: evaluation.AttackSummary) -> list[str]:
  """Success (%), mean L2, median L2, #Grads, run-time (s) of a summary."""
  return [
    f'{100 * s.success_rate:.1f}',
    format_cell(s.mean_l2),
    format_cell(s.median_l2),
    f'{s.mean_grads:.0f}',
    format_cell(s.seconds, '.1f'),
  ]


def attack_table(rows: Sequence[evaluation.AttackSummary | evaluation.AttackEvaluation]) -> str:
  """Table 1 of the paper: Attack, Success (%), Mean L2, Median L2, #Grads, Run-time (s).

  An undefined mean L2 (no success) or an unmeasured run-time is shown as ``–``. Give the
  "All" row as a row of its own (`ddn_jax.evaluation.combine_best`). If any row has examples
  where the model's logits at the clean image are not finite (never counted as successes), a
  last column, Non-finite, counts them.

  Args:
    rows: summaries, or evaluations (their ``summary`` is used).

  References:
    Rony et al., 2019, Table 1.
  """
  summaries = [_summary(row) for row in rows]
  nonfinite = any(s.num_nonfinite for s in summaries)
  return markdown_table(
    ['Attack', *_SUMMARY_HEADER, *(['Non-finite'] if nonfinite else [])],
    [[s.attack, *_summary_cells(s), *([s.num_nonfinite] if nonfinite else [])] for s in summaries],
  )


def _targeted_cases(results: Sequence[evaluation.TargetedEvaluation]):
  for result in results:
    if not isinstance(result, evaluation.TargetedEvaluation):
      raise TypeError(f'Results must be TargetedEvaluation, got {type(result).__name__}.')
    yield 'average', result.pairs.summary
    yield 'least likely', result.least_likely.summary


def targeted_rows(results: Sequence[evaluation.TargetedEvaluation]) -> list[dict[str, Any]]:
  """Two rows per targeted attack, its average and least-likely cases, for JSON and CSV.

  Each row is ``{'attack': name, 'case': 'average' | 'least likely'}`` followed by the other
  fields of that case's `AttackSummary` (``num_examples`` counts pairs in the average case,
  images in the least-likely case).
  """
  return [
    {'attack': s.attack, 'case': case, **dataclasses.asdict(s)}
    for case, s in _targeted_cases(results)
  ]


def targeted_table(results: Sequence[evaluation.TargetedEvaluation]) -> str:
  """Tables 2-4 of the paper: per attack its average and least-likely rows.

  Columns: Attack, Case, then those of `attack_table`. The average case is over all (image,
  target) pairs; the least-likely case takes per image its worst target (failed if any target
  failed, else the largest norm), see `ddn_jax.evaluation.TargetedEvaluation`.

  References:
    Rony et al., 2019, Tables 2-4.
  """
  return markdown_table(
    ['Attack', 'Case', *_SUMMARY_HEADER],
    [[s.attack, case, *_summary_cells(s)] for case, s in _targeted_cases(results)],
    align='ll' + 'r' * len(_SUMMARY_HEADER),
  )


def _accuracy_column(epsilon: float) -> str:
  return f'accuracy_at_{epsilon:g}'


def defence_rows(
  evaluations: Mapping[str, Sequence[evaluation.AttackEvaluation]], *, epsilon: float
) -> list[dict[str, Any]]:
  """One row per model and attack, for JSON and CSV: Tables 5-6 of the paper.

  Args:
    evaluations: ``{model: its attacks' evaluations}``; add the "All" row of each model
      (`ddn_jax.evaluation.combine_best`) to its list to have it in the table.
    epsilon: the L2 budget of the robust-accuracy column.

  Returns:
    Rows ``{'defence': model}`` followed by the fields of the attack's `AttackSummary` and
    ``accuracy_at_<ε>``: the fraction of images classified correctly with no adversarial
    example of that attack within ε (`ddn_jax.evaluation.robust_accuracy`).
  """
  rows = []
  for model, attacks in evaluations.items():
    for e in attacks:
      if not isinstance(e, evaluation.AttackEvaluation):
        raise TypeError(f'{model}: evaluations must be AttackEvaluation, got {type(e).__name__}.')
      accuracy = evaluation.robust_accuracy(e.norms, [epsilon])[float(epsilon)]
      rows.append(
        {'defence': model, **dataclasses.asdict(e.summary), _accuracy_column(epsilon): accuracy}
      )
  return rows


def defence_table(
  evaluations: Mapping[str, Sequence[evaluation.AttackEvaluation]],
  *,
  epsilon: float,
  clean_accuracy: Mapping[str, float] | None = None,
) -> str:
  """Tables 5-6 of the paper: each model under each attack, with its robust accuracy at ε.

  Columns: Defence, Clean acc. (%) (if ``clean_accuracy`` is given), Attack, the columns of
  `attack_table`, and Acc. at ε (%) before #Grads.

  Args:
    evaluations: as for `defence_rows` (the "All" rows included there).
    epsilon: the L2 budget of the robust-accuracy column.
    clean_accuracy: ``{model: accuracy on the clean images}``.

  References:
    Rony et al., 2019, Tables 5 and 6.
  """
  column = _accuracy_column(epsilon)
  header = ['Defence', 'Attack', 'Success (%)', 'Mean L2', 'Median L2']
  header += [f'Acc. at ε ≤ {epsilon:g} (%)', '#Grads', 'Run-time (s)']
  lines = []
  for row in defence_rows(evaluations, epsilon=epsilon):
    s = evaluation.AttackSummary(**{k: row[k] for k in _SUMMARY_FIELDS})
    success, mean, median, grads, seconds = _summary_cells(s)
    accuracy = f'{100 * row[column]:.1f}'
    lines.append([row['defence'], s.attack, success, mean, median, accuracy, grads, seconds])
  align = 'llrrrrrr'
  if clean_accuracy is not None:
    missing = [m for m in evaluations if m not in clean_accuracy]
    if missing:
      raise ValueError(f'clean_accuracy has no entry for {missing}.')
    header.insert(1, 'Clean acc. (%)')
    lines = [[r[0], f'{100 * clean_accuracy[r[0]]:.1f}', *r[1:]] for r in lines]
    align = 'lrlrrrrrr'
  return markdown_table(header, lines, align=align)


def robustness_rows(curves: Mapping[str, evaluation.RobustnessCurve]) -> list[dict[str, Any]]:
  """One row per attack (or model) and ε, for CSV: ``{'attack', 'epsilon', 'robust_accuracy'}``.

  Args:
    curves: ``{name: its robustness_curve}``, e.g. one per row of `attack_table`.
  """
  rows = []
  for name, curve in curves.items():
    if not isinstance(curve, evaluation.RobustnessCurve):
      raise TypeError(f'{name}: curves must be RobustnessCurve, got {type(curve).__name__}.')
    rows += [
      {'attack': name, 'epsilon': e, 'robust_accuracy': a}
      for e, a in zip(curve.epsilons.tolist(), curve.accuracy.tolist())
    ]
  return rows


def _hyperparameter_cell(value: Any) -> str:
  return format(value, 'g') if isinstance(value, float) else str(value)


def sweep_table(rows: evaluation.SweepResult | Sequence[Mapping[str, Any]]) -> str:
  """A hyperparameter sweep: one row per grid point, its hyperparameters then its summary.

  Args:
    rows: a `ddn_jax.evaluation.SweepResult`, or its ``rows()`` (e.g. read back from JSON).
      Every column other than ``success_rate``, ``mean_l2``, ``median_l2``, ``mean_grads``,
      ``mean_forwards`` (not shown), ``num_nonfinite`` (a last column when not all zero) and the
      labels ``sweep`` and ``attack`` is a hyperparameter.

  Raises:
    ValueError: no rows, or a row without one of the four summary columns.
  """
  if isinstance(rows, evaluation.SweepResult):
    rows = rows.rows()
  if not rows:
    raise ValueError('No sweep rows to tabulate.')
  for i, row in enumerate(rows):
    missing = [k for k in _SWEEP_METRICS if k not in row]
    if missing:
      raise ValueError(f'Sweep row {i} has no {missing}; it has {sorted(row)}.')
  names = [
    k
    for k in dict.fromkeys(k for row in rows for k in row)
    if k not in (*_SWEEP_METRICS, *_SWEEP_OPTIONAL_METRICS, *_SWEEP_LABELS)
  ]
  nonfinite = any(row.get('num_nonfinite') for row in rows)
  header = [*names, 'Success (%)', 'Mean L2', 'Median L2', '#Grads']
  header += ['Non-finite'] if nonfinite else []
  lines = [
    [
      *(_hyperparameter_cell(row.get(n, '')) for n in names),
      f'{100 * row["success_rate"]:.1f}',
      format_cell(row['mean_l2']),
      format_cell(row['median_l2']),
      f'{row["mean_grads"]:.1f}',
      *([row.get('num_nonfinite', 0)] if nonfinite else []),
    ]
    for row in rows
  ]
  return markdown_table(header, lines, align='r' * len(header))


def _pair(values: Mapping[str, Any], spec: str) -> str:
  return f'{format_cell(values["ddn_jax"], spec)} / {format_cell(values["adv_lib"], spec)}'


def comparison_table(result: Mapping[str, Any]) -> str:
  """The body of a ddn_jax vs adv-lib report, from `ddn_jax.interop.compare`'s result.

  The clean accuracy of both sides, a table of the agreement per attack (success rates and
  their agreement, median and mean L2 with their relative difference, times, gradients), the
  quantiles of the per-example L2 ratio, the arguments of both sides and the load averages
  around each attack. An attack ddn_jax does not have is a ``skipped`` row.
  """
  acc = result['clean_accuracy']
  lines = [
    (
      f'Clean accuracy: ddn_jax {acc["ddn_jax"]:.4f}, PyTorch {acc["adv_lib"]:.4f}; '
      f'max |logits difference| {result["logits_max_abs_diff"]:.2e}.'
    ),
    '',
  ]
  rows, ratios, quantiles = [], [], []
  for name, entry in result['attacks'].items():
    if 'skipped' in entry:
      rows.append([name, f'skipped: {entry["skipped"]}', '', '', '', '', ''])
      continue
    s = entry['stats']
    compile_seconds = s['ddn_jax_compile_seconds']  # None: timed with the compilation
    compile_text = 'incl.' if compile_seconds is None else f'{compile_seconds:.1f}'
    rows.append(
      [
        name,
        _pair(s['success_rate'], '.3f'),
        f'{s["success_agreement"]:.3f}',
        f'{_pair(s["median_l2"], ".4f")} ({format_cell(s["median_l2_rel_diff"], "+.2%")})',
        f'{_pair(s["mean_l2"], ".4f")} ({format_cell(s["mean_l2_rel_diff"], "+.2%")})',
        f'{s["seconds"]["ddn_jax"]:.1f} ({compile_text}) / {s["seconds"]["adv_lib"]:.1f}',
        _pair(s['grads_per_example'], '.1f'),
      ]
    )
    if s['l2_ratio_quantiles']:
      quantiles = list(s['l2_ratio_quantiles'])  # the same for every attack
      ratios.append(
        [name, s['l2_ratio_n'], *(f'{v:.3f}' for v in s['l2_ratio_quantiles'].values())]
      )
  lines += [
    markdown_table(
      [
        'Attack',
        'Success ddn_jax / adv-lib',
        'Success agreement',
        'Median L2 ddn_jax / adv-lib (rel. diff)',
        'Mean L2 ddn_jax / adv-lib (rel. diff)',
        'Time (s) ddn_jax (compile) / adv-lib',
        'Grads/example ddn_jax / adv-lib',
      ],
      rows,
    ),
    'Per-example L2 ratio ddn_jax / adv-lib (examples both broke at nonzero norm), quantiles:',
    '',
    markdown_table(
      ['Attack', 'n', *(f'q{float(q):g}' for q in quantiles)],
      ratios,
    ),
    (
      'Arguments: ddn_jax (with the options that reproduce adv-lib: DDN '
      "`alpha_schedule='adv_lib'`, C&W `abort_early='batch'`, DeepFool `candidates` = all "
      'classes) / adv-lib:'
    ),
    '',
    *[
      f'- {name}: `{entry["hparams"]}` / `{entry.get("adv_lib_kwargs", "–")}`'
      for name, entry in result['attacks'].items()
    ],
  ]
  loads = [
    f'{name} {entry["load_average"]["before"][0]:.1f}→{entry["load_average"]["after"][0]:.1f}'
    for name, entry in result['attacks'].items()
    if 'load_average' in entry
  ]
  if loads:
    lines += [
      '',
      '1-minute load average before→after each attack (wall times are only comparable on a '
      'quiet machine): ' + ', '.join(loads) + '.',
    ]
  return '\n'.join(lines) + '\n'
