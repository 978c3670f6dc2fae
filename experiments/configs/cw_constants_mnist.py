"""Figure 2 (MNIST), the paper's protocol, for a GPU or TPU.

C&W 9×10000 (learning rate 0.01, initial constant 0.01) on the first 1000 MNIST test images,
against the baseline and the DDN-trained model of ``adversarial_training_mnist.py``.

  python -m experiments.cw_constants --config experiments/configs/cw_constants_mnist.py
"""

from experiments.configs import _attacks


def get_config() -> dict:
  return {
    'name': 'mnist',
    'title': 'MNIST',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': {'training_config': 'experiments/configs/adversarial_training_mnist.py'},
    'defences': {'baseline': 'Baseline', 'ddn': 'DDN adversarial training'},
    'images': {'dataset': 'mnist', 'split': 'test', 'source': 'auto', 'num_images': 1000},
    'batch_size': 1000,
    'attack': _attacks.carlini_wagner(9, 10000),
  }
