"""Writing evaluation results: JSON, CSV and a Table-1-style markdown table."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ddn_jax.evaluation._evaluate import AttackEvaluation
from ddn_jax.evaluation._robustness import RobustnessCurve
from ddn_jax.evaluation._summary import AttackSummary
from ddn_jax.evaluation._targeted import TargetedEvaluation

# JSON has no NaN or infinity; they are written as these strings (JavaScript's spelling).
_NON_FINITE = {'NaN': math.nan, 'Infinity': math.inf, '-Infinity': -math.inf}


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


def _encode(obj: Any) -> Any:
  if isinstance(obj, float) and not math.isfinite(obj):
    return 'NaN' if math.isnan(obj) else ('Infinity' if obj > 0 else '-Infinity')
  if isinstance(obj, dict):
    return {k: _encode(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_encode(v) for v in obj]
  return obj


def _decode(obj: Any) -> Any:
  if isinstance(obj, str):
    return _NON_FINITE.get(obj, obj)
  if isinstance(obj, dict):
    return {k: _decode(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_decode(v) for v in obj]
  return obj


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
  """Writes ``to_dict(obj)`` as strict JSON.

  NaN, ``inf`` and ``-inf`` (e.g. the mean L2 of an attack that never succeeded, the norm of a
  failed example) are written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``;
  `read_json` turns them back into floats. Mapping keys that are numbers (e.g. the ε of
  `robust_accuracy`) become strings, as in any JSON.
  """
  text = json.dumps(_encode(to_dict(obj)), indent=1, allow_nan=False)
  with open(path, 'w') as f:
    f.write(text + '\n')


def read_json(path: str | os.PathLike[str]) -> Any:
  """Reads a file of `write_json`: plain dicts and lists, non-finite floats decoded."""
  with open(path) as f:
    return _decode(json.load(f))


def _rows(obj: Any) -> list[dict[str, Any]]:
  if isinstance(obj, AttackEvaluation):
    columns = (obj.success, obj.l2, obj.num_grads, obj.worst_l2, obj.model_finite)
    return [
      {
        'attack': obj.name,
        'example': i,
        'success': s,
        'l2': l2,
        'num_grads': g,
        'worst_l2': w,
        'model_finite': f,
      }
      for i, (s, l2, g, w, f) in enumerate(zip(*(a.tolist() for a in columns)))
    ]
  if isinstance(obj, TargetedEvaluation):
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
        'model_finite': f,
      }
      for i, t, s, l2, g, f in zip(*(a.tolist() for a in columns))
    ]
  if isinstance(obj, RobustnessCurve):
    return [
      {'epsilon': e, 'robust_accuracy': a}
      for e, a in zip(obj.epsilons.tolist(), obj.accuracy.tolist())
    ]
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
  """Writes results as a CSV table with a header.

  ``rows`` is one result or a sequence of them (their rows are concatenated, the header is the
  union of their columns in first-seen order, a missing cell is empty):

  - `AttackSummary` (or any dataclass or mapping of scalars): one row;
  - `AttackEvaluation`: one row per example (attack, example, success, l2, num_grads,
    worst_l2, model_finite);
  - `TargetedEvaluation`: one row per pair (attack, image, target, success, l2, num_grads,
    model_finite);
  - `RobustnessCurve`: one row per ε (epsilon, robust_accuracy).

  Floats are written in Python's shortest round-trip form, so ``float(cell)`` gives the value
  back, NaN and infinities as ``nan``, ``inf`` and ``-inf``; None is an empty cell and booleans
  are ``True``/``False``.
  """
  table = _rows(rows)
  header = list(dict.fromkeys(k for row in table for k in row))
  with open(path, 'w', newline='') as f:
    writer = csv.writer(f)
    writer.writerow(header)
    for row in table:
      writer.writerow([_cell(row.get(k)) for k in header])


def to_markdown(rows: Sequence[AttackSummary | AttackEvaluation]) -> str:
  """A Table-1-style markdown table: Attack, Success, Mean L2, Median L2, #Grads, Run-time.

  Success is a percentage; an undefined mean L2 (no success) or an unmeasured run-time is
  shown as ``–``. If any row has examples where the model's logits at the clean image are not
  finite, a last column, Non-finite, counts them.

  Args:
    rows: summaries, or evaluations (their ``summary`` is used).
  """
  summaries = [row.summary if isinstance(row, AttackEvaluation) else row for row in rows]
  for row, s in zip(rows, summaries):
    if not isinstance(s, AttackSummary):
      raise TypeError(f'Rows must be AttackSummary or AttackEvaluation, got {type(row).__name__}.')
  nonfinite = any(s.num_nonfinite for s in summaries)
  lines = [
    '| Attack | Success (%) | Mean L2 | Median L2 | #Grads | Run-time (s) |'
    + (' Non-finite |' if nonfinite else ''),
    '|---|---:|---:|---:|---:|---:|' + ('---:|' if nonfinite else ''),
  ]
  for s in summaries:
    mean = '–' if math.isnan(s.mean_l2) else f'{s.mean_l2:.4f}'
    seconds = '–' if s.seconds is None else f'{s.seconds:.1f}'
    lines.append(
      f'| {s.attack} | {100 * s.success_rate:.1f} | {mean} | {s.median_l2:.4f} | '
      f'{s.mean_grads:.0f} | {seconds} |' + (f' {s.num_nonfinite} |' if nonfinite else '')
    )
  return '\n'.join(lines) + '\n'
