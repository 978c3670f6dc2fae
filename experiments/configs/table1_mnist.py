"""Table 1, MNIST (the paper's protocol), for a GPU or TPU.

The C&W MNIST CNN trained with the paper's recipe: the ``baseline`` of
``adversarial_training_mnist.py`` (trained there, or here on first use, and reloaded from its
checkpoints). The first 1000 test images in one batch; C&W 4×25 and 1×100 grid-searched over
learning rate × initial constant on the first 100 images (the paper does not say on which
images), C&W 9×10000, DeepFool 100, DDN 100/300/1000.

  python -m experiments.attacks_untargeted --config experiments/configs/table1_mnist.py
"""

from experiments.configs import _attacks, _models


def get_config() -> dict:
  return {
    'name': 'mnist',
    'title': 'MNIST',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.trained('experiments/configs/adversarial_training_mnist.py'),
    'images': {'dataset': 'mnist', 'split': 'test', 'source': 'auto', 'num_images': 1000},
    'batch_size': 1000,
    'attacks': _attacks.table1(grid_images=100),
    'max_epsilon': 3.0,
  }
