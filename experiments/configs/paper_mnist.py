"""Our MNIST results beside the paper's published numbers (Rony et al., 2019, Tables 1, 2, 5).

The paper's numbers are transcribed from its Table 1 (MNIST rows: success %, mean L2 of the
successes, median L2 counting a failure as the distance to a uniform grey image, #grads, run
time in seconds on a GTX 1080 Ti), Section 4 (99.44% test accuracy), Table 2 (targeted: average
and least-likely success % and mean L2), Table 5 (defences: success %, mean and median L2,
accuracy at ε ≤ 1.5) and Section 6's reading of Fig. 4 (accuracy under All at ε = 1.5 and 2.0).
Ratios of mean L2 carry
across models where the norms themselves do not: each ratio is computed for us on the images
both rows attacked.

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.paper_comparison \
    --config experiments/configs/paper_mnist.py
"""

# (success %, mean L2, median L2, #grads, run time s); None where the paper gives none.
TABLE1_MNIST = {
  'C&W 4×25': (100.0, 1.7382, 1.7400, 100, 1.7),
  'C&W 1×100': (99.4, 1.5917, 1.6405, 100, 1.7),
  'C&W 9×10000': (100.0, 1.3961, 1.4121, 54007, 856.8),
  'DeepFool 100': (75.4, 1.9685, 2.2909, 98, None),
  'DDN 100': (100.0, 1.4563, 1.4506, 100, 1.5),
  'DDN 300': (100.0, 1.4357, 1.4386, 300, 4.5),
  'DDN 1000': (100.0, 1.4240, 1.4342, 1000, 14.9),
}

# (average success %, average mean L2, least-likely success %, least-likely mean L2).
TABLE2_MNIST = {
  'C&W 4×25': (96.11, 2.8254, 69.9, 5.0090),
  'C&W 1×100': (86.89, 2.0940, 31.7, 2.6062),
  'C&W 9×10000': (100.0, 1.9481, 100.0, 2.5370),
  'DDN 100': (100.0, 1.9763, 100.0, 2.6008),
  'DDN 300': (100.0, 1.9577, 100.0, 2.5503),
  'DDN 1000': (100.0, 1.9511, 100.0, 2.5348),
}

# {defence title: {attack: (success %, mean L2, median L2, accuracy % at ε ≤ 1.5)}}.
TABLE5_MNIST = {
  'Baseline': {
    'C&W 9×10000': (100.0, 1.3961, 1.4121, 42.1),
    'DeepFool 100': (75.4, 1.9685, 2.2909, 81.8),
    'DDN 1000': (100.0, 1.4240, 1.4342, 45.2),
    'All': (100.0, 1.3778, 1.3946, 40.8),
  },
  'Madry et al.': {
    'C&W 9×10000': (100.0, 2.0813, 2.1071, 73.0),
    'DeepFool 100': (91.6, 4.9585, 5.2946, 93.1),
    'DDN 1000': (99.6, 1.8436, 1.8994, 69.9),
    'All': (100.0, 1.6917, 1.8307, 67.3),
  },
  'Ours (DDN)': {
    'C&W 9×10000': (100.0, 2.5181, 2.6146, 88.0),
    'DeepFool 100': (94.3, 3.9449, 4.1754, 92.7),
    'DDN 1000': (100.0, 2.4874, 2.5781, 87.6),
    'All': (100.0, 2.4497, 2.5538, 87.2),
  },
}


def get_config() -> dict:
  return {
    'name': 'mnist',
    'notes': __doc__.split('\n\n')[1].replace('\n', ' '),
    'paper_test_accuracy': 0.9944,
    'table1': {
      'results': 'experiments/results/table1_mnist_cpu.json',
      'config': 'experiments/configs/table1_mnist_cpu.py',
      'paper': TABLE1_MNIST,
    },
    'table2': {
      'results': 'experiments/results/targeted_mnist_cpu.json',
      'paper': TABLE2_MNIST,
      'ratios': [
        ('DDN 100', 'C&W 9×10000'),
        ('DDN 1000', 'C&W 9×10000'),
        ('C&W 1×100', 'C&W 9×10000'),
        ('DDN 100', 'DDN 1000'),
        ('C&W 4×25', 'DDN 1000'),
        ('C&W 1×100', 'DDN 1000'),
      ],
    },
    'table5': {
      'results': 'experiments/results/defences_mnist_cpu.json',
      'paper': TABLE5_MNIST,
      'epsilons': [1.5, 2.0],
      'paper_test_accuracy': {'Baseline': 99.44, 'Madry et al.': 98.53, 'Ours (DDN)': 99.01},
      'paper_robust_accuracy': {
        'Baseline': (40.8, 9.2),
        'Madry et al.': (67.3, 38.6),
        'Ours (DDN)': (87.2, 74.8),
      },
    },
    # Mean-L2 ratios (numerator, denominator): the paper's first four, then against DDN 1000,
    # which we run on all 1000 images.
    'ratios': [
      ('DDN 100', 'C&W 9×10000'),
      ('DDN 1000', 'C&W 9×10000'),
      ('C&W 1×100', 'C&W 9×10000'),
      ('DeepFool 100', 'C&W 9×10000'),
      ('DDN 100', 'DDN 1000'),
      ('DDN 300', 'DDN 1000'),
      ('C&W 4×25', 'DDN 1000'),
      ('C&W 1×100', 'DDN 1000'),
      ('DeepFool 100', 'DDN 1000'),
    ],
  }
