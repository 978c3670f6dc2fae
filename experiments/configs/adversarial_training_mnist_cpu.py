"""The paper's MNIST models trained on a CPU: `adversarial_training_mnist.py`, reduced.

The same data (all 60k MNIST training images; the 10k test images for evaluation), model
(`SmallCNN`), batch 128 and SGD recipe as the paper's 50 epochs, with its learning-rate drop
kept at the same fraction of training (epoch 7 of 12 instead of 30 of 50;
`paper_recipe('mnist', num_epochs=12)`): about 25 minutes on 2 idle CPU cores instead of 100.
The Madry and DDN defences, whose paper recipe (50 epochs, DDN 100 on every batch: ~300 M
gradients) needs an accelerator, are reduced as the paper's own CIFAR-10 defence is trained:
fine-tuned from this baseline (``init_from``) for 2 epochs of Eq. 9 at ε = 2.4 on the same 60k
digits (learning rate 0.01, then 0.001 for the second: the recipe's drop at the same fraction),
with 10 attack steps per batch instead of 100: DDN with γ = 0.1 (so that its norm can still
grow from 1 to 1.1^10 = 2.6 > ε within the 10 steps; γ = 0.05 would stop at 1.6), PGD with
the usual step 2.5 ε / 10 and a random start. About 10 minutes per epoch per defence on 2 idle
cores (1.2 s a batch).
With the IDX files offline, set ``DDN_JAX_MNIST_DIR`` (``source='auto'`` tries TFDS first).

The committed checkpoints (``experiments/checkpoints/mnist_paper_cpu/<defence>``) were trained by
the commands that use them first, which train a missing model and then attack it: the baseline
by Table 1's,

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.attacks_untargeted \
    --config experiments/configs/table1_mnist_cpu.py

and the defences by Table 5's (``defences_mnist_cpu.py``):

  DDN_JAX_MNIST_DIR=../shared/data/mnist python -m experiments.defences \
    --config experiments/configs/defences_mnist_cpu.py

(``experiments.adversarial_training`` with this config trains the same models, then evaluates
them with DDN 1000 on all 10k test images: hours on a CPU.)
"""

from experiments.configs import adversarial_training_mnist

NUM_EPOCHS = 12
FINE_TUNE_EPOCHS = 2
STEPS = 10


def get_config() -> dict:
  config = adversarial_training_mnist.get_config()
  return {
    **config,
    'name': 'mnist_paper_cpu',
    'num_epochs': NUM_EPOCHS,
    'defences': {
      'baseline': config['defences']['baseline'],
      'madry': {
        **config['defences']['madry'],
        'steps': STEPS,
        'step_size': 2.5 * adversarial_training_mnist.EPS / STEPS,
        'init_from': 'baseline',
        'num_epochs': FINE_TUNE_EPOCHS,
      },
      'ddn': {
        **config['defences']['ddn'],
        'steps': STEPS,
        'gamma': 0.1,
        'init_from': 'baseline',
        'num_epochs': FINE_TUNE_EPOCHS,
      },
    },
  }
