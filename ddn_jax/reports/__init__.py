"""Reports of attack and defence evaluations: strict JSON and CSV, the paper's markdown tables
(Table 1, targeted, defences, sweeps, ddn_jax vs adv-lib), the machine they ran on, and a report
on disk that puts them together with figures and is rewritten as results come in."""

from ddn_jax.reports._attack_report import add_attack_results, add_examples_figure
from ddn_jax.reports._io import read_json, to_dict, write_csv, write_json
from ddn_jax.reports._machine import describe_machine, machine_info
from ddn_jax.reports._report import Report
from ddn_jax.reports._tables import (
  attack_table,
  comparison_table,
  defence_rows,
  defence_table,
  format_cell,
  markdown_table,
  robustness_rows,
  sweep_table,
  targeted_rows,
  targeted_table,
)

__all__ = [
  'Report',
  'add_attack_results',
  'add_examples_figure',
  'attack_table',
  'comparison_table',
  'defence_rows',
  'defence_table',
  'describe_machine',
  'format_cell',
  'machine_info',
  'markdown_table',
  'read_json',
  'robustness_rows',
  'sweep_table',
  'targeted_rows',
  'targeted_table',
  'to_dict',
  'write_csv',
  'write_json',
]
