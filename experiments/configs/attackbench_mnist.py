"""AttackBench-style table on the paper's MNIST model, on a CPU.

The C&W MNIST CNN of the paper's recipe committed with the repository (the ``baseline`` of
``adversarial_training_mnist_cpu.py``, as ``table1_mnist_cpu.py``), the first 100 MNIST test
images (to keep the run to about 15 minutes of a 2-core CPU), and the library's minimum-norm
attacks with their registered settings at 100 and 1000 queries per image. The bounded attacks
(FGM, PGD, APGD, Square) are left out: they give no per-image minimal norm, and AttackBench runs
them inside a search over ε. No CIFAR-shaped trained model is available offline. With the IDX
files offline, set ``DDN_JAX_MNIST_DIR``.

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.attackbench \
    --config experiments/configs/attackbench_mnist.py
"""

from experiments.configs import _models


def get_config() -> dict:
  return {
    'name': 'mnist',
    'title': "AttackBench-style table: MNIST (the paper's CNN, on a CPU)",
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.mnist_paper_cpu(),
    'images': {'dataset': 'mnist', 'split': 'test', 'source': 'auto', 'num_images': 100},
    'queries': [100, 1000],
    'attacks': ['ddn', 'fmn', 'alma', 'cw', 'deepfool', 'fab', 'fab-t'],
  }
