"""The paper's CIFAR-10 defence evaluation (Section 6, Table 6, Fig. 4), for a GPU or TPU.

WRN 28-10 trained on clean images for 200 epochs (`paper_recipe('cifar10_wrn')`), then 30 more
epochs of Eq. 9 with DDN 100 projected to ε = 1 at the final learning rate 0.0008
(`paper_recipe('cifar10_wrn_adversarial')`), starting from the baseline's weights. The Madry
baseline is our L2 PGD at the same ε and the same 30 epochs (the paper used MadryLab's WRN 34-10).
Evaluation: DDN 1000 on the 10k test images. No data augmentation yet (the paper's WRN used
random crops and flips). Needs CIFAR-10 prepared in TFDS.

  python -m experiments.adversarial_training --config experiments/configs/adversarial_training_cifar10.py
"""

EPS = 1.0


def get_config() -> dict:
  adversarial = {'optimizer': {'recipe': 'cifar10_wrn_adversarial'}, 'init_from': 'baseline'}
  return {
    'name': 'cifar10_paper',
    'dataset': 'cifar10',
    'source': 'tfds',
    'num_train': None,
    'num_test': None,
    'model': 'wide_resnet_28_10',
    'optimizer': {'recipe': 'cifar10_wrn'},
    'num_epochs': 200,
    'batch_size': 128,
    'seed': 0,
    'checkpoint_every_steps': 500,
    'defences': {
      'baseline': {'adversary': None},
      'madry': {
        'adversary': 'madry',
        'eps': EPS,
        'steps': 40,
        'step_size': 2.5 * EPS / 40,
        'num_epochs': 30,
        **adversarial,
      },
      'ddn': {'adversary': 'ddn', 'eps': EPS, 'steps': 100, 'num_epochs': 30, **adversarial},
    },
    'eval': {
      'ddn_steps': 1000,
      'ddn_gamma': 0.05,
      'batch_size': 500,
      'epsilons': [0.25, 0.5, 0.75, 1.0, 1.25],
    },
  }
