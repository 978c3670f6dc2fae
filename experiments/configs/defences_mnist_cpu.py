"""Table 5 and Figures 4-5 (MNIST) on a CPU: the paper's attacks on reduced defences.

The baseline, Madry and DDN models of ``adversarial_training_mnist_cpu.py``: the paper's MNIST
CNN trained here on the 60k training digits, and its Madry and DDN defences fine-tuned from it
for 2 epochs with 10-step attacks at ε = 2.4 (the paper: 50 epochs from scratch with DDN 100;
that config says what the reduction changes). Attacks as the paper's (DeepFool 100, DDN 1000,
C&W 9×10000, and All) on the first 100 test images, not 1000; C&W 9×10000 on the first 10 only
(6 minutes a model on this CPU), so All is the best of DeepFool 100 and DDN 1000. Accuracy at
ε ≤ 1.5 as in Table 5. Each model also under AutoAttack's standard L2 ensemble at ε = 1.5 and
2.0, as RobustBench evaluates defences. The defences are trained on first use (about 40 minutes on 2 cores),
then reloaded from ``experiments/checkpoints``; rerunning the command resumes an interrupted
evaluation. With the IDX files offline, set ``DDN_JAX_MNIST_DIR``.

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.defences \
    --config experiments/configs/defences_mnist_cpu.py
"""

from experiments.configs import _attacks, _models, defences_mnist

NUM_IMAGES = 100


def get_config() -> dict:
  config = defences_mnist.get_config()
  return {
    **config,
    'name': 'mnist_cpu',
    'title': 'MNIST (reduced defences, on a CPU)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': _models.mnist_paper_cpu(),
    'images': {**config['images'], 'num_images': NUM_IMAGES},
    'batch_size': NUM_IMAGES,
    'autoattack': [1.5, 2.0],
    'attacks': [  # cheapest first
      _attacks.deepfool(100),
      _attacks.ddn(1000),
      _attacks.carlini_wagner(9, 10000, num_images=10),
    ],
  }
