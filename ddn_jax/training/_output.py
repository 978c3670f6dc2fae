"""Output directories: created if needed, and checked to be writable before any work starts."""

from __future__ import annotations

import os
import pathlib
import tempfile


def make_output_dir(path: str | os.PathLike) -> pathlib.Path:
  """Creates ``path`` (with its parents) if needed and checks that files can be written in it.

  Call it before a long computation whose results go to ``path``, so that a wrong path fails at
  once rather than after the work.

  Args:
    path: the output directory.

  Returns:
    ``path`` as a `pathlib.Path`.

  Raises:
    ValueError: ``path`` is an existing file, cannot be created, or is not writable.
  """
  path = pathlib.Path(path)
  if path.exists() and not path.is_dir():
    raise ValueError(f'{path} is a file, not a directory; give a directory for the outputs.')
  try:
    path.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise ValueError(f'Cannot create the output directory {path}: {e.strerror}.') from e
  try:
    with tempfile.TemporaryFile(dir=path):
      pass
  except OSError as e:
    raise ValueError(f'Cannot write in the output directory {path}: {e.strerror}.') from e
  return path
