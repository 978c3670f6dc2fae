"""AttackBench-style table on the paper's CIFAR-10 CNN, for a GPU or TPU.

The C&W CIFAR-10 CNN of ``table1_cifar10.py`` (`CifarCNN`, trained on first use with the paper's
recipe), the first 1000 CIFAR-10 test images, and the library's minimum-norm attacks with their
registered settings at 100 and 1000 queries per image, as ``attackbench_mnist.py``. Needs
CIFAR-10 prepared in TFDS (not run here: no CIFAR-10 training images are available offline).

  python -m experiments.attackbench --config experiments/configs/attackbench_cifar10.py
"""

from experiments.configs import attackbench_mnist, table1_cifar10


def get_config() -> dict:
  table1 = table1_cifar10.get_config()
  return {
    **attackbench_mnist.get_config(),
    'name': 'cifar10',
    'title': "AttackBench-style table: CIFAR-10 (the paper's CNN)",
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': table1['model'],
    'images': table1['images'],
  }
