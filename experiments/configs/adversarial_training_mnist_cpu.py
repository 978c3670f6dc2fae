"""The paper's MNIST model trained on a CPU: `adversarial_training_mnist.py`, shortened to 12 epochs.

The same data (all 60k MNIST training images; the 10k test images for evaluation), model
(`SmallCNN`), batch 128 and SGD recipe as the paper's 50 epochs, with its learning-rate drop
kept at the same fraction of training (epoch 7 of 12 instead of 30 of 50;
`paper_recipe('mnist', num_epochs=12)`): about 25 minutes on 2 CPU cores instead of 100. Only
the baseline: the adversarially trained defences need an accelerator at the paper's recipe.
With the IDX files offline, set ``DDN_JAX_MNIST_DIR`` (``source='auto'`` tries TFDS first).

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.adversarial_training \
    --config experiments/configs/adversarial_training_mnist_cpu.py
"""

import importlib.util
import pathlib

NUM_EPOCHS = 12


def _paper_config() -> dict:
  path = pathlib.Path(__file__).with_name('adversarial_training_mnist.py')
  spec = importlib.util.spec_from_file_location('adversarial_training_mnist', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def get_config() -> dict:
  config = _paper_config()
  return {
    **config,
    'name': 'mnist_paper_cpu',
    'num_epochs': NUM_EPOCHS,
    'defences': {'baseline': config['defences']['baseline']},
  }
