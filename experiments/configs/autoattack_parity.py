"""AutoAttack (L2, standard) against torchattacks 3.5.1's ``AutoAttack`` on the same weights.

The first 100 held-out real digits of the reference MNIST SmallCNN (`ddn_jax.reference`), robust
accuracy at each ε. torchattacks' ``AutoAttack(norm='L2', version='standard')`` runs APGD-CE,
APGD-T, FAB-T (9 target classes each) and Square (5000 queries) with torchattacks' default
budget of 10 iterations for the first three; ddn_jax's `evaluation.autoattack_l2` runs with the
same components and budgets ("torchattacks' budget") and with AutoAttack's own 100 iterations
("standard"). Random starts differ between the two libraries (their own generators).

  python -m experiments.autoattack_parity --config experiments/configs/autoattack_parity.py
"""


def get_config() -> dict:
  return {
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'mnist_images': 100,
    'mnist_epochs': 3,
    'epsilons': [1.0, 1.5],
    # torchattacks' AutoAttack(version='standard') components with its default budgets.
    'torchattacks_budget': [
      ('APGD-CE', 'apgd', {'loss': 'ce', 'steps': 10, 'restarts': 1}),
      ('APGD-T', 'apgd-t', {'steps': 10, 'num_targets': 9}),
      ('FAB-T', 'fab-t', {'steps': 10, 'num_targets': 9}),
      ('Square', 'square', {'queries': 5000, 'p_init': 0.8}),
    ],
  }
