"""Table 1, MNIST, at the paper's protocol on a CPU, except where stated.

As ``table1_mnist.py``: the first 1000 MNIST test images, the paper's attack budgets and
hyperparameters. Reduced for a 2-core CPU: the model is the paper's `SmallCNN` recipe shortened
to 12 epochs (``adversarial_training_mnist_cpu.py``); the C&W grid searches (the paper's 5×7
grid of learning rate × initial constant) run on the first 20 images (the paper does not say on
how many); C&W 9×10000 attacks only the first 10 images (6 minutes on this CPU; the paper's
run on 1000 took 857 s on a GTX 1080 Ti). The rows run cheapest first, so that a run stopped
early keeps the most rows (rerunning the command resumes it). With the IDX files offline, set
``DDN_JAX_MNIST_DIR``.

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.attacks_untargeted \
    --config experiments/configs/table1_mnist_cpu.py
"""

from experiments.configs import _attacks, _models, table1_mnist


def get_config() -> dict:
  return {
    **table1_mnist.get_config(),
    'name': 'mnist_cpu',
    'title': 'MNIST (the paper protocol, on a CPU)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.mnist_paper_cpu(),
    'batch_size': 250,
    'attacks': [
      _attacks.ddn(100),
      _attacks.ddn(300),
      _attacks.deepfool(100),
      _attacks.carlini_wagner(1, 100, grid_images=20),
      _attacks.carlini_wagner(4, 25, grid_images=20),
      _attacks.ddn(1000),
      _attacks.carlini_wagner(9, 10000, num_images=10),
    ],
  }
