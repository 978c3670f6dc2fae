"""Table 6 and Figures 4-5 (CIFAR-10), the paper's protocol, for a GPU or TPU.

The baseline WRN 28-10 and its Madry and DDN fine-tunings (ε = 1) of
``adversarial_training_cifar10.py`` (our L2 PGD stands in for MadryLab's WRN 34-10). The first
1000 test images in batches of 500; C&W 9×10000, DeepFool 100 and DDN 1000, and their
per-image best (All); accuracy at ε ≤ 0.5.

  python -m experiments.defences --config experiments/configs/defences_cifar10.py
"""

from experiments.configs import _attacks


def get_config() -> dict:
  return {
    'name': 'cifar10',
    'title': 'CIFAR-10',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': {'training_config': 'experiments/configs/adversarial_training_cifar10.py'},
    'defences': {'baseline': 'Baseline', 'madry': 'Madry et al.', 'ddn': 'Ours (DDN)'},
    'images': {'dataset': 'cifar10', 'split': 'test', 'source': 'tfds', 'num_images': 1000},
    'batch_size': 500,
    'attacks': _attacks.defences(),
    'epsilon': 0.5,
    'max_epsilon': 1.5,
    'autoattack': [0.5, 1.0],  # RobustBench's evaluation, at the ε of Section 6
    'figure5_images': 8,
  }
