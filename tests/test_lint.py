"""The tree passes ruff's lint and format checks with the project's configuration."""

import pathlib
import shutil
import subprocess
import sys

import pytest
from optional_deps import in_ci

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _ruff() -> str:
  path = shutil.which('ruff', path=str(pathlib.Path(sys.executable).parent)) or shutil.which('ruff')
  if path is None:
    message = 'ruff is not installed; it is part of the dev extra (pip install -e .[dev]).'
    if in_ci():
      pytest.fail(message)
    pytest.skip(message)
  return path


@pytest.mark.parametrize('args', [['check', '.'], ['format', '--check', '.']])
def test_ruff(args):
  proc = subprocess.run([_ruff(), *args], cwd=ROOT, capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stdout + proc.stderr
