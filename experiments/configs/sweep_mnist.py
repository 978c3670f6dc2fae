"""Paper-scale sweeps on MNIST for a GPU or TPU: DDN γ × initial norm × steps (100, 300, 1000),
and the C&W grid search over learning rate × initial constant for its short budgets.

The SmallCNN on all 60k training images (10 epochs of Adam), 1000 test images attacked. The
C&W static grid is the product of 1 or 4 binary-search steps and 25 or 100 iterations, so it
holds the paper's 1×100 and 4×25 budgets. Needs MNIST in TFDS, or its IDX files in
$DDN_JAX_MNIST_DIR.

  python -m experiments.sweep --config experiments/configs/sweep_mnist.py
"""


def get_config() -> dict:
  return {
    'name': 'mnist',
    'dataset': 'mnist',
    'source': 'auto',
    'num_train': None,
    'num_epochs': 10,
    'train_batch_size': 128,
    'num_images': 1000,
    'batch_size': 1000,
    'seed': 0,
    'sweeps': {
      'DDN': {
        'attack': 'ddn',
        'grid': {'gamma': [0.01, 0.02, 0.05, 0.1, 0.2], 'init_norm': [0.5, 1.0, 2.0, 4.0]},
        'static': {'steps': [100, 300, 1000]},
      },
      'C&W': {
        'attack': 'cw',
        'grid': {
          'learning_rate': [0.001, 0.01, 0.05, 0.1, 0.5, 1.0],
          'initial_const': [0.01, 0.1, 1.0, 10.0, 100.0],
        },
        'static': {'binary_search_steps': [1, 4], 'steps': [25, 100]},
      },
    },
  }
