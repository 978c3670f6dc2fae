"""Minimum-norm and bounded L2 adversarial attacks, each one jit-compiled, vmapped program.

All attacks share one signature, ``attack(logits_fn, inputs, labels, *, targeted=False, ...)``,
and return an :class:`AttackResult`. `ATTACKS` is the table of them all (defaults, labels,
adv-lib counterparts), and `parse_attack` reads the ``NAME:KEY=VALUE,...`` specs of the command
line and the experiments. The checks, the compacting loop and the convolution rewrite the attacks
are built from are public too, for the evaluation code, the benchmark and new attacks.
"""

from ddn_jax.attacks._alma import alma_l2
from ddn_jax.attacks._apgd import apgd_l2, apgd_targeted_l2
from ddn_jax.attacks._canonical_conv import canonicalize_convolutions
from ddn_jax.attacks._carlini_wagner import carlini_wagner_l2
from ddn_jax.attacks._checks import (
  as_pytree_fn,
  check_count,
  check_hyperparameter,
  default_key,
  validate_inputs,
)
from ddn_jax.attacks._ddn import ddn
from ddn_jax.attacks._deepfool import deepfool
from ddn_jax.attacks._fab import fab_l2, fab_targeted_l2, project_hyperplane_box
from ddn_jax.attacks._fgm import fgm_l2
from ddn_jax.attacks._fmn import fmn_l2
from ddn_jax.attacks._mapping import compacting_while_loop
from ddn_jax.attacks._numerics import LogitsFn, is_adversarial, predicted_class
from ddn_jax.attacks._pgd import pgd_l2
from ddn_jax.attacks._projection import project_l2_ball
from ddn_jax.attacks._registry import (
  ATTACKS,
  Attack,
  AttackEntry,
  attack_help,
  attack_label,
  get_attack,
  make_attack,
  parse_attack,
  parse_value,
  within_query_budget,
)
from ddn_jax.attacks._result import AttackResult
from ddn_jax.attacks._square import square_l2

__all__ = [
  'ATTACKS',
  'Attack',
  'AttackEntry',
  'AttackResult',
  'LogitsFn',
  'alma_l2',
  'apgd_l2',
  'apgd_targeted_l2',
  'as_pytree_fn',
  'attack_help',
  'attack_label',
  'canonicalize_convolutions',
  'carlini_wagner_l2',
  'check_count',
  'check_hyperparameter',
  'compacting_while_loop',
  'ddn',
  'deepfool',
  'default_key',
  'fab_l2',
  'fab_targeted_l2',
  'fgm_l2',
  'fmn_l2',
  'get_attack',
  'is_adversarial',
  'make_attack',
  'parse_attack',
  'parse_value',
  'pgd_l2',
  'predicted_class',
  'project_hyperplane_box',
  'project_l2_ball',
  'square_l2',
  'validate_inputs',
  'within_query_budget',
]
