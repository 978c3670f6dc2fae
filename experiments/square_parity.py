"""Square Attack (L2) against torchattacks 3.5.1's on the same weights and images.

Runs `ddn_jax.attacks.square_l2` and torchattacks' ``Square(norm='L2')`` with the same budget on
the reference MNIST SmallCNN (`ddn_jax.reference.mnist_small_cnn`, held-out real digits), for a
few seeds on each side, and compares their robust accuracy with its spread across seeds. Writes
``square_parity.{md,json}`` under ``--out``. Needs torchattacks (``pip install --no-deps
torchattacks==3.5.1``; no test needs it).

  python -m experiments.square_parity --config experiments/configs/square_parity.py
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks, interop, reference, reports
from experiments import _report

_MODULE = 'experiments.square_parity'
_HEADER = (
  'eps', 'queries', 'side', 'robust accuracy per seed', 'mean', 'std over seeds',
  'mean vs torchattacks', 'max L2 / eps', 'forwards / digit', 's per run',
)  # fmt: skip


def _run_ours(logits_fn, images, labels, eps, queries, seed):
  keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(np.arange(len(images)))
  start = time.perf_counter()
  r = attacks.square_l2(logits_fn, images, labels, eps=eps, queries=queries, key=keys)
  jax.block_until_ready(r.adv)
  return {
    'robust': float(1 - np.mean(r.success)),
    'max_l2': float(np.max(r.l2)),
    'forwards': float(np.mean(r.extras['num_forwards'])),
    'seconds': time.perf_counter() - start,
  }


def _run_torchattacks(module, images, labels, eps, queries, seed):
  import torch
  import torchattacks

  x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
  attack = torchattacks.Square(
    module, norm='L2', eps=eps, n_queries=queries, n_restarts=1, p_init=0.8, seed=seed
  )
  start = time.perf_counter()
  adv = attack(x, torch.from_numpy(labels.astype(np.int64)))
  seconds = time.perf_counter() - start
  with torch.no_grad():
    pred = module(adv).argmax(1).numpy()
  l2 = np.linalg.norm((adv - x).numpy().reshape(len(images), -1), axis=1)
  return {'robust': float(np.mean(pred == labels)), 'max_l2': float(l2.max()), 'forwards': None,
          'seconds': seconds}  # fmt: skip


def _summary(runs):
  robust = np.array([r['robust'] for r in runs])
  return {
    'robust': robust.tolist(),
    'mean': float(robust.mean()),
    'std': float(robust.std(ddof=1)) if len(robust) > 1 else None,
    'max_l2': max(r['max_l2'] for r in runs),
    'forwards': None
    if runs[0]['forwards'] is None
    else float(np.mean([r['forwards'] for r in runs])),
    'seconds': float(np.mean([r['seconds'] for r in runs])),
  }


def _cells(result, side, s, reference_side):
  cell = reports.format_cell
  diff = None if reference_side is None else s['mean'] - reference_side['mean']
  return [
    f'{result["eps"]:g}',
    result['queries'],
    side,
    ', '.join(f'{v:.2f}' for v in s['robust']),
    cell(s['mean'], '.3f'),
    cell(s['std'], '.3f'),
    cell(diff, '+.3f'),
    f'{s["max_l2"] / result["eps"]:.7f}',
    cell(s['forwards'], '.0f'),
    f'{s["seconds"]:.1f}',
  ]


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
  for experiment in config['experiments']:
    eps, queries = experiment['eps'], experiment['queries']
    sides = {
      'torchattacks': [
        _run_torchattacks(module, images, labels, eps, queries, s) for s in config['seeds']
      ],
      'ddn_jax': [
        _run_ours(mnist.logits_fn, images, labels, eps, queries, s) for s in config['seeds']
      ],
    }
    summaries = {side: _summary(runs) for side, runs in sides.items()}
    results.append({**experiment, 'num_images': n, 'clean_accuracy': clean, 'sides': summaries})
    table = [
      _cells(r, side, s, None if side == 'torchattacks' else r['sides']['torchattacks'])
      for r in results
      for side, s in r['sides'].items()
    ]
    report.add_table(reports.markdown_table(_HEADER, table, align='rrllrrrrrr'), key='table')
    report.write()  # After each experiment: an interrupted run keeps what it finished.


def main(argv: list[str] | None = None) -> None:
  _report.run_experiment(
    argv,
    doc=__doc__,
    module=_MODULE,
    stem='square_parity',
    title='Square Attack: ddn_jax against torchattacks',
    run=run,
    torch=True,
  )


if __name__ == '__main__':
  main()
