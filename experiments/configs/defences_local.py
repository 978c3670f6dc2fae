"""Tables 5-6 / Figures 4-5 at CPU scale: the Fashion-MNIST models of the adversarial training.

The baseline, Madry and DDN SmallCNNs of ``adversarial_training_fashion_mnist.py`` (4000 real
Fashion-MNIST training images, 2 epochs, 10-step attacks at ε = 1.5; reloaded from
``runs/adversarial_training/fashion_mnist_local``, trained first if absent). Differences from
the paper's MNIST protocol (``defences_mnist.py``), for CPU time on a shared 2-core machine:
Fashion-MNIST models trained with a tiny budget; the first 30 test images (not 1000); C&W
9×10000 replaced by C&W 9×200; DDN 1000 and DeepFool 100 kept. Accuracy column at ε = 1.5
as in Table 5.

  python -m experiments.defences --config experiments/configs/defences_local.py
"""

from experiments.configs import _attacks


def get_config() -> dict:
  return {
    'name': 'local',
    'title': 'Fashion-MNIST SmallCNN (CPU scale)',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': {'training_config': 'experiments/configs/adversarial_training_fashion_mnist.py'},
    'defences': {'baseline': 'Baseline', 'madry': 'Madry et al.', 'ddn': 'Ours (DDN)'},
    'images': {'dataset': 'fashion_mnist', 'split': 'test', 'source': 'idx', 'num_images': 30},
    'batch_size': 30,
    'attacks': _attacks.defences(cw_long=(9, 200)),
    'epsilon': 1.5,
    'max_epsilon': 3.0,
    'figure5_images': 8,
  }
