"""Writing results as strict JSON and as CSV tables."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ddn_jax import evaluation
from ddn_jax._atomic import write_text_atomically


def to_dict(obj: Any) -> Any:
  """Plain Python data of a result: dataclasses and NamedTuples become dicts, arrays lists.

  Floats stay floats (NaN and infinities included); see `write_json` for their encoding.
  """
  if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
    return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
  if isinstance(obj, tuple) and hasattr(obj, '_asdict'):
    return {k: to_dict(v) for k, v in obj._asdict().items()}
  if isinstance(obj, Mapping):
    return {k: to_dict(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [to_dict(v) for v in obj]
  if isinstance(obj, (np.ndarray, np.generic)) or hasattr(obj, '__array__'):
    return np.asarray(obj).tolist()
  return obj


def _finite_or_none(obj: Any) -> Any:
  if isinstance(obj, float) and not math.isfinite(obj):
    return None
  if isinstance(obj, dict):
    return {k: _finite_or_none(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_finite_or_none(v) for v in obj]
  return obj


def write_text(path: str | os.PathLike[str], text: str) -> None:
  """Writes ``text`` to ``path`` atomically: a reader (or a crash) never sees half a file.

  A failure while writing leaves the previous file as it was. The line endings are written as
  given (CSV rows end in \\r\\n already).
  """
  write_text_atomically(path, text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
  """Writes ``to_dict(obj)`` as strict JSON (RFC 8259), atomically (see `write_text`).

  JSON has no NaN or infinity, so NaN, ``inf`` and ``-inf`` (e.g. the mean L2 of an attack that
  never succeeded, the minimal norm of an example the attack failed on) are written as
  ``null``, as JavaScript's ``JSON.stringify`` does; `read_json` reads them back as None.
  Mapping keys that are numbers (e.g. the ε of `ddn_jax.evaluation.robust_accuracy`) become
  strings, as in any JSON.
  """
  text = json.dumps(_finite_or_none(to_dict(obj)), indent=1, allow_nan=False)
  write_text(path, text + '\n')


def _reject_constant(name: str) -> Any:
  raise ValueError(f'{name} is not JSON: the file was not written by a strict JSON writer.')


def read_json(path: str | os.PathLike[str]) -> Any:
  """Reads a strict JSON file, e.g. one of `write_json`, as plain dicts and lists.

  A ``null`` reads as None: in a file of `write_json` it stands for None, NaN or ±inf (e.g. an
  undefined mean L2, or the norm of a failed attack).

  Raises:
    ValueError: the file holds ``NaN`` or ``Infinity``, which are not JSON.
  """
  with open(path) as f:
    return json.load(f, parse_constant=_reject_constant)


def _forwards(e: evaluation.AttackEvaluation) -> list[int | None]:
  """Per example its forward passes, None (an empty cell) where unknown."""
  return [None] * len(e.success) if e.num_forwards is None else e.num_forwards.tolist()


def _rows(obj: Any) -> list[dict[str, Any]]:
  if isinstance(obj, evaluation.AttackEvaluation):
    columns = (obj.success, obj.l2, obj.num_grads, obj.worst_l2, obj.model_finite)
    return [
      {
        'attack': obj.name,
        'example': i,
        'success': s,
        'l2': l2,
        'num_grads': g,
        'num_forwards': fw,
        'worst_l2': w,
        'model_finite': f,
      }
      for i, (s, l2, g, w, f, fw) in enumerate(zip(*(a.tolist() for a in columns), _forwards(obj)))
    ]
  if isinstance(obj, evaluation.TargetedEvaluation):
    pairs = obj.pairs
    columns = (
      obj.image_index,
      obj.target,
      pairs.success,
      pairs.l2,
      pairs.num_grads,
      pairs.model_finite,
    )
    return [
      {
        'attack': pairs.name,
        'image': i,
        'target': t,
        'success': s,
        'l2': l2,
        'num_grads': g,
        'num_forwards': fw,
        'model_finite': f,
      }
      for i, t, s, l2, g, f, fw in zip(*(a.tolist() for a in columns), _forwards(pairs))
    ]
  if isinstance(obj, evaluation.RobustnessCurve):
    return [
      {'epsilon': e, 'robust_accuracy': a}
      for e, a in zip(obj.epsilons.tolist(), obj.accuracy.tolist())
    ]
  if isinstance(obj, evaluation.SweepResult):
    return [{'attack': obj.attack, **row} for row in obj.rows()]
  if (dataclasses.is_dataclass(obj) and not isinstance(obj, type)) or isinstance(obj, Mapping):
    row = to_dict(obj)
    nested = [k for k, v in row.items() if isinstance(v, (dict, list))]
    if nested:
      raise ValueError(f'A CSV row must hold scalars; {nested} are not.')
    return [row]
  if isinstance(obj, Sequence) and not isinstance(obj, str):
    return [row for item in obj for row in _rows(item)]
  raise TypeError(f'Cannot write a {type(obj).__name__} as CSV rows.')


def _cell(value: Any) -> str:
  if value is None:
    return ''
  if isinstance(value, float):
    return repr(value)  # shortest round-trip form; 'nan', 'inf', '-inf' parse with float()
  return str(value)


def write_csv(path: str | os.PathLike[str], rows: Any) -> None:
  """Writes results as a CSV table with a header, atomically (see `write_text`).

  ``rows`` is one result or a sequence of them (their rows are concatenated, the header is the
  union of their columns in first-seen order, a missing cell is empty):

  - `AttackSummary` (or any dataclass or mapping of scalars): one row;
  - `AttackEvaluation`: one row per example (attack, example, success, l2, num_grads,
    num_forwards (empty where unknown), worst_l2, model_finite);
  - `TargetedEvaluation`: one row per pair (attack, image, target, success, l2, num_grads,
    num_forwards, model_finite);
  - `RobustnessCurve`: one row per ε (epsilon, robust_accuracy);
  - `SweepResult`: one row per grid point (attack, its hyperparameters, its summary).

  Floats are written in Python's shortest round-trip form, so ``float(cell)`` gives the value
  back, NaN and infinities as ``nan``, ``inf`` and ``-inf``; None is an empty cell and booleans
  are ``True``/``False``.

  Raises:
    ValueError: a row holds a nested value (a list or a mapping).
    TypeError: ``rows`` is none of the above.
  """
  table = _rows(rows)
  header = list(dict.fromkeys(k for row in table for k in row))
  text = io.StringIO(newline='')
  writer = csv.writer(text)
  writer.writerow(header)
  for row in table:
    writer.writerow([_cell(row.get(k)) for k in header])
  write_text(path, text.getvalue())
