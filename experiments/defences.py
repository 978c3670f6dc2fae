"""Tables 5-6 and Figures 4-5 of the paper: robustness of a baseline, a Madry and a DDN model.

The models are the defences of an `experiments/adversarial_training.py` config, trained there
(or here on first use) and reloaded from their checkpoints. Each is attacked with C&W, DeepFool
and DDN (the paper: C&W 9×10000, DeepFool 100, DDN 1000) via `ddn_jax.evaluation`; the "All"
row keeps per image the smallest successful perturbation of the three (`combine_best`). Writes
under ``--out``:

* ``defences_<name>.md`` / ``.json`` / ``.csv`` — Table 5/6: success, mean and median L2 and
  the accuracy at ε of every attack and of All, per defence;
* ``defences_<name>_robustness.png`` — Fig. 4: accuracy under All vs ε, one line per defence;
* ``defences_<name>_examples.png`` — Fig. 5: DDN's adversarial examples of the first images
  against each model, with their norms and predicted classes.

  python -m experiments.defences --config experiments/configs/defences_local.py
"""

from __future__ import annotations

import functools
import time
from typing import Any

import numpy as np

from ddn_jax import evaluation, plotting, training
from experiments import _common, _report

_MODULE = 'experiments.defences'


def _evaluate(config, logits_fn, images, labels, mesh):
  evaluations = []
  for spec in config['attacks']:
    print(f'== {spec["name"]}', flush=True)
    evaluations.append(
      evaluation.evaluate_attack(
        functools.partial(_common.attack_fn(spec), **spec['kwargs']),
        logits_fn,
        images,
        labels,
        name=spec['name'],
        batch_size=_common.batch_size(config, mesh),
        mesh=mesh,
        keep_adv=spec['attack'] == 'ddn',
      )
    )
    print(evaluations[-1].summary, flush=True)
  return [*evaluations, evaluation.combine_best(evaluations, name='All')]


def run(config: dict[str, Any], out, command: str) -> dict[str, Any]:
  start = time.perf_counter()
  defences = config['defences']
  logits_fns = _common.load_models(config['model'], list(defences))
  images, labels = _common.evaluation_images(config['images'])
  mesh = training.data_mesh()
  eps = config['epsilon']
  results, csv_rows, curves, adversarials, predictions = {}, [], {}, {}, {}
  for defence, title in defences.items():
    print(f'== defence {defence}', flush=True)
    logits_fn = logits_fns[defence]
    clean = float(np.mean(np.asarray(logits_fn(images)).argmax(-1) == labels))
    evaluations = _evaluate(config, logits_fn, images, labels, mesh)
    results[defence] = {'clean_accuracy': clean, 'evaluations': evaluations}
    for e in evaluations:
      accuracy = evaluation.robust_accuracy(e.norms, [eps])[float(eps)]
      csv_rows.append({'defence': title, **vars(e.summary), f'accuracy_at_{eps:g}': accuracy})
    curve = evaluation.robustness_curve(
      evaluations[-1].norms, np.linspace(0, config['max_epsilon'], 101)
    )
    curves[title] = (curve.epsilons, curve.accuracy)
    ddn_row = [e for e in evaluations if e.adv is not None][-1]
    adversarials[title] = ddn_row.adv
    predictions[title] = np.asarray(logits_fn(ddn_row.adv)).argmax(-1)

  stem = f'defences_{config["name"]}'
  out.mkdir(parents=True, exist_ok=True)
  plotting.robust_accuracy(curves, title=f'{config["title"]}: accuracy under All').savefig(
    out / f'{stem}_robustness.png', dpi=120
  )
  plotting.adversarial_examples(
    images, labels, adversarials, predictions, max_images=config['figure5_images']
  ).savefig(out / f'{stem}_examples.png', dpi=120)
  evaluation.write_csv(out / f'{stem}.csv', csv_rows)

  lines = _report.header(f'Defence evaluation: {config["title"]}', command, config['notes'], start)
  lines += [
    (
      f'{len(images)} test images. Success in %, L2 in [0, 1] pixel units, the median counting a '
      f'failure as the distance to a uniform grey image; accuracy at ε ≤ {eps:g}: correctly '
      'classified and no adversarial example of that row within ε. All: per image the smallest '
      'successful perturbation of the three attacks.'
    ),
    '',
    (
      f'| Defence | Clean acc. | Attack | Success | Mean L2 | Median L2 | Acc. at ε ≤ {eps:g} '
      '| #Grads | Run-time (s) |'
    ),
    '|---|---:|---|---:|---:|---:|---:|---:|---:|',
  ]
  for row in csv_rows:
    defence = next(d for d, t in defences.items() if t == row['defence'])
    lines.append(
      f'| {row["defence"]} | {100 * results[defence]["clean_accuracy"]:.1f} | {row["attack"]} '
      f'| {100 * row["success_rate"]:.1f} | {row["mean_l2"]:.4f} | {row["median_l2"]:.4f} '
      f'| {100 * row[f"accuracy_at_{eps:g}"]:.1f} | {row["mean_grads"]:.0f} '
      f'| {row["seconds"]:.1f} |'
    )
  lines += [
    '',
    (
      f'Figure 4 (`{stem}_robustness.png`): accuracy under All vs ε. Figure 5 '
      f'(`{stem}_examples.png`): DDN adversarial examples of the first '
      f'{config["figure5_images"]} images against each model.'
    ),
    '',
  ]
  report = {
    'command': command,
    'machine': _report.machine(),
    'config': config,
    'num_images': len(images),
    'rows': csv_rows,
    'clean_accuracy': {d: r['clean_accuracy'] for d, r in results.items()},
    'robustness_curves': {
      title: {'epsilons': c[0], 'accuracy': c[1]} for title, c in curves.items()
    },
    'per_example_l2': {d: {e.name: e.norms for e in r['evaluations']} for d, r in results.items()},
  }
  _report.write_outputs(out, stem, '\n'.join(lines), report)
  return report


def main(argv: list[str] | None = None) -> None:
  config, out, command = _report.parse_args(argv, __doc__.split('\n')[0], _MODULE)
  run(config, out, command)


if __name__ == '__main__':
  main()
