"""Tables 5-6 and Figures 4-5 of the paper: robustness of a baseline, a Madry and a DDN model.

The models are the defences of an `experiments/adversarial_training.py` config, trained there
(or here on first use) and reloaded from their checkpoints. Each is attacked with C&W, DeepFool
and DDN (the paper: C&W 9×10000, DeepFool 100, DDN 1000) via `ddn_jax.evaluation`; the "All"
row keeps per image the smallest successful perturbation of the three (`combine_best`; of
those that attacked every image, where a row has ``num_images`` and attacks only the first
ones). Each model's rows keep their finished batches under ``--workdir``
``/defences_<name>/<defence>``: rerunning the command continues an interrupted run. Writes
under ``--out``:

* ``defences_<name>.md`` / ``.json`` / ``.csv`` — Table 5/6 (`ddn_jax.reports.defence_table`):
  success, mean and median L2 and the accuracy at ε of every attack and of All, per defence;
* ``defences_<name>_autoattack.csv`` — with ``autoattack`` in the config (below), its rows;
* ``defences_<name>_robustness.png`` — Fig. 4: accuracy under All vs ε, one line per defence;
* ``defences_<name>_examples.png`` — Fig. 5: DDN's adversarial examples of the first images
  against each model, with their norms and predicted classes.

With ``autoattack`` (a list of ε) in the config, each model is also evaluated as RobustBench
does, with AutoAttack's standard L2 ensemble (`ddn_jax.evaluation.autoattack_l2`) at each ε,
beside All's accuracy at the same ε (``autoattack_components``: another ensemble, as
`autoattack_l2`'s ``components``).

  python -m experiments.defences --config experiments/configs/defences_local.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddn_jax import evaluation, plotting, reports, training
from experiments import _common, _report

_MODULE = 'experiments.defences'


def _evaluate(config, logits_fn, images, labels, workdir):
  """The config's attack rows (`_common.run_rows`), then All: per image, the best of the rows
  that attacked every image (a row with ``num_images`` attacks only the first ones)."""
  evaluations, _ = _common.run_rows(
    config, logits_fn, images, labels, workdir=workdir, keep_adv_of={'ddn'}
  )
  complete = [e for e in evaluations if len(e.l2) == len(images)]
  return [*evaluations, evaluation.combine_best(complete, name='All')], complete


def _autoattack(config, logits_fn, images, labels, all_row, workdir):
  """``evaluation.autoattack_l2`` at each ε of ``config['autoattack']``, beside All: a row per
  ε with the robust accuracy after each component, All's accuracy at ε (the minimum-norm
  attacks) and the accuracy under both (robust to AutoAttack and no All adversarial within ε)."""
  mesh = training.data_mesh()
  rows = []
  for eps in config['autoattack']:
    print(f'== AutoAttack L2 at eps={eps:g}', flush=True)
    result = evaluation.autoattack_l2(
      logits_fn,
      images,
      labels,
      eps=eps,
      components=config.get('autoattack_components'),
      batch_size=_common.batch_size(config['batch_size'], mesh),
      mesh=mesh,
      resume_dir=None if workdir is None else workdir / f'autoattack_{eps:g}',
    )
    print('\n'.join(result.lines()), flush=True)
    all_robust = all_row.norms > eps  # per image; NaN (a non-finite model) is never robust
    rows.append(
      {
        'epsilon': eps,
        'clean_accuracy': result.clean_accuracy,
        **{f'after_{c.name}': c.robust_accuracy for c in result.components},
        'autoattack': result.robust_accuracy,
        'all': evaluation.robust_accuracy(all_row.norms, [eps])[float(eps)],
        'autoattack_and_all': float((result.robust & all_robust).mean()),
        'box_violations': sum(c.num_box_violations for c in result.components),
        # The components' attack time, also of those read back from the workdir (their run's).
        'seconds': sum(c.seconds for c in result.components),
      }
    )
  return rows


def _autoattack_table(rows: list[dict[str, Any]]) -> str:
  components = [k for k in rows[0] if k.startswith('after_')]
  header = ['Model', 'ε', 'clean', *(k.removeprefix('after_') for k in components)]
  header += ['All (min-norm)', 'AutoAttack and All', 'time (s)']
  return reports.markdown_table(
    header,
    [
      [
        r['defence'],
        f'{r["epsilon"]:g}',
        *(f'{100 * r[k]:.1f}' for k in ('clean_accuracy', *components)),
        f'{100 * r["all"]:.1f}',
        f'{100 * r["autoattack_and_all"]:.1f}',
        f'{r["seconds"]:.0f}',
      ]
      for r in rows
    ],
  )


def run(config: dict[str, Any], out, command: str, workdir=None) -> dict[str, Any]:
  stem = f'defences_{config["name"]}'
  report = reports.Report(
    out / stem, title=f'Defence evaluation: {config["title"]}', command=command
  )
  defences = config['defences']
  logits_fns = _common.load_models(config['model'], list(defences))
  images, labels = _common.evaluation_images(config['images'])
  eps = config['epsilon']
  evaluations, clean, curves, adversarials, predictions = {}, {}, {}, {}, {}
  autoattack = []
  for defence, title in defences.items():
    print(f'== defence {defence}', flush=True)
    logits_fn = logits_fns[defence]
    clean[defence] = float(np.mean(np.asarray(logits_fn(images)).argmax(-1) == labels))
    evaluations[defence], combined = _evaluate(
      config, logits_fn, images, labels, None if workdir is None else workdir / stem / defence
    )
    if 'autoattack' in config:
      autoattack += [
        {'defence': title, **row}
        for row in _autoattack(
          config,
          logits_fn,
          images,
          labels,
          evaluations[defence][-1],
          None if workdir is None else workdir / stem / defence,
        )
      ]
    curve = evaluation.robustness_curve(
      evaluations[defence][-1].norms, np.linspace(0, config['max_epsilon'], 101)
    )
    curves[title] = (curve.epsilons, curve.accuracy)
    ddn_row = [e for e in evaluations[defence] if e.adv is not None][-1]
    adversarials[title] = ddn_row.adv
    predictions[title] = np.asarray(logits_fn(ddn_row.adv)).argmax(-1)

  report.add_text(config['notes'])
  report.add_text(_common.resumed_text([e for rows in evaluations.values() for e in rows[:-1]]))
  report.add_text(
    f'{len(images)} test images. Success in %, L2 in [0, 1] pixel units, the median counting a '
    f'failure as the distance to a uniform grey image; accuracy at ε ≤ {eps:g}: correctly '
    'classified and no adversarial example of that row within ε. All: per image the smallest '
    f'successful perturbation of {", ".join(e.name for e in combined)}.'
  )
  # The tables name each model by its title.
  by_title = {defences[d]: e for d, e in evaluations.items()}
  rows = reports.defence_rows(by_title, epsilon=eps)
  clean_by_title = {defences[d]: c for d, c in clean.items()}
  report.add_table(
    reports.defence_table(by_title, epsilon=eps, clean_accuracy=clean_by_title), rows
  )
  if autoattack:
    report.add_text(
      "RobustBench's evaluation beside the paper's: robust accuracy (%) under AutoAttack's "
      'standard L2 ensemble (`evaluation.autoattack_l2`) after each component, under All at the '
      'same ε, and under both (robust to AutoAttack, no All adversarial within ε). Box '
      f'violations: {sum(r["box_violations"] for r in autoattack)} (must be 0).'
    )
    report.add_table(_autoattack_table(autoattack), autoattack, csv=f'{stem}_autoattack.csv')
  report.add_figure(
    plotting.robust_accuracy(curves, title=f'{config["title"]}: accuracy under All'),
    f'{stem}_robustness.png',
    caption='Figure 4: accuracy under All vs ε',
  )
  report.add_figure(
    plotting.adversarial_examples(
      images, labels, adversarials, predictions, max_images=config['figure5_images']
    ),
    f'{stem}_examples.png',
    caption=(
      f'Figure 5: DDN adversarial examples of the first {config["figure5_images"]} images '
      'against each model'
    ),
  )
  report.data.update(
    config=config,
    num_images=len(images),
    rows=rows,
    clean_accuracy=clean,
    robustness_curves={title: {'epsilons': c[0], 'accuracy': c[1]} for title, c in curves.items()},
    per_example_l2={d: {e.name: e.norms for e in attacks} for d, attacks in evaluations.items()},
    autoattack=autoattack,
  )
  print(report.write())
  return report.data


def main(argv: list[str] | None = None) -> None:
  run(*_report.parse_args_resumable(argv, __doc__.split('\n')[0], _MODULE))


if __name__ == '__main__':
  main()
