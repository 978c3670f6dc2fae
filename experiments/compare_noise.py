"""How far float rounding alone moves the ddn_jax vs adv-lib comparisons of the tests.

Runs each attack of the comparison on both sides twice: on held-out real digits and on the same
digits moved by one float32 ulp (a seeded random direction per pixel, kept in [0, 1]), a change
of the size that another CPU's rounding makes. On the reference MNIST
SmallCNN (`ddn_jax.reference`; held-out digits after the first 100, which the tests attack), it
reports for each pair of runs (ddn_jax vs itself moved, adv-lib vs itself moved, ddn_jax vs
adv-lib) the statistics the tests bound, in blocks of the tests' 100 images: examples whose
success differs, the difference of the success counts, of the median L2, and quantiles of the
per-example L2 ratio. Writes ``compare_noise.{md,json,csv}`` under ``--out``.

  python -m experiments.compare_noise --config experiments/configs/compare_noise.py
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddn_jax import interop, reference, reports
from experiments import _report

_MODULE = 'experiments.compare_noise'
_QUANTILES = ('0.0', '0.05', '0.5', '0.95', '1.0')


def _one_ulp(images, seed):
  """``images`` moved by one ulp up or down per pixel (seeded), clipped to [0, 1]."""
  up = np.random.default_rng(seed).random(images.shape) < 0.5
  moved = np.nextafter(images, np.where(up, np.float32(2), np.float32(-1)))
  return np.clip(moved, 0, 1).astype(np.float32)


def _block_stats(a, b, block):
  """Per block of ``block`` examples: `interop.comparison.agreement_stats` reduced to what the tests bound."""
  rows = []
  for i in range(0, len(a.l2), block):
    a_i, b_i = (interop.comparison.SideResult(s.adv[i : i + block], s.l2[i : i + block],
                                   s.success[i : i + block], 0.0, 0.0) for s in (a, b))  # fmt: skip
    stats = interop.comparison.agreement_stats(a_i, b_i)
    quantiles = stats['l2_ratio_quantiles'] or dict.fromkeys(_QUANTILES)  # None: no common success
    rows.append(
      {
        'success_differs': int(np.sum(a_i.success != b_i.success)),
        'success_count_diff': int(a_i.success.sum()) - int(b_i.success.sum()),
        'median_l2_rel_diff': stats['median_l2_rel_diff'],
        **{f'ratio_q{k}': quantiles[k] for k in _QUANTILES},
      }
    )
  return rows


_HEADER = (
  'comparison', 'pair', 'success differs (total)', 'max abs success count diff',
  'max abs median L2 rel. diff', 'min ratio q0.05', 'max abs ratio q0.5 − 1', 'max ratio q0.95',
  'min ratio q0', 'max ratio q1',
)  # fmt: skip


def _cells(name, pair, rows):
  """The extremes over the blocks of `_block_stats`' ``rows`` (NaN where no block has a value)."""
  col = {k: [r[k] for r in rows if r[k] is not None] or [float('nan')] for k in rows[0]}
  return [
    name,
    pair,
    sum(col['success_differs']),
    max(map(abs, col['success_count_diff'])),
    f'{max(abs(v) for v in col["median_l2_rel_diff"]):.3%}',
    f'{min(col["ratio_q0.05"]):.4f}',
    f'{max(abs(v - 1) for v in col["ratio_q0.5"]):.5f}',
    f'{max(col["ratio_q0.95"]):.4f}',
    f'{min(col["ratio_q0.0"]):.4f}',
    f'{max(col["ratio_q1.0"]):.4f}',
  ]


def run(config: dict[str, Any], report: reports.Report) -> None:
  model = reference.mnist_small_cnn(num_epochs=config['epochs'])
  logits_fn = model.logits_fn
  module = interop.to_torch(model.state.model, model.state.variables)
  first, n = config['first_image'], config['num_images']
  x_test, y_test = model.split.held_out
  images, labels = x_test[first : first + n].astype(np.float32) / 255, y_test[first : first + n]
  moved = _one_ulp(images, config['seed'])
  report.add_text(config['notes'])
  report.add_text(
    f'{n} held-out digits from index {first}, in blocks of {config["block"]}; per pair of '
    'runs, the total over the blocks of examples whose success differs, then the extreme '
    'over the blocks of each other statistic.'
  )
  results = report.data.setdefault('results', {})
  for name, (attack, hparams) in config['comparisons'].items():
    runs = {}
    for m, x in enumerate((images, moved)):
      runs['ddn_jax', m] = interop.comparison.run_ddn_jax(
        attack, logits_fn, x, labels, hparams, warmup=False
      )
      runs['adv_lib', m] = interop.comparison.run_adv_lib(attack, module, x, labels, hparams)
    pairs = {
      'ddn_jax vs ddn_jax moved': (runs['ddn_jax', 0], runs['ddn_jax', 1]),
      'adv_lib vs adv_lib moved': (runs['adv_lib', 0], runs['adv_lib', 1]),
      'ddn_jax vs adv_lib': (runs['ddn_jax', 0], runs['adv_lib', 0]),
      'ddn_jax moved vs adv_lib moved': (runs['ddn_jax', 1], runs['adv_lib', 1]),
    }
    results[name] = {
      'attack': attack,
      'hparams': hparams,
      'pairs': {p: _block_stats(a, b, config['block']) for p, (a, b) in pairs.items()},
    }
    table = [_cells(k, p, rows) for k, e in results.items() for p, rows in e['pairs'].items()]
    report.add_table(reports.markdown_table(_HEADER, table, align='ll' + 'r' * 8), key='table')
    report.write()  # After each comparison: an interrupted run keeps what it finished.


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem='compare_noise',
    title='Rounding noise of the adv-lib comparison',
    run=run,
    torch=True,
  )


if __name__ == '__main__':
  main()
