"""What every experiment script shares: its config file, its command line and its outputs.

Each script writes ``<out>/<stem>.md`` (headed by `header`: the command, the machine and its load,
the wall time) and ``<out>/<stem>.json`` (strict JSON, `ddn_jax.evaluation.write_json`).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import os
import pathlib
import shlex
import sys
import time
from typing import Any

from ddn_jax import evaluation

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


def machine() -> str:
  """CPU/devices, the load average (other jobs share this machine) and the UTC date."""
  load = ', '.join(f'{x:.2f}' for x in os.getloadavg())
  date = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
  return f'{evaluation.describe_machine()}; load average at the end {load}; {date}'


def header(title: str, command: str, notes: str, start: float) -> list[str]:
  """The markdown's title, command, machine, wall time since ``start`` (perf_counter), notes."""
  seconds = time.perf_counter() - start
  return [
    f'# {title}',
    '',
    f'Command: `{command}`',
    '',
    f'Machine: {machine()}. Wall time of the command: {seconds:.0f} s.',
    '',
    notes,
    '',
  ]


def write_outputs(out: pathlib.Path, stem: str, markdown: str, report: dict[str, Any]) -> None:
  """Writes ``<stem>.md`` and ``<stem>.json`` (strict JSON, `ddn_jax.evaluation.write_json`)."""
  out.mkdir(parents=True, exist_ok=True)
  (out / f'{stem}.md').write_text(markdown)
  evaluation.write_json(out / f'{stem}.json', report)
  print(markdown)
  print(f'wrote {out / stem}.*', flush=True)
