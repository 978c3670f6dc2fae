"""AutoAttack (L2) against torchattacks' ``AutoAttack`` on the same weights and images.

Runs torchattacks' ``AutoAttack(norm='L2', version='standard')`` and `ddn_jax.evaluation.
autoattack_l2` (with torchattacks' budgets, and standard) on the reference MNIST SmallCNN
(`ddn_jax.reference.mnist_small_cnn`, held-out real digits) at each ε of the config, and writes
their robust accuracy, the robust accuracy after each of our components, and times to
``autoattack_parity.{md,json}`` under ``--out``. Needs torchattacks (``pip install --no-deps
torchattacks==3.5.1``; no test needs it).

  python -m experiments.autoattack_parity --config experiments/configs/autoattack_parity.py
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ddn_jax import evaluation, interop, reference, reports
from experiments import _report

_MODULE = 'experiments.autoattack_parity'
_HEADER = ('eps', 'run', 'robust accuracy', 'vs torchattacks', 'after each component', 's')


def _torchattacks(module, images, labels, eps):
  import torch
  import torchattacks

  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  y = torch.from_numpy(labels.astype(np.int64))
  attack = torchattacks.AutoAttack(module, norm='L2', eps=eps, version='standard', seed=0)
  start = time.perf_counter()
  adv = attack(x, y)
  seconds = time.perf_counter() - start
  with torch.no_grad():
    robust = module(adv).argmax(1).numpy() == labels
  l2 = np.linalg.norm((adv - x).detach().numpy().reshape(len(labels), -1), axis=1)
  return {'robust': float(robust.mean()), 'max_l2': float(l2.max()), 'seconds': seconds,
          'after': None}  # fmt: skip


def _ours(logits_fn, images, labels, eps, components):
  start = time.perf_counter()
  result = evaluation.autoattack_l2(
    logits_fn, images, labels, eps=eps, components=components, batch_size=len(labels)
  )
  return {
    'robust': result.robust_accuracy,
    'max_l2': float(np.max(np.where(np.isfinite(result.l2), result.l2, 0))),
    'seconds': time.perf_counter() - start,
    'after': [(c.name, c.robust_accuracy) for c in result.components],
    'unverified': sum(c.num_unverified for c in result.components),
    'box_violations': sum(c.num_box_violations for c in result.components),
  }


def run(config: dict[str, Any], report: reports.Report) -> None:
  import torch

  torch.set_num_threads(1)
  mnist = reference.mnist_small_cnn(num_epochs=config['mnist_epochs'])
  x_test, y_test = mnist.split.held_out
  n = config['mnist_images']
  images, labels = x_test[:n].astype(np.float32) / 255, y_test[:n]
  module = interop.to_torch(mnist.state.model, mnist.state.variables)
  report.add_text(config['notes'])
  clean = float(np.mean(np.asarray(mnist.logits_fn(images)).argmax(1) == labels))
  report.add_text(f'Clean accuracy on these {n} digits: {clean:.2f}.')
  results = report.data.setdefault('results', [])
  rows = []
  for eps in config['epsilons']:
    runs = {
      'torchattacks AutoAttack (standard)': _torchattacks(module, images, labels, eps),
      "ddn_jax, torchattacks' budget": _ours(
        mnist.logits_fn, images, labels, eps, config['torchattacks_budget']
      ),
      'ddn_jax, standard (100 iterations)': _ours(mnist.logits_fn, images, labels, eps, None),
    }
    results.append({'eps': eps, 'num_images': n, 'clean_accuracy': clean, 'runs': runs})
    theirs = runs['torchattacks AutoAttack (standard)']['robust']
    for name, r in runs.items():
      after = '' if r['after'] is None else ', '.join(f'{c} {a:.2f}' for c, a in r['after'])
      diff = None if r['after'] is None else r['robust'] - theirs
      rows.append([f'{eps:g}', name, f'{r["robust"]:.2f}', reports.format_cell(diff, '+.2f'),
                   after, f'{r["seconds"]:.1f}'])  # fmt: skip
    report.add_table(reports.markdown_table(_HEADER, rows, align='rlrrlr'), key='table')
    report.write()  # After each ε: an interrupted run keeps what it finished.


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem='autoattack_parity',
    title='AutoAttack (L2): ddn_jax against torchattacks',
    run=run,
    torch=True,
  )


if __name__ == '__main__':
  main()
