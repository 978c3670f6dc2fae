"""mypy checks a user's code over the public API (tests/typing/public_api.py).

A control with a misspelt argument and a wrong result type must fail, so the check cannot pass
by seeing only ``Any``.
"""

import pathlib
import subprocess
import sys

import pytest
from optional_deps import require

HERE = pathlib.Path(__file__).resolve().parent
_CONTROL = """
from ddn_jax import attacks
def f(logits_fn: attacks.LogitsFn, x, y) -> int:
  attacks.ddn(logits_fn, x, y, stepz=3)
  return attacks.fgm_l2(logits_fn, x, y, eps=1.0)
"""


@pytest.fixture(scope='module')
def mypy(tmp_path_factory):
  require('mypy')
  cache = tmp_path_factory.mktemp('mypy_cache')  # shared: the second run reuses JAX's analysis

  def run(path):
    return subprocess.run(
      [sys.executable, '-m', 'mypy', '--follow-imports=silent', '--ignore-missing-imports']
      + [f'--cache-dir={cache}', str(path)],
      capture_output=True,
      text=True,
      check=False,
    )

  return run


def test_public_api_type_checks(mypy):
  run = mypy(HERE / 'typing' / 'public_api.py')
  assert run.returncode == 0, run.stdout + run.stderr


def test_a_wrong_call_fails_the_check(mypy, tmp_path):
  control = tmp_path / 'control.py'
  control.write_text(_CONTROL)
  run = mypy(control)
  assert run.returncode == 1, run.stdout
  assert 'Unexpected keyword argument "stepz"' in run.stdout
  assert 'Incompatible return value type (got "AttackResult", expected "int")' in run.stdout
