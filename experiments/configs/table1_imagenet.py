"""Table 1, ImageNet (the paper's protocol), for a GPU or TPU.

Inception V3 with torchvision's ImageNet weights (`ddn_jax.models.InceptionV3`; the file
``inception_v3_google-0cc3c7bd.pth`` from torchvision, at $DDN_JAX_INCEPTION_V3 or in the
current directory, converted by `ddn_jax.interop.load_torch_state_dict` when this config
runs). 1000 images drawn at random from the first 4000 validation images,
among those the model classifies correctly (342-pixel resize, 299 centre crop), attacked in 20
batches of 50; C&W 4×25 and 1×100 grid-searched on the first 50 images, C&W 9×10000,
DeepFool 100, DDN 100/300/1000. Needs ImageNet prepared in TFDS.

  python -m experiments.attacks_untargeted --config experiments/configs/table1_imagenet.py
"""

import os

from experiments.configs import _attacks


def get_config() -> dict:
  return {
    'name': 'imagenet',
    'title': 'ImageNet, Inception V3',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'model': {
      'architecture': 'inception_v3',
      'state_dict': os.environ.get('DDN_JAX_INCEPTION_V3', 'inception_v3_google-0cc3c7bd.pth'),
    },
    'images': {
      'dataset': 'imagenet2012',
      'split': 'validation[:4000]',
      'source': 'tfds',
      'select': 'random_correct',
      'num_images': 1000,
      'seed': 0,
    },
    'batch_size': 50,
    'attacks': _attacks.table1(grid_images=50),
    'max_epsilon': 1.5,
  }
