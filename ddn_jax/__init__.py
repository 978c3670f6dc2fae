"""ddn_jax: JAX-native minimum-norm L2 adversarial attacks and adversarial training."""

from ddn_jax import attacks
from ddn_jax.attacks import (
  AttackResult,
  alma_l2,
  apgd_l2,
  apgd_targeted_l2,
  carlini_wagner_l2,
  ddn,
  deepfool,
  fab_l2,
  fab_targeted_l2,
  fgm_l2,
  fmn_l2,
  pgd_l2,
  project_l2_ball,
  square_l2,
)

__version__ = '0.1.0'

__all__ = [
  'AttackResult',
  'alma_l2',
  'apgd_l2',
  'apgd_targeted_l2',
  'attacks',
  'carlini_wagner_l2',
  'ddn',
  'deepfool',
  'fab_l2',
  'fab_targeted_l2',
  'fgm_l2',
  'fmn_l2',
  'pgd_l2',
  'project_l2_ball',
  'square_l2',
]
