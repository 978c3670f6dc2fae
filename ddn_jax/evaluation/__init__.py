"""Evaluating attacks and defences as in the paper's tables: batched, sharded runs, summaries,
the "All" row, robust accuracy over ε, the targeted protocol, JSON/CSV/markdown writers, and
the machine description reports carry."""

from ddn_jax.evaluation._evaluate import (
  AttackEvaluation,
  combine_best,
  evaluate_attack,
  minimal_norms,
)
from ddn_jax.evaluation._io import read_json, to_dict, to_markdown, write_csv, write_json
from ddn_jax.evaluation._machine import describe_machine, machine_info
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
  'describe_machine',
  'evaluate_attack',
  'evaluate_targeted',
  'machine_info',
  'minimal_norms',
  'read_json',
  'robust_accuracy',
  'robustness_curve',
  'summarize',
  'sweep',
  'target_classes',
  'to_dict',
  'to_markdown',
  'worst_case_l2',
  'write_csv',
  'write_json',
]
