"""The paper's MNIST model trained on a CPU: `adversarial_training_mnist.py`, shortened to 12 epochs.

The same data (all 60k MNIST training images; the 10k test images for evaluation), model
(`SmallCNN`), batch 128 and SGD recipe as the paper's 50 epochs, with its learning-rate drop
kept at the same fraction of training (epoch 7 of 12 instead of 30 of 50;
`paper_recipe('mnist', num_epochs=12)`): about 25 minutes on 2 idle CPU cores instead of 100.
Only the baseline: the adversarially trained defences need an accelerator at the paper's recipe.
With the IDX files offline, set ``DDN_JAX_MNIST_DIR`` (``source='auto'`` tries TFDS first).

The committed checkpoint (``experiments/checkpoints/mnist_paper_cpu/baseline``) was trained by
the Table 1 command, which trains the model on first use and then attacks it:

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.attacks_untargeted \
    --config experiments/configs/table1_mnist_cpu.py

(``experiments.adversarial_training`` with this config trains the same model, then evaluates it
with DDN 1000 on all 10k test images: hours on a CPU.)
"""

from experiments.configs import adversarial_training_mnist

NUM_EPOCHS = 12


def get_config() -> dict:
  config = adversarial_training_mnist.get_config()
  return {
    **config,
    'name': 'mnist_paper_cpu',
    'num_epochs': NUM_EPOCHS,
    'defences': {'baseline': config['defences']['baseline']},
  }
