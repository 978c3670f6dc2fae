"""Tables 2-4 of the paper: targeted C&W and DDN, average case and least-likely case.

Every attacked image is attacked towards every other class (9 on MNIST and CIFAR-10) or
``num_targets`` random ones (100 on ImageNet), with `ddn_jax.evaluation.evaluate_targeted`. The
average case summarises all (image, target) pairs; the least-likely case takes, per image, its
worst target (a failure if any, else the largest norm). C&W rows with a ``grid`` are first
grid-searched on the pairs of the first ``grid_images`` images. Writes ``targeted_<name>.md``,
``.json``, ``.csv`` (one row per attack and case, `ddn_jax.reports.targeted_rows`) and
``targeted_<name>_examples.png`` (DDN's targeted adversarial examples of the first image, one
per target) under ``--out``. A row with ``num_images`` attacks the pairs of the first ones only.
Each row's finished batches (and grid search) are kept under ``--workdir`` (default
``runs/experiments``)``/targeted_<name>``: rerunning the same command continues an interrupted
run; a changed row, model or image set is refused, not mixed in.

  python -m experiments.attacks_targeted --config experiments/configs/targeted_local.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddn_jax import evaluation, plotting, reports, training
from experiments import _common, _report

_MODULE = 'experiments.attacks_targeted'


def _pairs(images, labels, count, num_classes, num_targets, seed):
  """The first ``count`` images repeated once per target, and the targets: for grid searches."""
  targets = evaluation.target_classes(
    labels[:count], num_classes, num_targets=num_targets, seed=seed
  )
  return np.repeat(images[:count], targets.shape[1], axis=0), targets.reshape(-1)


def run(config: dict[str, Any], out, command: str, workdir=None) -> dict[str, Any]:
  stem = f'targeted_{config["name"]}'
  workdir = None if workdir is None else workdir / stem
  title = f'Targeted attacks: {config["title"]}'
  report = reports.Report(out / stem, title=title, command=command)
  spec = config['model']
  logits_fn = next(iter(_common.load_models(spec, [spec.get('defence', 'baseline')]).values()))
  images, labels = _common.evaluation_images(config['images'], logits_fn)
  num_targets, seed = config.get('num_targets'), config.get('seed', 0)
  num_classes = np.asarray(logits_fn(images[:1])).shape[-1]
  per_image = num_targets or num_classes - 1
  mesh = training.data_mesh()
  evaluations, searches = [], {}
  for attack_spec in config['attacks']:
    searched = (  # a grid search runs on the (image, target) pairs of its first images
      _pairs(images, labels, attack_spec['grid_images'], num_classes, num_targets, seed)
      if 'grid' in attack_spec
      else (images, labels)
    )
    attack, search = _common.tuned_attack(
      attack_spec,
      logits_fn,
      *searched,
      targeted=True,
      mesh=mesh,
      batch_size=_common.batch_size(config['batch_size'], mesh),
      workdir=workdir,
    )
    if search is not None:
      searches[attack.label] = search
    count, name = _common.row_images(attack_spec, len(images), attack.label)
    print(f'== {name}', flush=True)
    result = evaluation.evaluate_targeted(
      attack.function,
      logits_fn,
      images[:count],
      labels[:count],
      name=name,
      num_targets=num_targets,
      seed=seed,
      batch_size=_common.batch_size(min(config['batch_size'], count * per_image), mesh),
      mesh=mesh,
      keep_adv=attack_spec['attack'] == 'ddn',
      resume_dir=None if workdir is None else workdir / evaluation.folder_name(name),
    )
    evaluations.append(result)
    print(result.pairs.summary, result.least_likely.summary, sep='\n', flush=True)

  report.add_text(config['notes'])
  report.add_text(
    f'{len(images)} images × {per_image} targets = {len(images) * per_image} targeted attacks '
    'per attack (fewer where a row says "first N images"). Average case: over all (image, target) pairs; least likely: per image its worst '
    'target (failed if any target failed, else the largest norm). Success in %, mean L2 over '
    'successful attacks; the median counts a failure as the distance to a uniform grey image.'
  )
  rows = reports.targeted_rows(evaluations)
  report.add_table(reports.targeted_table(evaluations), rows)
  if searches:
    report.add_text('\n'.join(_common.grid_search_lines(searches)))
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
    caption = f'{last.pairs.name} targeted adversarial examples of the first image'
    report.add_figure(figure, f'{stem}_examples.png', caption=caption)
  report.data.update(
    config=config,
    num_images=len(images),
    rows=rows,
    grid_searches=searches,
    per_pair={e.pairs.name: {'target': e.target, 'norms': e.pairs.norms} for e in evaluations},
  )
  print(report.write())
  return report.data


def main(argv: list[str] | None = None) -> None:
  run(*_report.parse_args_resumable(argv, __doc__.split('\n')[0], _MODULE))


if __name__ == '__main__':
  main()
