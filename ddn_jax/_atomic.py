"""Files written whole or not at all: the one way the package replaces a file it may be reading
back after a kill (resume files, checkpoint records, reports, figures)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from typing import IO


def write_atomically(path: str | os.PathLike, write: Callable[[IO[bytes]], object]) -> None:
  """``write(file)`` to a temporary file beside ``path``, flushed to disk, then renamed over it:
  a reader (or a run resumed after a crash) sees the old file or the whole new one, never part
  of it; a failure while writing leaves the old file as it was."""
  path = pathlib.Path(path)
  temporary = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
  try:
    with open(temporary, 'wb') as f:
      write(f)
      f.flush()
      os.fsync(f.fileno())
    os.replace(temporary, path)
  finally:
    temporary.unlink(missing_ok=True)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
  """`write_atomically` of ``text`` as UTF-8, its line endings as given."""
  write_atomically(path, lambda f: f.write(text.encode()))
