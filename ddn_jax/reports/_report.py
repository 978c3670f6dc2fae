"""A report on disk: markdown, strict JSON, CSV and PNG figures, rewritten as results come in."""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import time
from typing import Any

from matplotlib.figure import Figure

from ddn_jax._atomic import write_atomically
from ddn_jax.reports._io import write_csv, write_json, write_text
from ddn_jax.reports._machine import describe_machine


@dataclasses.dataclass(frozen=True)
class _Block:
  markdown: str  # '' for CSV rows alone
  rows: Any = None
  csv: str | None = None


class Report:
  """A report of a run, written as ``<path>.md``, ``<path>.json``, ``<path>.csv`` and figures.

  The markdown starts with the title, the command, the machine (`describe_machine`) with its
  load average and the UTC date, and the wall time since ``start``; then come the blocks
  added (text, tables, figure links) in the order they were first added. The JSON holds
  ``command``, ``machine`` (that line) and then `data`, in strict JSON (`write_json`). The CSV
  holds the rows given with the tables (`write_csv`); rows may go to other CSV files too.
  Figures are saved as PNG when added, next to the markdown.

  Figures are saved when added; the markdown, JSON and CSV files when `write` is called, which
  rewrites them with everything added so far: call it after each step of a long run (e.g. each
  attack) so that a later failure loses nothing. A block added again under the same ``key``
  replaces the earlier one in place, e.g. a table that grows by one row per attack. Each file
  is replaced atomically, so an interrupted write leaves the previous version.

  Example::

    report = reports.Report(out / 'table1', title='Table 1: MNIST', command=command)
    report.add_text('50 images; success in %, L2 in [0, 1] pixel units.')
    for spec in specs:
      evaluations.append(evaluation.evaluate_attack(...))
      report.add_table(reports.attack_table(evaluations), [e.summary for e in evaluations],
                       key='table')
      report.data['rows'] = [e.summary for e in evaluations]
      report.write()

  Attributes:
    path: the files' path without extension; figures and other CSV files go to its directory.
    title: the markdown's title.
    command: the command that reruns the run, or None.
    data: what the JSON holds after ``command`` and ``machine`` (which it must not set).
  """

  def __init__(
    self,
    path: str | os.PathLike[str],
    *,
    title: str,
    command: str | None = None,
    machine: dict[str, Any] | None = None,
    start: float | None = None,
  ):
    """A report with no blocks yet.

    Args:
      path: where the files go, without extension, e.g. ``out / 'table1_mnist'``.
      title: the markdown's title.
      command: the command that reruns the run (e.g. ``shlex.join(sys.argv)``).
      machine: a `machine_info` dict to describe (default: `describe_machine`'s).
      start: the run's start as ``time.perf_counter()`` (default now), for the wall time.
    """
    self.path = pathlib.Path(path)
    self.title = title
    self.command = command
    self.data: dict[str, Any] = {}
    self._machine = machine
    self._start = time.perf_counter() if start is None else start
    self._blocks: dict[Any, _Block] = {}

  def _add(self, key: str | None, block: _Block) -> None:
    # An unkeyed block gets a key no other block has.
    self._blocks[object() if key is None else key] = block

  def add_text(self, text: str, *, key: str | None = None) -> None:
    """Adds a markdown paragraph (or several, or a heading)."""
    self._add(key, _Block(text.strip('\n')))

  def add_table(
    self, table: str, rows: Any = None, *, csv: str | None = None, key: str | None = None
  ) -> None:
    """Adds a markdown table (e.g. `attack_table`'s) and the rows behind it for the CSV.

    Args:
      table: the markdown.
      rows: anything `write_csv` takes, appended to the CSV's rows; None for none.
      csv: the CSV file's name in the report's directory (default ``<path>.csv``).
      key: replaces the block (table and rows) added earlier under this key.
    """
    self._add(key, _Block(table.strip('\n'), rows, csv))

  def add_rows(self, rows: Any, *, csv: str | None = None, key: str | None = None) -> None:
    """Adds CSV rows without a markdown table, e.g. per-example results (see `add_table`)."""
    self._add(key, _Block('', rows, csv))

  def add_figure(
    self, figure: Figure, filename: str, *, caption: str = '', key: str | None = None
  ) -> pathlib.Path:
    """Saves ``figure`` as a PNG in the report's directory now and links it in the markdown.

    Args:
      figure: e.g. from `ddn_jax.plotting`.
      filename: the PNG's name, e.g. ``'robust_accuracy.png'``.
      caption: the link's text.
      key: replaces the block added earlier under this key (default ``filename``).

    Returns:
      The PNG's path.
    """
    path = self.path.parent / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, lambda f: figure.savefig(f, format='png', dpi=120))
    self._add(filename if key is None else key, _Block(f'![{caption}]({filename})'))
    return path

  def machine_line(self) -> str:
    """The machine (`describe_machine`), its load average now and the UTC date."""
    load = ', '.join(f'{x:.2f}' for x in os.getloadavg())
    date = datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')
    return f'{describe_machine(self._machine)}; load average at the end {load}; {date}'

  def markdown(self) -> str:
    """The markdown of what has been added so far."""
    return self._markdown(self.machine_line())

  def _markdown(self, machine: str) -> str:
    lines = [f'# {self.title}', '']
    if self.command is not None:
      if '`' in self.command or '\n' in self.command:
        lines += ['Command:', '', '```bash', self.command, '```', '']
      else:
        lines += [f'Command: `{self.command}`', '']
    seconds = time.perf_counter() - self._start
    lines += [f'Machine: {machine}. Wall time of the command: {seconds:.0f} s.', '']
    for block in self._blocks.values():
      if block.markdown:
        lines += [block.markdown, '']
    return '\n'.join(lines)

  def write(self) -> str:
    """(Re)writes the markdown, the JSON and the CSV files; returns the markdown.

    Raises:
      ValueError: `data` has a ``command`` or ``machine`` key, which the report writes itself.
    """
    clash = [k for k in ('command', 'machine') if k in self.data]
    if clash:
      raise ValueError(f'Report.data must not set {clash}: the report writes them itself.')
    self.path.parent.mkdir(parents=True, exist_ok=True)
    machine = self.machine_line()
    header = {} if self.command is None else {'command': self.command}
    write_json(self._file('.json'), {**header, 'machine': machine, **self.data})
    tables: dict[str, list[Any]] = {}
    for block in self._blocks.values():
      if block.rows is not None:
        name = block.csv or f'{self.path.name}.csv'
        tables.setdefault(name, []).append(block.rows)
    for name, rows in tables.items():
      write_csv(self.path.parent / name, rows)
    markdown = self._markdown(machine)
    write_text(self._file('.md'), markdown)
    return markdown

  def _file(self, extension: str) -> pathlib.Path:
    return self.path.parent / f'{self.path.name}{extension}'
