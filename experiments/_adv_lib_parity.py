"""What the side-by-side runs against adv-lib 0.2.8 share (`experiments.alma_parity`,
`experiments.fab_parity`): the same attack with the registry's adv-lib settings on both sides,
on the reference MNIST SmallCNN (`ddn_jax.reference.mnist_small_cnn`, held-out real digits) and
on the linear model of `ddn_jax.reference.LinearProblem` (exact minimal norms), and, where asked,
each side again on the digits moved by one float32 ulp (how far rounding alone moves a side).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ddn_jax import attacks, interop, reference, reports

_QUANTILES = ('0.05', '0.5', '0.95')
_HEADER = (
  'attack', 'model', 'images', 'steps', 'run', 'success', 'median L2', 'median L2 vs reference',
  'success agreement', 'per-example L2 ratio q0.05, q0.5, q0.95', 'L2 / exact min (q0.5, q0.95)',
  'grads / example', 's (compile s)',
)  # fmt: skip


def one_ulp(images, seed):
  """``images`` moved by one ulp up or down per pixel (seeded), clipped to [0, 1]."""
  up = np.random.default_rng(seed).random(images.shape) < 0.5
  moved = np.nextafter(images, np.where(up, np.float32(2), np.float32(-1)))
  return np.clip(moved, 0, 1).astype(np.float32)


def _setups(config):
  """``{name: (logits_fn, torch module, images, labels, exact minimal norms or None)}``."""
  mnist = reference.mnist_small_cnn(num_epochs=config['mnist_epochs'])
  x_test, y_test = mnist.split.held_out
  n = config['mnist_images']
  linear = reference.LinearProblem(config['linear_examples'], seed=0)
  module = interop.to_torch(mnist.state.model, mnist.state.variables)
  return {
    'mnist': (mnist.logits_fn, module, x_test[:n].astype(np.float32) / 255, y_test[:n], None),
    'linear': (linear.logits_fn, linear.torch_module(), linear.inputs, linear.labels,
               linear.min_norm),
  }  # fmt: skip


def _row(name, side, reference_side, min_norm):
  s = side.success
  row = {
    'run': name,
    'success': float(s.mean()),
    'median_l2': float(np.median(side.l2[s])) if s.any() else None,
    'grads': side.grads_per_example,
    'seconds': side.seconds,
    'compile_seconds': side.compile_seconds,
  }
  if reference_side is not None:
    stats = interop.comparison.agreement_stats(side, reference_side)
    row['median_l2_rel_diff'] = stats['median_l2_rel_diff']
    row['success_agreement'] = stats['success_agreement']
    quantiles = stats['l2_ratio_quantiles']
    row['l2_ratio'] = {q: quantiles[q] for q in _QUANTILES} if quantiles else None
  if min_norm is not None and s.any():
    ratio = side.l2[s] / min_norm[s]
    row['l2_over_min'] = {q: float(np.quantile(ratio, float(q))) for q in ('0.5', '0.95')}
  return row


def _cells(result, row):
  cell, ratio, over = reports.format_cell, row.get('l2_ratio'), row.get('l2_over_min')
  compile_s = row['compile_seconds']
  return [
    result['attack'],
    result['model'],
    result['num_images'],
    result['steps'],
    row['run'],
    cell(row['success'], '.3f'),
    cell(row['median_l2']),
    cell(row.get('median_l2_rel_diff'), '+.2%'),
    cell(row.get('success_agreement'), '.3f'),
    ', '.join(f'{ratio[q]:.4f}' for q in _QUANTILES) if ratio else '–',
    f'{over["0.5"]:.4f}, {over["0.95"]:.4f}' if over else '–',
    f'{row["grads"]:.0f}',
    f'{row["seconds"]:.1f}' + (f' ({compile_s:.1f})' if compile_s is not None else ''),
  ]


def run(config: dict[str, Any], report: reports.Report, *, attack: str | None = None) -> None:
  """Each experiment of the config (``attack``: a registry name, default ``attack``; ``model``:
  ``'mnist'`` or ``'linear'``; ``steps``; ``moved``) on both sides, into ``report``."""
  setups = _setups(config)
  report.add_text(config['notes'])
  results = report.data.setdefault('results', [])
  for experiment in config['experiments']:
    logits_fn, module, images, labels, min_norm = setups[experiment['model']]
    name = attacks.get_attack(experiment.get('attack', attack)).function.__name__
    hparams = {**interop.DEFAULT_HPARAMS[name], 'steps': experiment['steps']}
    inputs = {'': images}
    if experiment['moved']:
      inputs[' moved 1 ulp'] = one_ulp(images, config['seed'])
    runs = {}
    for suffix, x in inputs.items():
      runs['adv-lib' + suffix] = interop.comparison.run_adv_lib(name, module, x, labels, hparams)
      runs['ddn_jax' + suffix] = interop.comparison.run_ddn_jax(
        name, logits_fn, x, labels, hparams, warmup=True
      )
    # Each run against adv-lib's on the same images; a moved run against its own side's.
    reference_of = {'adv-lib': None, 'ddn_jax': 'adv-lib'}
    reference_of.update({'adv-lib moved 1 ulp': 'adv-lib', 'ddn_jax moved 1 ulp': 'ddn_jax'})
    rows = [_row(name, side, runs.get(reference_of[name]), min_norm) for name, side in runs.items()]
    experiment = {'attack': experiment.get('attack', attack), **experiment}
    results.append({**experiment, 'num_images': len(images), 'hparams': hparams, 'rows': rows})
    table = [_cells(r, row) for r in results for row in r['rows']]
    report.add_table(reports.markdown_table(_HEADER, table, align='llrrlrrrrrrrr'), key='table')
    report.write()  # After each experiment: an interrupted run keeps what it finished.
