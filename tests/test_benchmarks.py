"""The benchmark command runs end to end at its tiny size and writes well-formed results.

It runs as ``python -m ddn_jax.benchmark`` in a directory outside the checkout, with only the
``ddn_jax`` package importable (as after ``pip install``): no section may need the source tree.
No timing is asserted: only that every section ran (or recorded why not) and that the JSON and
markdown are complete.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
from optional_deps import require

from ddn_jax import attacks

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
  """``(env, cwd)``: a path holding only the ``ddn_jax`` package, and an empty directory."""
  site = tmp_path_factory.mktemp('site')
  (site / 'ddn_jax').symlink_to(ROOT / 'ddn_jax', target_is_directory=True)
  # A fresh process with JAX's defaults (one CPU device), not the tests' 8 forced devices.
  env = {k: v for k, v in os.environ.items() if k not in ('XLA_FLAGS', 'PYTHONPATH')}
  env['PYTHONPATH'] = str(site)
  cwd = tmp_path_factory.mktemp('work')
  probe = 'import importlib.util as u; print(u.find_spec("benchmarks"), u.find_spec("ddn_jax"))'
  proc = subprocess.run(
    [sys.executable, '-c', probe], cwd=cwd, env=env, capture_output=True, text=True, check=True
  )
  # The probe guards the test's premise: the checkout's scripts are out of reach.
  assert proc.stdout.startswith('None ') and str(site) in proc.stdout, proc.stdout
  return env, cwd


def _run(installed, *args, timeout=900):
  env, cwd = installed
  return subprocess.run(
    [sys.executable, '-m', 'ddn_jax.benchmark', *args],
    cwd=cwd,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )


@pytest.fixture(scope='module')
def tiny_results(installed):
  for package in ('torch', 'adv_lib', 'foolbox'):  # the three implementations side by side
    require(package)
  proc = _run(
    installed,
    '--preset',
    'tiny',
    '--attacks',
    'ddn,deepfool',
    '--sections',
    'gradient,attacks,compaction,scaling,sweep,persist,distributed',
    '--out',
    'bench',
    '--tag',
    'tiny',
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = installed[1] / 'bench'
  return json.loads((out / 'tiny.json').read_text()), (out / 'tiny.md').read_text()


def test_tiny_run_writes_every_section(tiny_results):
  result, _ = tiny_results
  assert result['preset_name'] == 'tiny' and result['complete']
  assert result['command'].startswith('python -m ddn_jax.benchmark --preset tiny')
  assert result['machine']['backend'] == 'cpu'
  assert len(result['load_start']) == len(result['load_end']) == 3
  (grad,) = result['gradient']
  ddn, deepfool = result['attacks']
  assert grad['model'] == 'small_cnn' and grad['jax_s'] > 0 and grad['torch_s'] > 0
  assert grad['jax_in_loop_s'] > 0 and ddn['bare_grad_in_loop_s'] > 0
  # The attack is the registry's, with adv-lib's settings and the preset's 2 steps.
  attack = attacks.parse_attack(ddn['spec'])
  assert attack.name == 'ddn' and attack.settings['steps'] == 2
  assert attack.settings['alpha_schedule'] == 'adv_lib' and ddn['attack'] == attack.label
  for row in (ddn, deepfool):
    assert row['errors'] == {}
    assert set(row['results']) == {'ddn_jax', 'adv_lib', 'foolbox'}
  for row in ddn['results'].values():
    # Every implementation ran DDN 2: exactly 2 gradients per example (counted, not assumed).
    assert row['grads_per_example'] == 2.0
    assert row['median_s'] > 0 and row['overhead'] > 0 and row['overhead_vs_loop'] > 0
  assert ddn['results']['ddn_jax']['time_ratio_vs_ddn_jax'] == 1.0
  for section in ('scaling_batch', 'scaling_steps'):
    assert result[section] and all('error' not in p for p in result[section]), result[section]
    assert all(p['peak_rss_bytes'] >= p['rss_before_bytes'] > 0 for p in result[section])
    assert all(p['overhead_vs_loop'] > 0 for p in result[section])
  assert 'error' not in result['sweep'], result['sweep']
  assert result['sweep']['points'] == 2 and result['sweep']['vmapped_s'] > 0
  persist = result['persist']
  assert 'error' not in persist, persist
  assert persist['batches'] == 2 and persist['plain_s'] > 0 and persist['persisted_s'] > 0
  # One process with one device, then two processes joined by jax.distributed.
  one, two = result['distributed']
  assert (one['processes'], one['devices'], two['processes'], two['devices']) == (1, 1, 2, 2)
  for row in (one, two):
    assert 'error' not in row and row['rounds'] == 1, row
    assert row['evaluate_s'] > 0 and row['sweep_s'] > 0 and row['sweep_efficiency'] > 0


def test_tiny_run_reports_flop_rates_against_the_measured_peak(tiny_results):
  result, _ = tiny_results
  # No table entry for a CPU: its peak is measured in the run, and said so.
  peak = result['peak']
  assert peak['precision'] == result['precision'] == 'float32' and peak['flops_per_s'] > 0
  assert peak['source'].startswith('measured')
  cost = result['model_flops']['small_cnn']
  assert cost['input_gradient'] > cost['forward'] > 0
  rates = [*result['gradient'][0]['flop_rates'].values()]
  rates += [r for a in result['attacks'] for r in (*a['results'].values(), a['bare_grad_in_loop'])]
  rates += [p[k] for s in ('scaling_batch', 'scaling_steps') for p in result[s] for k in ('ddn',)]
  rates += [result['sweep']['vmapped'], *(c[k] for c in result['compaction'] for k in ('plain',))]
  for r in rates:
    assert r['flops_per_s'] > 0 and r['fraction_of_peak'] == r['flops_per_s'] / peak['flops_per_s']


def test_tiny_run_compares_equal_compacting_and_plain_loops(tiny_results):
  result, _ = tiny_results
  # The tiny preset's compaction attacks, filtered by --attacks: DeepFool only.
  (row,) = result['compaction']
  assert 'error' not in row, row
  assert attacks.parse_attack(row['spec']).name == 'deepfool' and row['batch'] == 16
  assert row['plain_s'] > 0 and row['compacting_s'] > 0
  # The same points with the same budget, but for (at most) one example whose step count a
  # rounding difference between batch sizes flips.
  assert row['same_num_grads'] >= 15 / 16 and row['max_adv_difference'] < 1e-4


def test_tiny_run_markdown_has_the_tables(tiny_results):
  result, markdown = tiny_results
  assert markdown.startswith(f'# Benchmark results: {result["tag"]}')
  for heading in (
    '## Model gradient',
    '## Attacks, side by side',
    '## Scaling with the batch',
    '## Compacting loops',
    '## Cost of persisting batches for resume',
    '## Devices and processes',
  ):
    assert heading in markdown
  assert f'| small_cnn | {result["attacks"][0]["attack"]} | 4 | adv_lib |' in markdown
  assert f'| {result["compaction"][0]["attack"]} | 16 |' in markdown
  assert 'No GPU in this run' in markdown
  assert "- Peak for the run's precision (float32, computed as float32 on cpu): **" in markdown
  # Every attack row shows its FLOP/s and fraction of the peak, e.g. '1.2 G (3.4%)'.
  rate = re.compile(r'\| [0-9.]+ [MGT] \([0-9.e+-]+%\) \|')
  ddn = f'| small_cnn | {result["attacks"][0]["attack"]} | 4 |'
  rows = [line for line in markdown.splitlines() if line.startswith(ddn)]
  assert len(rows) == 3 and all(rate.search(row) for row in rows), rows


def test_unknown_names_and_bad_specs_are_rejected(installed):
  proc = _run(installed, '--preset', 'tiny', '--attacks', 'ddn,nope', timeout=300)
  assert proc.returncode == 2
  assert "unknown attack(s) ['nope']" in proc.stderr
  proc = _run(installed, '--preset', 'tiny', '--compaction-attack', 'deepfool:nope=1', timeout=300)
  assert proc.returncode == 2
  assert "unknown setting 'nope'" in proc.stderr
