"""bfloat16 against float32: the attacks' and the training step's fidelity on real digits.

For each attack of the config, runs it on the reference model's held-out digits with the
float32 and the bfloat16 logits function (`ddn_jax.models.make_logits_fn`), and reports both
sides' success (re-checked here on the float32 model) and median L2, and their per-example
agreement (`ddn_jax.interop.comparison.agreement_stats`). Then trains the reference model in each
precision, and in float32 with other seeds (the spread between float32 runs), and reports its
float32 accuracy on the same digits and DDN-100 against it. Writes
``precision_fidelity.{md,json}`` under ``--out``.

  python -m experiments.precision_fidelity --config experiments/configs/precision_fidelity.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ddn_jax import attacks, interop, models, reference, reports
from experiments import _report

_MODULE = 'experiments.precision_fidelity'
_PRECISIONS = ('float32', 'bfloat16')
_ATTACK_HEADER = (
  'attack', 'precision', 'success', 'median L2', 'vs float32', 'same success',
  'L2 ratio bfloat16 / float32 (min q0.05 q0.25 q0.5 q0.75 q0.95 max)', 'rejected by float32',
  's',
)  # fmt: skip
_TRAINING_HEADER = ('training', 'accuracy (float32)', 'DDN 100 success', 'DDN 100 median L2', 's')


def _float32_rejected(logits_fn, side, labels) -> int:
  """Successes the float32 model does not confirm on the returned points (must be 0)."""
  verdict = np.asarray(attacks.is_adversarial(logits_fn(side.adv), labels, False))
  return int(np.sum(side.success & ~verdict))


def _attack_rows(config, mnist, images, labels, report):
  f32 = models.make_logits_fn(mnist.state.model, mnist.state.variables)
  rows, table = [], []
  for spec in config['attacks']:
    sides = {}
    for precision in _PRECISIONS:
      fn = models.make_logits_fn(mnist.state.model, mnist.state.variables, precision=precision)
      sides[precision] = interop.comparison.run_ddn_jax(
        spec['attack'], fn, images, labels, spec['hparams'], warmup=False
      )
    stats = interop.comparison.agreement_stats(
      sides['bfloat16'], sides['float32'], names=('bfloat16', 'float32')
    )
    rejected = {p: _float32_rejected(f32, s, labels) for p, s in sides.items()}
    rows.append({'attack': spec['label'], 'stats': stats, 'float32_rejected': rejected})
    quantiles = stats['l2_ratio_quantiles'] or {}
    for precision in _PRECISIONS:
      table.append([
        spec['label'],
        precision,
        reports.format_cell(stats['success_rate'][precision], '.3f'),
        reports.format_cell(stats['median_l2'][precision]),
        reports.format_cell(stats['median_l2_rel_diff'], '+.2%') if precision != 'float32' else '',
        reports.format_cell(stats['success_agreement'], '.3f') if precision != 'float32' else '',
        ' / '.join(f'{v:.4f}' for v in quantiles.values()) if precision != 'float32' else '',
        rejected[precision],
        f'{stats["seconds"][precision]:.0f}',
      ])  # fmt: skip
    report.add_table(
      reports.markdown_table(_ATTACK_HEADER, table, align='llrrrrrrr'), key='attacks'
    )
    report.data['attacks'] = rows
    report.write()  # After each attack: an interrupted run keeps what it finished.


def _training_rows(config, mnist, images, labels, report):
  rows, table = [], []
  # float32 again with other seeds (initial weights, batch order): how far apart two float32
  # runs already are.
  runs = [(p, 0) for p in _PRECISIONS] + [('float32', s) for s in config['other_seeds']]
  for precision, seed in runs:
    start = time.perf_counter()
    state, history = reference.train_small_cnn(
      mnist.split.train, num_epochs=config['num_epochs'], seed=seed, precision=precision
    )
    seconds = time.perf_counter() - start
    # Evaluated in float32 whatever the training precision.
    fn = models.make_logits_fn(state.model, state.variables)
    accuracy = float(np.mean(np.asarray(attacks.predicted_class(fn(images))) == labels))
    side = interop.comparison.run_ddn_jax('ddn', fn, images, labels, {'steps': 100}, warmup=False)
    median = float(np.median(side.l2[side.success]))
    rows.append({
      'precision': precision,
      'seed': seed,
      'accuracy': accuracy,
      'history': history,
      'ddn_success': float(side.success.mean()),
      'ddn_median_l2': median,
      'seconds': seconds,
    })  # fmt: skip
    table.append([f'{precision}, seed {seed}', f'{accuracy:.4f}', f'{side.success.mean():.3f}', f'{median:.4f}',
                  f'{seconds:.0f}'])  # fmt: skip
  report.add_table(reports.markdown_table(_TRAINING_HEADER, table, align='lrrrr'), key='training')
  report.data['training'] = rows
  report.write()


def run(config: dict[str, Any], report: reports.Report) -> None:
  report.add_text(config['notes'])
  mnist = reference.mnist_small_cnn(num_epochs=config['num_epochs'])
  x, y = mnist.split.held_out
  images = x[: config['num_images']].astype(np.float32) / 255
  labels = y[: config['num_images']]
  _attack_rows(config, mnist, images, labels, report)
  _training_rows(config, mnist, images, labels, report)


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem='precision_fidelity',
    title='bfloat16 against float32',
    run=run,
    torch=False,
  )


if __name__ == '__main__':
  main()
