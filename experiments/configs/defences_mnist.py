"""Table 5 and Figures 4-5 (MNIST), the paper's protocol, for a GPU or TPU.

The baseline, Madry and DDN models of ``adversarial_training_mnist.py`` (SmallCNN, 50 epochs,
DDN 100 at ε = 2.4; our L2 PGD stands in for MadryLab's released model). The first 1000 test
images in one batch; C&W 9×10000, DeepFool 100 and DDN 1000, and their per-image best (All);
accuracy at ε ≤ 1.5.

  python -m experiments.defences --config experiments/configs/defences_mnist.py
"""

from experiments.configs import _attacks


def get_config() -> dict:
  return {
    'name': 'mnist',
    'title': 'MNIST',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': {'training_config': 'experiments/configs/adversarial_training_mnist.py'},
    'defences': {'baseline': 'Baseline', 'madry': 'Madry et al.', 'ddn': 'Ours (DDN)'},
    'images': {'dataset': 'mnist', 'split': 'test', 'source': 'auto', 'num_images': 1000},
    'batch_size': 1000,
    'attacks': _attacks.defences(),
    'epsilon': 1.5,
    'max_epsilon': 4.0,
    'autoattack': [1.5, 2.0],  # RobustBench's evaluation, at the ε of Section 6
    'figure5_images': 8,
  }
