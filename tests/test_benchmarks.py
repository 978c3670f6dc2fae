"""The benchmark command runs end to end at its tiny size and writes well-formed results.

No timing is asserted: only that every section ran (or recorded why not) and that the JSON and
markdown are complete.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest
from optional_deps import require

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _run(*args, module='benchmarks.run', timeout=900):
  # A fresh process with JAX's defaults (one CPU device), not the tests' 8 forced devices.
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  return subprocess.run(
    [sys.executable, '-m', module, *args],
    cwd=ROOT,
    env=env,
    capture_output=True,
    text=True,
    timeout=timeout,
    check=False,
  )


@pytest.fixture(scope='module')
def tiny_results(tmp_path_factory):
  for package in ('torch', 'adv_lib', 'foolbox'):  # the three implementations side by side
    require(package)
  out = tmp_path_factory.mktemp('bench')
  proc = _run(
    '--preset',
    'tiny',
    '--attacks',
    'ddn',
    '--sections',
    'gradient,attacks,scaling,sweep',
    '--out',
    str(out),
    '--tag',
    'tiny',
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads((out / 'tiny.json').read_text()), (out / 'tiny.md').read_text()


def test_tiny_run_writes_every_section(tiny_results):
  result, _ = tiny_results
  assert result['preset_name'] == 'tiny'
  assert result['machine']['backend'] == 'cpu'
  assert len(result['load_start']) == len(result['load_end']) == 3
  (grad,) = result['gradient']
  (ddn,) = result['attacks']
  assert grad['model'] == 'small_cnn' and grad['jax_s'] > 0 and grad['torch_s'] > 0
  assert grad['jax_in_loop_s'] > 0 and ddn['bare_grad_in_loop_s'] > 0
  assert ddn['attack'] == 'DDN-2' and ddn['errors'] == {}
  assert set(ddn['results']) == {'ddn_jax', 'adv_lib', 'foolbox'}
  for row in ddn['results'].values():
    # Every implementation ran DDN-2: exactly 2 gradients per example (counted, not assumed).
    assert row['grads_per_example'] == 2.0
    assert row['median_s'] > 0 and row['overhead'] > 0 and row['overhead_vs_loop'] > 0
  assert ddn['results']['ddn_jax']['time_ratio_vs_ddn_jax'] == 1.0
  for section in ('scaling_batch', 'scaling_steps'):
    assert result[section] and all('error' not in p for p in result[section]), result[section]
    assert all(p['peak_rss_bytes'] >= p['rss_before_bytes'] > 0 for p in result[section])
    assert all(p['overhead_vs_loop'] > 0 for p in result[section])
  assert 'error' not in result['sweep'], result['sweep']
  assert result['sweep']['points'] == 2 and result['sweep']['vmapped_s'] > 0


def test_tiny_run_markdown_has_the_tables(tiny_results):
  result, markdown = tiny_results
  assert markdown.startswith(f'# Benchmark results: {result["tag"]}')
  for heading in ('## Model gradient', '## Attacks, side by side', '## Scaling with the batch'):
    assert heading in markdown
  assert '| small_cnn | DDN-2 | 4 | adv_lib |' in markdown
  assert 'No GPU in this run' in markdown


def test_unknown_names_are_rejected():
  proc = _run('--preset', 'tiny', '--attacks', 'ddn,nope', timeout=300)
  assert proc.returncode == 2
  assert "unknown attack(s) ['nope']" in proc.stderr


def test_compaction_benchmark_compares_equal_programs(tmp_path):
  args = ['--batches', '16', '--repeats', '1', '--train-steps', '0', '--attacks', 'DeepFool-100']
  proc = _run(*args, '--out', str(tmp_path), module='benchmarks.compaction', timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (path,) = tmp_path.glob('compaction-*.json')
  (row,) = json.loads(path.read_text())['rows']
  # The plain and the compacting loop found the same points with the same budget.
  assert row['plain_s'] > 0 and row['compacting_s'] > 0
  assert row['same_num_grads'] and row['max_adv_difference'] < 1e-5
  assert (tmp_path / path.name.replace('.json', '.md')).read_text().startswith('# Compacting')
