"""The paper's MNIST defence evaluation (Section 6, Table 5, Fig. 4), for a GPU or TPU.

The C&W CNN (`SmallCNN`) on all 60k MNIST training images for 50 epochs, SGD with momentum 0.9,
learning rate 0.01 for 30 epochs then 0.001 (`paper_recipe('mnist')`). The DDN defence runs DDN
100 projected to ε = 2.4 on every batch (Eq. 9). The Madry baseline is our L2 PGD at the same ε
(40 steps, random start; the paper used MadryLab's released model instead). Evaluation: DDN 1000
on the 10k test images. Needs MNIST in TFDS, or its IDX files in $DDN_JAX_MNIST_DIR.

  python -m experiments.adversarial_training --config experiments/configs/adversarial_training_mnist.py
"""

EPS = 2.4


def get_config() -> dict:
  return {
    'name': 'mnist_paper',
    'dataset': 'mnist',
    'source': 'auto',
    'num_train': None,
    'num_test': None,
    'model': 'small_cnn',
    'optimizer': {'recipe': 'mnist'},
    'num_epochs': 50,
    'batch_size': 128,
    'seed': 0,
    'checkpoint_every_steps': 200,
    'defences': {
      'baseline': {'adversary': None},
      'madry': {'adversary': 'madry', 'eps': EPS, 'steps': 40, 'step_size': 2.5 * EPS / 40},
      'ddn': {'adversary': 'ddn', 'eps': EPS, 'steps': 100},
    },
    'eval': {
      'ddn_steps': 1000,
      'ddn_gamma': 0.05,
      'batch_size': 1000,
      'epsilons': [0.5, 1.0, 1.5, 2.0, 2.5],
    },
  }
