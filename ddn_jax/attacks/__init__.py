"""Minimum-norm and bounded L2 adversarial attacks, each one jit-compiled, vmapped program.

All attacks share one signature, ``attack(logits_fn, inputs, labels, *, targeted=False, ...)``,
and return an :class:`AttackResult`. The checks and the compacting loop they are built from are
public too, for the evaluation code and for new attacks.
"""

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
from ddn_jax.attacks._fgm import fgm_l2
from ddn_jax.attacks._fmn import fmn_l2
from ddn_jax.attacks._mapping import compacting_while_loop
from ddn_jax.attacks._numerics import LogitsFn
from ddn_jax.attacks._pgd import pgd_l2
from ddn_jax.attacks._projection import project_l2_ball
from ddn_jax.attacks._result import AttackResult

__all__ = [
  'AttackResult',
  'LogitsFn',
  'as_pytree_fn',
  'carlini_wagner_l2',
  'check_count',
  'check_hyperparameter',
  'compacting_while_loop',
  'ddn',
  'deepfool',
  'default_key',
  'fgm_l2',
  'fmn_l2',
  'pgd_l2',
  'project_l2_ball',
  'validate_inputs',
]
