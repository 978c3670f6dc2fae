"""Tables 2-4 of the paper: targeted C&W and DDN, average case and least-likely case.

Every attacked image is attacked towards every other class (9 on MNIST and CIFAR-10) or
``num_targets`` random ones (100 on ImageNet), with `ddn_jax.evaluation.evaluate_targeted`. The
average case summarises all (image, target) pairs; the least-likely case takes, per image, its
worst target (a failure if any, else the largest norm). C&W rows with a ``grid`` are first
grid-searched on the pairs of the first ``grid_images`` images. Writes ``targeted_<name>.md``,
``.json``, ``.csv`` (one row per attack and case) and ``targeted_<name>_examples.png`` (DDN's
targeted adversarial examples of the first image, one per target) under ``--out``.

  python -m experiments.attacks_targeted --config experiments/configs/targeted_local.py
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from ddn_jax import evaluation, plotting, training
from experiments import _common, _report

_MODULE = 'experiments.attacks_targeted'


def _pairs(logits_fn, images, labels, count, num_targets, seed):
  """The first ``count`` images repeated once per target, and the targets: for grid searches."""
  num_classes = np.asarray(logits_fn(images[:1])).shape[-1]
  targets = evaluation.target_classes(
    labels[:count], num_classes, num_targets=num_targets, seed=seed
  )
  return np.repeat(images[:count], targets.shape[1], axis=0), targets.reshape(-1)


def _l2(mean_l2: float) -> str:
  """A mean L2 cell; undefined (no success) as in `ddn_jax.evaluation.to_markdown`."""
  return '–' if np.isnan(mean_l2) else f'{mean_l2:.4f}'


def run(config: dict[str, Any], out, command: str) -> dict[str, Any]:
  start = time.perf_counter()
  spec = config['model']
  logits_fn = next(iter(_common.load_models(spec, [spec.get('defence', 'baseline')]).values()))
  images, labels = _common.evaluation_images(config['images'], logits_fn)
  num_targets, seed = config.get('num_targets'), config.get('seed', 0)
  mesh = training.data_mesh()
  evaluations, searches = [], {}
  for attack_spec in config['attacks']:
    kwargs = dict(attack_spec['kwargs'])
    if 'grid' in attack_spec:
      print(f'== grid search {attack_spec["name"]}', flush=True)
      pair_images, targets = _pairs(
        logits_fn, images, labels, attack_spec['grid_images'], num_targets, seed
      )
      search = _common.grid_search(
        attack_spec,
        logits_fn,
        pair_images,
        targets,
        targeted=True,
        mesh=mesh,
        batch_size=_common.batch_size(config, mesh),
      )
      kwargs.update(search['best'])
      searches[attack_spec['name']] = search
    print(f'== {attack_spec["name"]} {kwargs}', flush=True)
    result = evaluation.evaluate_targeted(
      functools.partial(_common.attack_fn(attack_spec), **kwargs),
      logits_fn,
      images,
      labels,
      name=attack_spec['name'],
      num_targets=num_targets,
      seed=seed,
      batch_size=_common.batch_size(config, mesh),
      mesh=mesh,
      keep_adv=attack_spec['attack'] == 'ddn',
    )
    evaluations.append(result)
    print(result.pairs.summary, result.least_likely.summary, sep='\n', flush=True)

  stem = f'targeted_{config["name"]}'
  out.mkdir(parents=True, exist_ok=True)
  rows = [
    {
      'attack': e.pairs.name,
      'average_success': e.pairs.summary.success_rate,
      'average_mean_l2': e.pairs.summary.mean_l2,
      'least_likely_success': e.least_likely.summary.success_rate,
      'least_likely_mean_l2': e.least_likely.summary.mean_l2,
      'mean_grads': e.pairs.summary.mean_grads,
      'seconds': e.pairs.summary.seconds,
    }
    for e in evaluations
  ]
  evaluation.write_csv(out / f'{stem}.csv', rows)
  ddn_rows = [e for e in evaluations if e.pairs.adv is not None]
  if ddn_rows:
    last = ddn_rows[-1]
    first = last.image_index == 0
    figure = plotting.adversarial_examples(
      np.repeat(images[:1], first.sum(), axis=0),
      np.repeat(labels[:1], first.sum()),
      {last.pairs.name: last.pairs.adv[first]},
      {last.pairs.name: np.asarray(logits_fn(last.pairs.adv[first])).argmax(-1)},
      max_images=int(first.sum()),
    )
    figure.savefig(out / f'{stem}_examples.png', dpi=120)

  per_image = len(evaluations[0].target) // len(images) if evaluations else 0
  lines = _report.header(f'Targeted attacks: {config["title"]}', command, config['notes'], start)
  lines += [
    (
      f'{len(images)} images × {per_image} targets = {len(images) * per_image} targeted attacks '
      'per row. Average case: over all (image, target) pairs; least likely: per image its worst '
      'target (failed if any target failed, else the largest norm). Success in %, mean L2 over '
      'successful attacks.'
    ),
    '',
    (
      '| Attack | Average success | Average mean L2 | Least-likely success | Least-likely mean L2 '
      '| #Grads | Run-time (s) |'
    ),
    '|---|---:|---:|---:|---:|---:|---:|',
  ]
  for row in rows:
    lines.append(
      f'| {row["attack"]} | {100 * row["average_success"]:.2f} | {_l2(row["average_mean_l2"])} '
      f'| {100 * row["least_likely_success"]:.1f} | {_l2(row["least_likely_mean_l2"])} '
      f'| {row["mean_grads"]:.0f} | {row["seconds"]:.1f} |'
    )
  lines.append('')
  lines += _common.grid_search_lines(searches)
  lines.append('')
  report = {
    'command': command,
    'machine': _report.machine(),
    'config': config,
    'num_images': len(images),
    'rows': rows,
    'grid_searches': searches,
    'per_pair': {e.pairs.name: {'target': e.target, 'norms': e.pairs.norms} for e in evaluations},
  }
  _report.write_outputs(out, stem, '\n'.join(lines), report)
  return report


def main(argv: list[str] | None = None) -> None:
  config, out, command = _report.parse_args(argv, __doc__.split('\n')[0], _MODULE)
  run(config, out, command)


if __name__ == '__main__':
  main()
