"""Table 1, CIFAR-10 (the paper's protocol), for a GPU or TPU.

The C&W CIFAR-10 CNN (`CifarCNN`, 50 epochs with ``paper_recipe('cifar10_cnn')``), trained on
first use under ``runs/adversarial_training/cifar10_cnn`` and reloaded afterwards. The first 1000
test images in one batch; C&W 4×25 and 1×100 grid-searched on the first 100 images, C&W
9×10000, DeepFool 100, DDN 100/300/1000. Needs CIFAR-10 prepared in TFDS.

  python -m experiments.attacks_untargeted --config experiments/configs/table1_cifar10.py
"""

from experiments.configs import _attacks


def get_config() -> dict:
  training_config = {
    'name': 'cifar10_cnn',
    'dataset': 'cifar10',
    'source': 'tfds',
    'num_train': None,
    'num_test': None,
    'model': 'cifar_cnn',
    'optimizer': {'recipe': 'cifar10_cnn'},
    'num_epochs': 50,
    'batch_size': 128,
    'seed': 0,
    'checkpoint_every_steps': 1000,
    'defences': {'baseline': {'adversary': None}},
  }
  return {
    'name': 'cifar10',
    'title': 'CIFAR-10',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': {'training_config': training_config, 'defence': 'baseline'},
    'images': {'dataset': 'cifar10', 'split': 'test', 'source': 'tfds', 'num_images': 1000},
    'batch_size': 1000,
    'attacks': _attacks.table1(grid_images=100),
    'max_epsilon': 0.6,
  }
