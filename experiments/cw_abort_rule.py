"""C&W's early-abort rules at the same budget: per example, per batch (adv-lib's), none.

Runs `ddn_jax.attacks.carlini_wagner_l2` with each ``abort_early`` rule of the config, and
adv-lib 0.2.8's C&W (its per-batch rule) on the same weights and images, on: the reference MNIST
SmallCNN (`ddn_jax.reference.mnist_small_cnn`, held-out real digits); the linear model of
`ddn_jax.reference.LinearProblem` (exact minimal norms known); a CifarCNN trained briefly on
CIFAR-shaped real images (digits padded to 32×32 and repeated over 3 channels: no CIFAR-10
training set is available offline). Writes ``cw_abort_rule.{md,json,csv}`` under ``--out``.

  python -m experiments.cw_abort_rule --config experiments/configs/cw_abort_rule.py
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
import optax

from ddn_jax import interop, models, reference, reports, training
from experiments import _report

_MODULE = 'experiments.cw_abort_rule'
_HEADER = (
  'model', 'images', 'budget (lr, C)', 'rule', 'success', 'median L2', 'vs adv-lib', 'mean L2',
  'L2 / exact min (median, q0.95)', 'grads / example', 's (incl. compile)',
)  # fmt: skip


def _as_cifar(images):
  return np.repeat(np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)


def _cifar_cnn(train, epochs):
  """A CifarCNN trained with the reference optimiser (Adam 1e-3, batches of 64, seed 0)."""
  images = _as_cifar(train[0])
  state = training.create_train_state(
    models.CifarCNN(),
    rng=jax.random.key(0),
    input_shape=(1, *images.shape[1:]),
    optimizer=optax.adam(reference.LEARNING_RATE),
  )
  state, _ = training.fit(
    state, (images, train[1]), num_epochs=epochs, batch_size=64, progress=False
  )
  return models.make_logits_fn(state.model, state.variables), state


def _setups(config):
  """``{name: (logits_fn, torch module, images, labels, exact minimal norms or None)}``."""
  mnist = reference.mnist_small_cnn(num_epochs=config['mnist_epochs'])
  (x_test, y_test), n, m = mnist.split.held_out, config['mnist_images'], config['cifar_images']
  cifar_fn, cifar = _cifar_cnn(mnist.split.train, config['cifar_epochs'])
  linear = reference.LinearProblem(config['linear_examples'], seed=0)
  to_torch = lambda s: interop.to_torch(s.model, s.variables)
  return {
    'mnist': (mnist.logits_fn, to_torch(mnist.state), x_test[:n].astype(np.float32) / 255, y_test[:n],
              None),
    'linear': (linear.logits_fn, linear.torch_module(), linear.inputs, linear.labels,
               linear.min_norm),
    'cifar': (cifar_fn, to_torch(cifar), _as_cifar(x_test[:m]).astype(np.float32) / 255, y_test[:m],
              None),
  }  # fmt: skip


def _row(side, ref, min_norm):
  s = side.success
  row = {
    'success': float(s.mean()),
    'median_l2': float(np.median(side.l2[s])) if s.any() else None,
    'mean_l2': float(np.mean(side.l2[s])) if s.any() else None,
    'grads': side.grads_per_example,
    'seconds': side.seconds,
  }
  if ref is not None:
    stats = interop.comparison.agreement_stats(side, ref)
    row['median_l2_vs_adv_lib'] = stats['median_l2_rel_diff']
    row['success_agreement'] = stats['success_agreement']
  if min_norm is not None and s.any():  # Norms relative to the exact minimum, over the successes.
    ratio = side.l2[s] / min_norm[s]
    row['l2_over_min'] = {q: float(np.quantile(ratio, float(q))) for q in ('0.5', '0.95')}
  return row


def _cells(result, rule, row):
  b, cell = result['budget'], reports.format_cell
  over = row.get('l2_over_min')
  return [
    result['model'],
    result['num_images'],
    f'{b["binary_search_steps"]}×{b["steps"]} ({b["learning_rate"]}, {b["initial_const"]})',
    rule,
    cell(row['success'], '.3f'),
    cell(row['median_l2']),
    cell(row.get('median_l2_vs_adv_lib'), '+.2%'),
    cell(row['mean_l2']),
    f'{over["0.5"]:.3f}, {over["0.95"]:.3f}' if over else '–',
    f'{row["grads"]:.0f}',
    f'{row["seconds"]:.0f}',
  ]


def run(config: dict[str, Any], report: reports.Report) -> None:
  setups = _setups(config)
  report.add_text(config['notes'])
  results = report.data.setdefault('results', [])
  for experiment in config['experiments']:
    logits_fn, module, images, labels, min_norm = setups[experiment['model']]
    n = experiment.get('num_images', len(images))
    images, labels, min_norm = images[:n], labels[:n], None if min_norm is None else min_norm[:n]
    budget = experiment['budget']
    ref = None
    if experiment['adv_lib']:
      ref = interop.comparison.run_adv_lib(
        'carlini_wagner_l2', module, images, labels, {**budget, 'abort_early': 'batch'}
      )
    rows = {}
    for rule in config['rules']:
      hparams = {**budget, 'abort_early': rule}
      side = interop.comparison.run_ddn_jax(
        'carlini_wagner_l2', logits_fn, images, labels, hparams, warmup=False
      )
      rows[repr(rule)] = _row(side, ref, min_norm)
    if ref is not None:
      rows['adv-lib'] = _row(ref, None, min_norm)
    results.append({**experiment, 'num_images': len(images), 'rows': rows})
    table = [_cells(r, rule, row) for r in results for rule, row in r['rows'].items()]
    report.add_table(reports.markdown_table(_HEADER, table, align='lrllrrrrrrr'), key='table')
    report.write()  # After each experiment: an interrupted run keeps what it finished.


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem='cw_abort_rule',
    title="C&W's early-abort rule",
    run=run,
    torch=True,
  )


if __name__ == '__main__':
  main()
