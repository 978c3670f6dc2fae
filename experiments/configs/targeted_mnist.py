"""Table 2 (targeted, MNIST), the paper's protocol, for a GPU or TPU.

The MNIST CNN of ``table1_mnist.py`` (the ``baseline`` of ``adversarial_training_mnist.py``).
The first 1000 test images, each towards its 9 other classes (9000 attacks, in batches of 1000);
C&W 4×25 and 1×100 grid-searched on the pairs of the first 100 images, C&W 9×10000, DDN
100/300/1000; average and least-likely cases.

  python -m experiments.attacks_targeted --config experiments/configs/targeted_mnist.py
"""

from experiments.configs import _attacks, _models


def get_config() -> dict:
  return {
    'name': 'mnist',
    'title': 'MNIST',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.trained('experiments/configs/adversarial_training_mnist.py'),
    'images': {'dataset': 'mnist', 'split': 'test', 'source': 'auto', 'num_images': 1000},
    'num_targets': None,
    'batch_size': 1000,
    'attacks': _attacks.targeted(grid_images=100),
  }
