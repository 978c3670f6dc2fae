"""Table 2 (targeted, MNIST) on a CPU: the paper's protocol on the first 100 images.

As ``targeted_mnist.py`` (each image towards its 9 other classes; C&W 4×25 and 1×100
grid-searched over the paper's 5×7 grid; C&W 9×10000; DDN 100/300/1000; average and
least-likely cases), on the paper's MNIST CNN trained here (``adversarial_training_mnist_cpu.py``,
as Table 1's), reduced for a 2-core CPU: the first 100 of the 1000 test images (900 targeted
attacks per row, not 9000), the grid searches on the pairs of the first 10 images (as the GPU
config's on those of 100), and C&W 9×10000 on the 27 pairs of the first 3 images only (about
5 minutes on this CPU). Rerunning the command resumes an interrupted
run. With the IDX files offline, set ``DDN_JAX_MNIST_DIR``.

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.attacks_targeted \
    --config experiments/configs/targeted_mnist_cpu.py
"""

from experiments.configs import _attacks, _models, targeted_mnist

NUM_IMAGES = 100


def get_config() -> dict:
  config = targeted_mnist.get_config()
  return {
    **config,
    'name': 'mnist_cpu',
    'title': 'MNIST (the paper protocol on 100 images, on a CPU)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.mnist_paper_cpu(),
    'images': {**config['images'], 'num_images': NUM_IMAGES},
    'batch_size': 300,
    'attacks': [  # cheapest first: a run stopped early keeps the most rows
      _attacks.ddn(100),
      _attacks.carlini_wagner(1, 100, grid_images=10),
      _attacks.carlini_wagner(4, 25, grid_images=10),
      _attacks.ddn(300),
      _attacks.ddn(1000),
      _attacks.carlini_wagner(9, 10000, num_images=3),
    ],
  }
