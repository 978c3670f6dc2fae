"""Figure 2 at CPU scale: best C&W constants on the Fashion-MNIST baseline and DDN models.

The baseline and DDN-trained SmallCNNs of ``adversarial_training_fashion_mnist.py`` (reloaded
from ``runs/adversarial_training/fashion_mnist_local``). Differences from the paper (MNIST,
C&W 9×10000 on 1000 test images): Fashion-MNIST models with a tiny training budget, C&W 9×200
(initial constant 0.01, learning rate 0.01) on the first 30 test images.

  python -m experiments.cw_constants --config experiments/configs/cw_constants_local.py
"""

from experiments.configs import _attacks


def get_config() -> dict:
  return {
    'name': 'local',
    'title': 'Fashion-MNIST SmallCNN (CPU scale)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': {'training_config': 'experiments/configs/adversarial_training_fashion_mnist.py'},
    'defences': {'baseline': 'Baseline', 'ddn': 'DDN adversarial training'},
    'images': {'dataset': 'fashion_mnist', 'split': 'test', 'source': 'idx', 'num_images': 30},
    'batch_size': 30,
    'attack': _attacks.carlini_wagner(9, 200),
  }
