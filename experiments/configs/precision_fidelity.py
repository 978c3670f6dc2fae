"""bfloat16 against float32: the attacks' and the training step's fidelity on real digits.

The reference MNIST SmallCNN (`ddn_jax.reference.mnist_small_cnn`: 3 epochs on 4000 real digits)
attacked on 500 held-out digits by DDN-100, C&W 1×100 (the paper's MNIST lr 0.1, C 1) and FMN-100,
once with `make_logits_fn(..., precision='float32')` and once with `'bfloat16'` (gradients from the
bfloat16 model, every verdict from the float32 model); and the same reference training run in
each precision (and in float32 with seeds 1-3, the spread between float32 runs), evaluated in
float32 on the same held-out digits.

  python -m experiments.precision_fidelity --config experiments/configs/precision_fidelity.py
"""


def get_config() -> dict:
  return {
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'num_images': 500,
    'num_epochs': 3,
    'other_seeds': [1, 2, 3],
    'attacks': [
      {'label': 'DDN 100', 'attack': 'ddn', 'hparams': {'steps': 100}},
      {
        'label': 'C&W 1×100',
        'attack': 'carlini_wagner_l2',
        'hparams': {
          'binary_search_steps': 1,
          'steps': 100,
          'learning_rate': 0.1,
          'initial_const': 1.0,
        },
      },
      {'label': 'FMN 100', 'attack': 'fmn_l2', 'hparams': {'steps': 100}},
    ],
  }
