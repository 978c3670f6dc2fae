"""Our MNIST results beside the paper's published numbers (Rony et al., 2019, Table 1).

The paper's numbers are transcribed from its Table 1 (MNIST rows: success %, mean L2 of the
successes, median L2 counting a failure as the distance to a uniform grey image, #grads, run
time in seconds on a GTX 1080 Ti) and Section 4 (99.44% test accuracy). Ratios of mean L2 carry
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
