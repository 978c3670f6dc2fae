"""Trains a baseline, a Madry and a DDN model with the same budget, then compares their robustness.

Each defence of the config is trained with `ddn_jax.training.fit`, data-parallel over all devices
(one ``'data'`` mesh axis), with checkpoints under ``<workdir>/<config name>/<defence>``: rerun
the same command after an interruption and training resumes where it stopped. Each model is then
attacked with DDN on the test images; its robust accuracy at ε is the fraction of test images
classified correctly with no DDN adversarial within ε (Rony et al., 2019, Section 6, Fig. 4).

  python -m experiments.adversarial_training \
    --config experiments/configs/adversarial_training_fashion_mnist.py

writes ``experiments/results/adversarial_training_<config name>.{json,md}``.
"""

from __future__ import annotations

import functools
import json
import pathlib
import time
from typing import Any

import jax
import numpy as np

from ddn_jax import data, evaluation, models, reports, training
from experiments import _report

_MODULE = 'experiments.adversarial_training'


def _model(name: str):
  if name == 'wide_resnet_28_10':  # the paper's CIFAR-10 defence, as Zagoruyko & Komodakis train it
    return models.build_model('wide_resnet', depth=28, width=10, dropout_rate=0.3)
  return models.build_model(name)


def _optimizer(spec: dict[str, Any], num_train: int, num_epochs: int):
  name = spec.get('recipe', spec.get('name'))
  return training.make_optimizer(
    name,
    num_train_examples=num_train,
    learning_rate=spec.get('learning_rate'),
    num_epochs=num_epochs,
  )


def _adversary(spec: dict[str, Any]) -> training.Adversary | None:
  if spec['adversary'] is None:
    return None
  kwargs = {k: spec[k] for k in ('step_size', 'gamma') if k in spec}
  return training.make_adversary(spec['adversary'], eps=spec['eps'], steps=spec['steps'], **kwargs)


def subset(arrays, size: int | None, seed: int):
  """The first ``size`` of a ``seed`` permutation (`data.split_indices`), or all."""
  images, labels = arrays
  if size is None:
    return images, labels
  index = data.split_indices(len(images), seed=seed, num_train=size)[0]
  return images[index], labels[index]


def train_defence(config, defence, spec, train_data, test_data, workdir, mesh, trained):
  """Trains one defence of a config, resuming from (or reloading) ``workdir / defence``."""
  num_train = len(train_data[0])
  num_epochs = spec.get('num_epochs', config['num_epochs'])
  state = training.create_train_state(
    _model(config['model']),
    rng=jax.random.key(config['seed']),
    input_shape=(1, *train_data[0].shape[1:]),
    optimizer=_optimizer(spec.get('optimizer', config['optimizer']), num_train, num_epochs),
  )
  # So that the CLI loads it too: ddn-jax attack --checkpoint <workdir>/<defence>.
  models.save_model_info(
    workdir / defence,
    state.model,
    input_shape=train_data[0].shape[1:],
    dataset=config['dataset'],
    experiment=config['name'],
    defence=defence,
  )
  if 'init_from' in spec:  # e.g. the paper's CIFAR-10 defence fine-tunes the baseline
    start = trained[spec['init_from']]
    state = state.replace(params=start.params, batch_stats=start.batch_stats)
    state = state.replace(opt_state=state.tx.init(state.params))
  step_fn = functools.partial(
    training.adversarial_train_step,
    adversary=_adversary(spec),
    clean_weight=spec.get('clean_weight'),
  )
  return training.fit(
    state,
    train_data,
    num_epochs=num_epochs,
    batch_size=config['batch_size'],
    seed=config['seed'],
    eval_data=test_data,
    step_fn=step_fn,
    mesh=mesh,
    workdir=workdir / defence,
    checkpoint_every_steps=config['checkpoint_every_steps'],
  )


def _evaluate(state, test_data, eval_config) -> dict[str, Any]:
  # One device's copy of the replicated variables: the evaluation runs on one device.
  variables = jax.tree.map(lambda a: a.addressable_data(0), state.variables)
  logits_fn = models.make_logits_fn(state.model, variables)
  start = time.perf_counter()
  norms = evaluation.minimal_norms(
    logits_fn,
    *test_data,
    steps=eval_config['ddn_steps'],
    gamma=eval_config['ddn_gamma'],
    batch_size=eval_config['batch_size'],
  )
  clean = training.evaluate(logits_fn, *test_data)['accuracy']
  return {
    'clean_accuracy': clean,
    'robust_accuracy': evaluation.robust_accuracy(norms, eval_config['epsilons']),
    'median_l2': float(np.median(norms)),
    'mean_l2_of_successes': float(np.mean(norms[np.isfinite(norms)])),
    'attack_success_rate': float(np.mean(np.isfinite(norms))),
    'eval_seconds': time.perf_counter() - start,
  }


def _table(report: dict[str, Any]) -> str:
  config, results = report['config'], report['results']
  epsilons = config['eval']['epsilons']
  header = ['defence', 'training attack', 'clean acc.', *(f'acc. ε={eps:g}' for eps in epsilons)]
  header += ['median DDN L2', 'train adv. acc.', 'train adv. L2', 'train s']
  rows = []
  for defence, result in results.items():
    spec = config['defences'][defence]
    attack = (
      'none'
      if spec['adversary'] is None
      else (f'{spec["adversary"]} {spec["steps"]} steps, ε={spec["eps"]:g}')
    )
    last = result['history'][-1]
    rows.append(
      [
        defence,
        attack,
        f'{result["clean_accuracy"]:.1%}',
        *(f'{result["robust_accuracy"][str(float(eps))]:.1%}' for eps in epsilons),
        f'{result["median_l2"]:.3f}',
        f'{last["train_adv_accuracy"]:.1%}' if 'train_adv_accuracy' in last else '–',
        f'{last["train_adv_l2"]:.3f}' if 'train_adv_l2' in last else '–',
        f'{sum(row["seconds"] for row in result["history"]):.0f}',
      ]
    )
  return reports.markdown_table(header, rows, align='ll' + 'r' * (len(header) - 2))


def main(argv: list[str] | None = None) -> None:
  parser = _report.argument_parser(__doc__.split('\n')[0], _MODULE)
  parser.add_argument('--workdir', default='runs/adversarial_training', help='checkpoints')
  args = parser.parse_args(argv)
  config = _report.load_config(args.config)
  report = reports.Report(
    pathlib.Path(args.out) / f'adversarial_training_{config["name"]}',
    title=f'Adversarial training: {config["name"]}',
    command=_report.command_line(_MODULE, argv),
  )

  train_data = subset(
    data.load(config['dataset'], 'train', source=config['source']),
    config['num_train'],
    config['seed'],
  )
  test_data = subset(
    data.load(config['dataset'], 'test', source=config['source']),
    config['num_test'],
    config['seed'],
  )
  mesh = training.data_mesh()
  workdir = pathlib.Path(args.workdir) / config['name']
  trained, results = {}, {}
  for defence, spec in config['defences'].items():
    print(f'== {defence}', flush=True)
    state, history = train_defence(
      config, defence, spec, train_data, test_data, workdir, mesh, trained
    )
    trained[defence] = state
    results[defence] = {**_evaluate(state, test_data, config['eval']), 'history': history}
    print(json.dumps({k: v for k, v in results[defence].items() if k != 'history'}), flush=True)

  report.data.update(
    config=config,
    num_train=len(train_data[0]),
    num_test=len(test_data[0]),
    results=json.loads(json.dumps(results)),  # float keys become strings, as in the file
  )
  report.add_text(
    f'{config["dataset"]}: {report.data["num_train"]} training images, {config["num_epochs"]} '
    f'epochs (unless stated), batch {config["batch_size"]}; evaluated on '
    f'{report.data["num_test"]} test images with DDN {config["eval"]["ddn_steps"]} '
    f'(γ={config["eval"]["ddn_gamma"]:g}). Robust accuracy at ε: correctly classified and no DDN '
    'adversarial within ε.'
  )
  report.add_table(_table(report.data))
  report.add_text(
    "Train adv. acc. and L2: last epoch's mean over training batches of the accuracy on the "
    "training attack's images and of their L2 norm before the ε projection (DDN) or after it "
    '(PGD). Train s: wall time of training including per-epoch evaluation.'
  )
  print(report.write())


if __name__ == '__main__':
  main()
