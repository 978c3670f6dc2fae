"""Table 3 (targeted, CIFAR-10), the paper's protocol, for a GPU or TPU.

The C&W CIFAR-10 CNN of ``table1_cifar10.py``. The first 1000 test images, each towards its 9
other classes (9000 attacks, in batches of 1000); C&W 4×25 and 1×100 grid-searched on the pairs
of the first 100 images, C&W 9×10000, DDN 100/300/1000; average and least-likely cases.

  python -m experiments.attacks_targeted --config experiments/configs/targeted_cifar10.py
"""

from experiments.configs import _attacks, table1_cifar10


def get_config() -> dict:
  return {
    'name': 'cifar10',
    'title': 'CIFAR-10',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': table1_cifar10.get_config()['model'],
    'images': {'dataset': 'cifar10', 'split': 'test', 'source': 'tfds', 'num_images': 1000},
    'num_targets': None,
    'batch_size': 1000,
    'attacks': _attacks.targeted(grid_images=100),
  }
