"""Evaluating attacks and defences as in the paper's tables: batched, sharded runs, summaries,
the "All" row, robust accuracy over ε, the targeted protocol and hyperparameter sweeps.

Writing the results (JSON, CSV, markdown tables, the machine description) is `ddn_jax.reports`.
"""

from ddn_jax.evaluation._autoattack import (
  AUTOATTACK_STANDARD_L2,
  AutoAttackComponent,
  AutoAttackEvaluation,
  autoattack_l2,
)
from ddn_jax.evaluation._checks import model_warnings
from ddn_jax.evaluation._evaluate import (
  AttackEvaluation,
  combine_best,
  evaluate_attack,
  folder_name,
  minimal_norms,
  model_digest,
)
from ddn_jax.evaluation._predict import predict
from ddn_jax.evaluation._robustness import (
  RobustnessCurve,
  optimality,
  robust_accuracy,
  robustness_curve,
)
from ddn_jax.evaluation._summary import AttackSummary, summarize, worst_case_l2
from ddn_jax.evaluation._sweep import (
  DEFAULT_MEMORY_BUDGET,
  SweepResult,
  estimate_call_bytes,
  sweep,
)
from ddn_jax.evaluation._targeted import TargetedEvaluation, evaluate_targeted, target_classes

__all__ = [
  'AUTOATTACK_STANDARD_L2',
  'DEFAULT_MEMORY_BUDGET',
  'AttackEvaluation',
  'AttackSummary',
  'AutoAttackComponent',
  'AutoAttackEvaluation',
  'RobustnessCurve',
  'SweepResult',
  'TargetedEvaluation',
  'autoattack_l2',
  'combine_best',
  'estimate_call_bytes',
  'evaluate_attack',
  'evaluate_targeted',
  'folder_name',
  'minimal_norms',
  'model_digest',
  'model_warnings',
  'optimality',
  'predict',
  'robust_accuracy',
  'robustness_curve',
  'summarize',
  'sweep',
  'target_classes',
  'worst_case_l2',
]
