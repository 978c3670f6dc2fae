"""The benchmark's command line: `build_parser` and `main` (also ``ddn-jax bench``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from ddn_jax import attacks
from ddn_jax.benchmark import _distributed, _presets, _sections
from ddn_jax.benchmark._run import PROG, _execute, _plan, annotate


def _int_list(text: str) -> list[int]:
  try:
    return [int(v) for v in text.split(',')]
  except ValueError:
    raise argparse.ArgumentTypeError(f'expected a comma list of ints, got {text!r}') from None


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
  """The command's parser; ``prog`` is the command name shown in help and recorded in reports."""
  from ddn_jax import benchmark

  parser = argparse.ArgumentParser(prog=prog, description=benchmark.__doc__.split('\n\n')[0])
  parser.add_argument('--preset', choices=sorted(_presets.PRESETS), default='cpu')
  parser.add_argument('--models', help=f'comma list among {", ".join(_presets.MODELS)}')
  parser.add_argument(
    '--attacks',
    help=f'comma list among {", ".join(_presets.ATTACKS)} (default all; also filters the '
    "preset's compaction attacks)",
  )
  parser.add_argument(
    '--implementations',
    default=','.join(_presets.IMPLEMENTATIONS),
    help='comma list (default all)',
  )
  parser.add_argument(
    '--sections',
    default=','.join(_presets.SECTIONS),
    help='comma list of the sections to run (default all)',
  )
  parser.add_argument('--batch', type=int, help="images per attack call (overrides the preset's)")
  parser.add_argument('--steps', type=int, help='K of DDN K, C&W 1×K, ... (overrides the preset)')
  parser.add_argument('--repeats', type=int, help='timed rounds (overrides the preset)')
  parser.add_argument(
    '--compaction-batches',
    type=_int_list,
    help="comma list of the compaction section's batch sizes (overrides the preset's)",
  )
  parser.add_argument(
    '--compaction-attack',
    action='append',
    metavar='SPEC',
    help=f"an attack of the compaction section (repeat it; replaces the preset's). "
    f'{attacks.attack_help()}',
  )
  parser.add_argument(
    '--precision',
    choices=_presets.RUN_PRECISIONS,
    default='float32',
    help="the models' data type; FLOP/s are reported as a fraction of the device's peak in it",
  )
  parser.add_argument(
    '--single-thread',
    action='store_true',
    help='one thread on both sides (torch.set_num_threads(1), XLA without multi-threaded Eigen): '
    "on a shared machine, PyTorch's OpenMP threads otherwise spin-wait for a busy core",
  )
  parser.add_argument('--out', default='results/bench', help='directory for .json and .md')
  parser.add_argument('--tag', help='file name instead of the machine tag')
  parser.add_argument('--note', action='append', default=[], help='a line for the report')
  parser.add_argument(
    '--annotate',
    action='append',
    metavar='JSON',
    help='instead of running: add model FLOPs, the peak and FLOP/s to a recorded result and '
    'rewrite its .json and .md (repeat it for several files)',
  )
  parser.add_argument(
    '--measure-peak',
    action='store_true',
    help='with --annotate: measure a CPU peak the result lacks on this machine, if it is of the '
    "same kind (otherwise the peak stays unknown); an accelerator's comes from the table",
  )
  parser.add_argument('--point', help=argparse.SUPPRESS)  # model,batch,steps: one scaling point.
  # JSON [processes, process id, port, devices per process, config]: one distributed process.
  parser.add_argument('--distributed-point', help=argparse.SUPPRESS)
  return parser


def main(argv: Sequence[str] | None = None, *, prog: str = PROG) -> dict[str, Any] | None:
  """Runs the command line ``argv`` (default ``sys.argv[1:]``); returns `run`'s result."""
  argv = list(sys.argv[1:] if argv is None else argv)
  parser = build_parser(prog)
  args = parser.parse_args(argv)
  if args.point:
    model_name, batch, steps = args.point.split(',')
    print(json.dumps(_sections.point(model_name, int(batch), int(steps))))
    return None
  if args.distributed_point:
    timings = _distributed.point(*json.loads(args.distributed_point))
    if timings is not None:
      print(json.dumps(timings))
    return None
  if args.annotate:
    for path in args.annotate:
      annotate(path, measure_peak=args.measure_peak)
      print(f'annotated {path} and its .md', file=sys.stderr)
    return None
  split = lambda text: text.split(',') if text else None
  try:
    plan = _plan(
      args.preset,
      models=split(args.models),
      attack_names=split(args.attacks),
      implementations=split(args.implementations),
      sections=split(args.sections),
      batch=args.batch,
      steps=args.steps,
      repeats=args.repeats,
      compaction_batches=args.compaction_batches,
      compaction_attacks=args.compaction_attack,
      precision=args.precision,
    )
  except (ValueError, TypeError) as e:
    parser.error(str(e))
  command = ' '.join([prog, *argv])
  return _execute(
    plan,
    single_thread=args.single_thread,
    out=args.out,
    tag=args.tag,
    notes=args.note,
    command=command,
  )
