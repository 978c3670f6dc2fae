"""C&W's early-abort rules at the same budget: per example, per batch (adv-lib's), none.

Runs `ddn_jax.attacks.carlini_wagner_l2` with each ``abort_early`` rule of the config, and
adv-lib 0.2.8's C&W (its per-batch rule) on the same weights and images, on: the MNIST SmallCNN
trained as ``tests/conftest.py``'s ``mnist_cnn`` (held-out real digits); the linear model of
``tests/linear_model.py`` (exact minimal norms known); a CifarCNN trained briefly on CIFAR-shaped
real images (digits padded to 32×32 and repeated over 3 channels: no CIFAR-10 training set is
available offline). Writes ``cw_abort_rule.md`` / ``.json`` under ``--out``.

  python -m experiments.cw_abort_rule --config experiments/configs/cw_abort_rule.py
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np
import optax

from ddn_jax import models, training
from ddn_jax.interop import agreement_stats, run_adv_lib, run_ddn_jax, to_torch
from experiments import _report
from experiments.compare_pytorch import _mnist_split
from tests.linear_model import LinearProblem

_MODULE = 'experiments.cw_abort_rule'


def _train(model, images, labels, epochs):
  """``model`` trained as ``tests/conftest.py``'s ``mnist_cnn`` (Adam 1e-3, batch 64, seed 0)."""
  state = training.create_train_state(
    model, rng=jax.random.key(0), input_shape=(1, *images.shape[1:]), optimizer=optax.adam(1e-3)
  )
  state, _ = training.fit(state, (images, labels), num_epochs=epochs, batch_size=64, progress=False)
  return models.make_logits_fn(model, state.variables), to_torch(model, state.variables)


def _linear_torch(problem):
  import torch

  layer = torch.nn.Linear(*problem.w.shape)
  with torch.no_grad():
    layer.weight.copy_(torch.from_numpy(problem.w.T.copy()))
    layer.bias.copy_(torch.from_numpy(problem.b))
  # One channel: NCHW and NHWC flatten to the same order.
  return torch.nn.Sequential(torch.nn.Flatten(), layer)


def _setups(config):
  """``{name: (logits_fn, torch module, images, labels, exact minimal norms or None)}``."""
  (x_train, y_train), (x_test, y_test) = _mnist_split()
  n = config['mnist_images']
  mnist = _train(models.SmallCNN(), x_train, y_train, config['mnist_epochs'])
  linear = LinearProblem(config['linear_examples'], seed=0)
  as_cifar = lambda x: np.repeat(np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0))), 3, axis=-1)
  cifar = _train(models.CifarCNN(), as_cifar(x_train), y_train, config['cifar_epochs'])
  m = config['cifar_images']
  return {
    'mnist': (*mnist, x_test[:n].astype(np.float32) / 255, y_test[:n], None),
    'linear': (linear.logits_fn, _linear_torch(linear), linear.inputs, linear.labels,
               linear.min_norm),
    'cifar': (*cifar, as_cifar(x_test[:m]).astype(np.float32) / 255, y_test[:m], None),
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
    stats = agreement_stats(side, ref)
    row['median_l2_vs_adv_lib'] = stats['median_l2_rel_diff']
    row['success_agreement'] = stats['success_agreement']
  if min_norm is not None and s.any():  # Norms relative to the exact minimum, over the successes.
    ratio = side.l2[s] / min_norm[s]
    row['l2_over_min'] = {q: float(np.quantile(ratio, float(q))) for q in ('0.5', '0.95')}
  return row


def run(config: dict[str, Any], out, command: str) -> dict[str, Any]:
  start = time.perf_counter()
  setups = _setups(config)
  results = []
  for experiment in config['experiments']:
    logits_fn, module, images, labels, min_norm = setups[experiment['model']]
    n = experiment.get('num_images', len(images))
    images, labels, min_norm = images[:n], labels[:n], None if min_norm is None else min_norm[:n]
    budget = experiment['budget']
    ref = None
    if experiment['adv_lib']:
      ref = run_adv_lib(
        'carlini_wagner_l2', module, images, labels, {**budget, 'abort_early': True}
      )
    rows = {}
    for rule in config['rules']:
      side = run_ddn_jax(
        'carlini_wagner_l2', logits_fn, images, labels, {**budget, 'abort_early': rule},
        warmup=False,
      )  # fmt: skip
      rows[repr(rule)] = _row(side, ref, min_norm)
    if ref is not None:
      rows['adv-lib'] = _row(ref, None, min_norm)
    results.append({**experiment, 'num_images': len(images), 'rows': rows})
    # Rewritten after each experiment: an interrupted run keeps what it finished.
    report = _write(out, command, config, results, start)
  return report


def _write(out, command, config, results, start):
  lines = _report.header("C&W's early-abort rule", command, config['notes'], start)
  lines += [
    (
      '| model | images | budget (lr, C) | rule | success | median L2 | vs adv-lib | mean L2 '
      '| L2 / exact min (median, q0.95) | grads / example | s (incl. compile) |'
    ),
    '|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|',
  ]
  fmt = lambda v, spec: '–' if v is None else format(v, spec)
  for r in results:
    b = r['budget']
    budget = (
      f'{b["binary_search_steps"]}×{b["max_iterations"]} ({b["learning_rate"]}, '
      f'{b["initial_const"]})'
    )
    for rule, row in r['rows'].items():
      over = row.get('l2_over_min')
      over = f'{over["0.5"]:.3f}, {over["0.95"]:.3f}' if over else '–'
      lines.append(
        f'| {r["model"]} | {r["num_images"]} | {budget} | {rule} | {row["success"]:.3f} '
        f'| {fmt(row["median_l2"], ".4f")} | {fmt(row.get("median_l2_vs_adv_lib"), "+.2%")} '
        f'| {fmt(row["mean_l2"], ".4f")} | {over} '
        f'| {row["grads"]:.0f} | {row["seconds"]:.0f} |'
      )
  lines.append('')
  report = {'command': command, 'machine': _report.machine(), 'config': config, 'results': results}
  _report.write_outputs(out, 'cw_abort_rule', '\n'.join(lines), report)
  return report


def main(argv: list[str] | None = None) -> None:
  config, out, command = _report.parse_args(argv, __doc__.split('\n')[0], _MODULE)
  run(config, out, command)


if __name__ == '__main__':
  main()
