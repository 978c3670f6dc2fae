"""ALMA (L2) against adv-lib 0.2.8 on the same weights and images.

ALMA's default budget (1000 steps, adv-lib's hyperparameters: P2, lr 0.1 decaying to 0.001
after the first adversarial point, μ and ρ from 1, checks every 10 steps) on the first 100
held-out real digits of the reference MNIST SmallCNN and on 100 examples of the linear model
(exact minimal norms); then 100 steps on the same digits. "median L2 vs reference": ddn_jax's
median L2 over adv-lib's on the same images; the runs "moved 1 ulp" are each side again on the
digits moved by one float32 ulp, compared with the same side's run on the unmoved digits (the
size of change another CPU's rounding makes). Times are of one call on the whole batch, ddn_jax's
warm (its compile time in brackets).

  python -m experiments.alma_parity --config experiments/configs/alma_parity.py
"""


def get_config() -> dict:
  return {
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'mnist_images': 100,
    'mnist_epochs': 3,
    'linear_examples': 100,
    'seed': 0,
    'experiments': [
      {'model': 'mnist', 'steps': 1000, 'moved': True},
      {'model': 'linear', 'steps': 1000, 'moved': False},
      {'model': 'mnist', 'steps': 100, 'moved': True},
    ],
  }
