"""CPU-feasible comparison of plain, Madry and DDN adversarial training on real Fashion-MNIST.

A reduced version of the paper's MNIST protocol (Section 6), sized from measured step times for
about 15 minutes on two idle CPU cores (much longer when they are shared): 4000 training images, 2 epochs, 10-step attacks during training (the paper: all 60k
images, 50 epochs, DDN 100), and DDN 40 on 300 test images for evaluation (the paper: DDN 1000
and two other attacks on the whole test set). ε = 1.5 for both defences. With so few steps DDN's
norm can only move by a factor (1 ± γ) per step, so γ is raised from 0.05 to 0.1: 10 steps then
span norms 0.35-2.6 around the initial 1, and 40 steps reach down to 0.015.

  python -m experiments.adversarial_training \
    --config experiments/configs/adversarial_training_fashion_mnist.py
"""

EPS = 1.5
ATTACK_STEPS = 10


def get_config() -> dict:
  return {
    'name': 'fashion_mnist_local',
    'dataset': 'fashion_mnist',
    'source': 'idx',
    'num_train': 4000,
    'num_test': 300,
    'model': 'small_cnn',
    'optimizer': {'name': 'adam', 'learning_rate': 1e-3},
    'num_epochs': 2,
    'batch_size': 100,
    'seed': 0,
    'checkpoint_every_steps': 20,
    'defences': {
      'baseline': {'adversary': None},
      'madry': {
        'adversary': 'madry',
        'eps': EPS,
        'steps': ATTACK_STEPS,
        # 2.5·ε spread over the steps, a common choice for PGD (ours; the paper gives none).
        'step_size': 2.5 * EPS / ATTACK_STEPS,
      },
      'ddn': {'adversary': 'ddn', 'eps': EPS, 'steps': ATTACK_STEPS, 'gamma': 0.1},
    },
    'eval': {
      'ddn_steps': 40,
      'ddn_gamma': 0.1,
      'batch_size': 300,
      'epsilons': [0.25, 0.5, 1.0, 1.5, 2.0],
    },
  }
