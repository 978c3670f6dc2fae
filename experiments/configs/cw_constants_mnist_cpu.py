"""Figure 2 (MNIST) on a CPU: the paper's C&W 9×10000 on the first 20 test images.

As ``cw_constants_mnist.py`` (C&W 9×10000, learning rate 0.01, initial constant 0.01; the
baseline and the DDN-trained model), on the models of ``adversarial_training_mnist_cpu.py``: the
paper's MNIST CNN trained here on the 60k digits and its DDN defence fine-tuned from it (2 epochs
of DDN 10 at ε = 2.4; that config says what the reduction changes). Reduced for a 2-core CPU:
the first 20 of the 1000 test images (about 5 minutes a model). With the IDX files offline, set
``DDN_JAX_MNIST_DIR``.

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.cw_constants \
    --config experiments/configs/cw_constants_mnist_cpu.py
"""

from experiments.configs import _models, cw_constants_mnist

NUM_IMAGES = 20


def get_config() -> dict:
  config = cw_constants_mnist.get_config()
  return {
    **config,
    'name': 'mnist_cpu',
    'title': 'MNIST (20 images, on a CPU)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.mnist_paper_cpu(),
    'images': {**config['images'], 'num_images': NUM_IMAGES},
    'batch_size': NUM_IMAGES,
  }
