"""Square Attack (L2) against torchattacks 3.5.1's ``Square(norm='L2')`` on the same weights.

Both sides run the same budget (``queries`` queries after the start, p_init 0.8, the margin
loss, one run) on the first 100 held-out real digits of the reference MNIST SmallCNN, with a few
seeds each: a random search, so the two are compared by their robust accuracy (the fraction of
digits still classified correctly), whose spread across seeds on each side is the noise the
difference of the means is judged against. ddn_jax draws its randomness per example
(``fold_in(key, i)`` for digit i); torchattacks draws one window position for its whole batch.
torchattacks returns the clean digit where it fails, so its max L2 is over its successes.
Times are of one call on the whole batch, averaged over the seeds, ddn_jax's first call
including its compilation.

  python -m experiments.square_parity --config experiments/configs/square_parity.py
"""


def get_config() -> dict:
  return {
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'mnist_images': 100,
    'mnist_epochs': 3,
    'seeds': [0, 1, 2],
    'experiments': [
      {'eps': 1.0, 'queries': 1000},
      {'eps': 2.0, 'queries': 1000},
    ],
  }
