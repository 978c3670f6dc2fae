"""C&W's early-abort rules at the same budget, against adv-lib 0.2.8 on the same weights.

The paper's short budgets with the learning rate and constant its grid search picked for MNIST
(1×100: lr 0.1, C 1; 4×25: lr 0.5, C 1) on 500 held-out real digits (the SmallCNN of
`ddn_jax.reference`), on the linear model (exact minimal norms) and on a CifarCNN trained for
one epoch on the 4000 training digits padded to 32×32×3 (100 held-out ones, at 1×100 with C 10;
no adv-lib run, for CPU time); and a long budget, where the abort saves work: the library's
defaults (9×10000, lr 0.01, C 0.001) on the linear model.

  python -m experiments.cw_abort_rule --config experiments/configs/cw_abort_rule.py
"""

_SHORT = [
  {'binary_search_steps': 1, 'steps': 100, 'learning_rate': 0.1, 'initial_const': 1.0},
  {'binary_search_steps': 4, 'steps': 25, 'learning_rate': 0.5, 'initial_const': 1.0},
]
_DEFAULTS = {
  'binary_search_steps': 9,
  'steps': 10000,
  'learning_rate': 0.01,
  'initial_const': 0.001,
}


def get_config() -> dict:
  return {
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'rules': ['example', 'batch', False],
    'mnist_images': 500,
    'mnist_epochs': 3,
    'linear_examples': 100,
    'cifar_images': 100,
    'cifar_epochs': 1,
    'experiments': [
      *({'model': 'mnist', 'budget': b, 'adv_lib': True} for b in _SHORT),
      *({'model': 'linear', 'budget': b, 'adv_lib': True} for b in _SHORT),
      # C 1 breaks only 11% of these at 1×100: C 10 (C&W 4×25 raises C itself).
      {'model': 'cifar', 'budget': {**_SHORT[0], 'initial_const': 10.0}, 'adv_lib': False},
      {'model': 'cifar', 'budget': _SHORT[1], 'adv_lib': False},
      {'model': 'linear', 'budget': _DEFAULTS, 'adv_lib': True},
    ],
  }
