"""What every experiment script shares: its config file and its command line.

Each script writes its results with a `ddn_jax.reports.Report`: ``<out>/<stem>.md`` (the
command, the machine and its load, the wall time, tables and figures), ``<out>/<stem>.json``
(strict JSON) and ``<out>/<stem>.csv``.
"""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import shlex
import sys
import time
from collections.abc import Callable
from typing import Any

RESULTS_DIR = pathlib.Path(__file__).parent / 'results'


def load_config(path: str) -> dict[str, Any]:
  """The plain dict returned by ``get_config()`` of the config file at ``path``."""
  spec = importlib.util.spec_from_file_location('config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def command_line(module: str, argv: list[str] | None) -> str:
  """The command that reruns this experiment: ``python -m <module> <arguments>``."""
  return shlex.join(['python', '-m', module, *(sys.argv[1:] if argv is None else argv)])


def argument_parser(description: str, module: str) -> argparse.ArgumentParser:
  """A parser of ``python -m <module>`` with ``--config`` and ``--out``."""
  parser = argparse.ArgumentParser(prog=f'python -m {module}', description=description)
  parser.add_argument('--config', required=True, help='a config file with get_config()')
  parser.add_argument('--out', default=str(RESULTS_DIR), help='results directory')
  return parser


def parse_args(argv: list[str] | None, description: str, module: str):
  """``--config`` and ``--out``; returns the config, the output directory and the command."""
  args = argument_parser(description, module).parse_args(argv)
  return load_config(args.config), pathlib.Path(args.out), command_line(module, argv)


def parse_args_resumable(argv: list[str] | None, description: str, module: str):
  """As `parse_args`, and ``--workdir``: where each attack row's finished batches are kept, so
  that rerunning the command continues an interrupted run. Returns it fourth."""
  parser = argument_parser(description, module)
  parser.add_argument(
    '--workdir',
    default='runs/experiments',
    help="each row's finished batches, to resume an interrupted run (%(default)s)",
  )
  args = parser.parse_args(argv)
  config, out = load_config(args.config), pathlib.Path(args.out)
  return config, out, command_line(module, argv), pathlib.Path(args.workdir)


def run_experiment(
  argv: list[str] | None,
  *,
  doc: str,
  module: str,
  stem: str | Callable[[dict[str, Any]], str],
  title: str | Callable[[dict[str, Any]], str],
  run: Callable[[dict[str, Any], Any], None],
  torch: bool = False,
) -> None:
  """The ``main`` of an experiment that reports with one `ddn_jax.reports.Report`: parses
  ``--config``/``--out``, opens ``<out>/<stem>``, records the config and calls
  ``run(config, report)``.

  Args:
    argv: the arguments (None: ``sys.argv[1:]``).
    doc: the script's docstring (its first line describes the command).
    module: ``python -m`` name of the script.
    stem: the results' file stem, or a function of the config that makes it.
    title: the report's title, or a function of the config that makes it.
    run: the experiment.
    torch: import PyTorch first (adv-lib's or torchattacks' side), so the machine line records
      its threads.
  """
  from ddn_jax import reports  # pylint: disable=g-import-not-at-top

  start = time.perf_counter()
  config, out, command = parse_args(argv, doc.split('\n')[0], module)
  if torch:
    import torch as _  # noqa: F401
  stem, title = (v(config) if callable(v) else v for v in (stem, title))
  report = reports.Report(out / stem, title=title, command=command, start=start)
  report.data['config'] = config
  run(config, report)
