"""Table 4 (targeted, ImageNet), the paper's protocol, for a GPU or TPU.

Inception V3 with torchvision weights and the 1000 correctly classified validation images of
``table1_imagenet.py``, each towards 100 random other classes (100 000 attacks, in batches of
50); C&W 4×25 and 1×100 grid-searched on the pairs of the first 2 images, DDN 100/300/1000.
The paper quotes C&W 9×10000 from Carlini & Wagner instead of running it (a week of GPU time):
it is left out here too; add ``_attacks.carlini_wagner(9, 10000)`` to run it.

  python -m experiments.attacks_targeted --config experiments/configs/targeted_imagenet.py
"""

from experiments.configs import _attacks, table1_imagenet


def get_config() -> dict:
  table1 = table1_imagenet.get_config()
  return {
    'name': 'imagenet',
    'title': 'ImageNet, Inception V3',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': table1['model'],
    'images': table1['images'],
    'num_targets': 100,
    'seed': 0,
    'batch_size': 50,
    'attacks': [
      _attacks.carlini_wagner(4, 25, grid_images=2),
      _attacks.carlini_wagner(1, 100, grid_images=2),
      *(_attacks.ddn(steps) for steps in (100, 300, 1000)),
    ],
  }
