"""Evaluating attacks and defences as in the paper's tables: batched, sharded runs, summaries,
the "All" row, robust accuracy over ε, the targeted protocol and hyperparameter sweeps.

Writing the results (JSON, CSV, markdown tables, the machine description) is `ddn_jax.reports`;
its `write_json`, `read_json`, `to_dict`, `write_csv`, `describe_machine`, `machine_info` and
`attack_table` (as ``to_markdown``) are also reachable here under their old names.
"""

from typing import Any

from ddn_jax.evaluation._evaluate import (
  AttackEvaluation,
  combine_best,
  evaluate_attack,
  minimal_norms,
)
from ddn_jax.evaluation._robustness import RobustnessCurve, robust_accuracy, robustness_curve
from ddn_jax.evaluation._summary import AttackSummary, summarize, worst_case_l2
from ddn_jax.evaluation._sweep import SweepResult, sweep
from ddn_jax.evaluation._targeted import TargetedEvaluation, evaluate_targeted, target_classes

__all__ = [
  'AttackEvaluation',
  'AttackSummary',
  'RobustnessCurve',
  'SweepResult',
  'TargetedEvaluation',
  'combine_best',
  'evaluate_attack',
  'evaluate_targeted',
  'minimal_norms',
  'robust_accuracy',
  'robustness_curve',
  'summarize',
  'sweep',
  'target_classes',
  'worst_case_l2',
]

# Moved to `ddn_jax.reports`, which builds on this package and so is imported only when one of
# them is used; the same objects, for callers of the old names.
_MOVED = {
  'describe_machine': 'describe_machine',
  'machine_info': 'machine_info',
  'read_json': 'read_json',
  'to_dict': 'to_dict',
  'to_markdown': 'attack_table',
  'write_csv': 'write_csv',
  'write_json': 'write_json',
}


def __getattr__(name: str) -> Any:
  if name in _MOVED:
    from ddn_jax import reports

    return getattr(reports, _MOVED[name])
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
