"""FAB and FAB-T (L2) against adv-lib 0.2.8 on the same weights and images.

adv-lib's settings (alpha_max 0.1, beta 0.9, eta 1.05, one run from the input; FAB-T: the 9
likeliest other classes, one run each) on the first 100 held-out real digits of the reference
MNIST SmallCNN and on 100 examples of the linear model (exact minimal norms): FAB at its default
100 steps, FAB-T at 20 steps (adv-lib's side takes minutes per run on 2 cores). "median L2 vs
reference": ddn_jax's median L2 over adv-lib's on the same images; the runs "moved 1 ulp" are
each side again on the digits moved by one float32 ulp, compared with the same side's run on
the unmoved digits (the size of change another CPU's rounding makes). "grads / example":
backward passes per example (FAB: 9 per step; FAB-T: 1 per step and target), counted in the
model on both sides; adv-lib also attacks the digits the model already misclassifies, ddn_jax
skips them. Times are of one call on the whole batch, ddn_jax's warm (its compile time in
brackets).

  python -m experiments.fab_parity --config experiments/configs/fab_parity.py
"""


def get_config() -> dict:
  return {
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'mnist_images': 100,
    'mnist_epochs': 3,
    'linear_examples': 100,
    'seed': 0,
    'experiments': [
      {'attack': 'fab', 'model': 'linear', 'steps': 100, 'moved': False},
      {'attack': 'fab', 'model': 'mnist', 'steps': 100, 'moved': True},
      {'attack': 'fab-t', 'model': 'linear', 'steps': 20, 'moved': False},
      {'attack': 'fab-t', 'model': 'mnist', 'steps': 20, 'moved': False},
    ],
  }
