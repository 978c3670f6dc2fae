"""What the ``ddn-jax`` commands do, as functions: load a model and the images it was not
trained on, attack them into a report (Table 1, targeted, sweep, ddn_jax vs adv-lib), train a
model into a run directory, and the demo. The command line only parses arguments and calls
these; scripts and notebooks can call them too.
"""

from ddn_jax.workflows._demo import DEMO_ATTACKS, demo
from ddn_jax.workflows._evaluate import (
  attack_report,
  autoattack_report,
  compare_report,
  save_adversarials,
  sweep_report,
  targeted_report,
)
from ddn_jax.workflows._inputs import (
  ModelToAttack,
  batch_mesh,
  images_to_attack,
  load_model_to_attack,
)
from ddn_jax.workflows._train import train

__all__ = (
  'DEMO_ATTACKS',
  'ModelToAttack',
  'attack_report',
  'autoattack_report',
  'batch_mesh',
  'compare_report',
  'demo',
  'images_to_attack',
  'load_model_to_attack',
  'save_adversarials',
  'sweep_report',
  'targeted_report',
  'train',
)
