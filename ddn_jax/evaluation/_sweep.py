"""Hyperparameter sweeps: a grid of float hyperparameters as one ``vmap`` axis of one program.

The attacks trace their float hyperparameters (``gamma``, ``learning_rate``, ...), so a grid of
them is a batch axis: ``jax.vmap`` of the attack over the grid values, inside one ``jax.jit``,
runs every grid point at once and compiles once; new values of the same grid size reuse the
program. Integer, boolean and string hyperparameters (``steps``, ``binary_search_steps``, ...)
set the program itself, so each combination of them is a separate program, run in turn.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax import attacks
from ddn_jax._atomic import write_atomically
from ddn_jax.data import fingerprint
from ddn_jax.evaluation import _multihost
from ddn_jax.evaluation._evaluate import describe_attack, model_digest, open_resume_dir
from ddn_jax.evaluation._summary import (
  AttackSummary,
  num_forwards_of,
  summary_from_arrays,
  worst_case_l2,
)
from ddn_jax.sharding import DATA_AXIS, data_devices, replicate

# Arguments of the uniform attack signature that are not hyperparameters.
_NOT_HYPERPARAMETERS = ('logits_fn', 'inputs', 'labels', 'targeted', 'key')
# What one call of a sweep without a batch size may take (estimated: see `estimate_call_bytes`).
DEFAULT_MEMORY_BUDGET = 2 * 2**30
# What each call returns (and its resume file holds), per grid point and example;
# 'num_forwards' only where the attack's results count them.
_CALL_FIELDS = ('l2', 'success', 'num_grads', 'model_finite', 'num_forwards')


@dataclasses.dataclass(frozen=True)
class SweepResult:
  """Per grid point: the hyperparameters, the per-example results and their summary.

  Points are ordered with the static combinations outermost (in the order of ``static``) and the
  float grid innermost, each in the Cartesian-product order of its mapping.

  Attributes:
    attack: the attack's name.
    points: ``P`` dicts, the hyperparameters of each point (grid and static ones).
    l2: ``(P, N)`` L2 norm of each example's perturbation at each point.
    success: ``(P, N)`` bool, whether the example was made adversarial; never where the
      model's logits at the clean image are not finite.
    num_grads: ``(P, N)`` int, gradient evaluations spent on the example.
    summaries: ``P`` :class:`AttackSummary` (success rate, mean and median L2, gradients,
      forward passes, non-finite examples).
    seconds: wall time of the whole sweep, compilation included; a resumed sweep adds the time
      its saved calls took when they ran.
    model_finite: ``(P, N)`` bool, whether the model's logits at the clean image are finite.
    batch_size: examples per compiled call (each call runs all ``G`` grid points of them).
    num_calls: calls per static combination.
    call_bytes: the estimated memory of one call (`estimate_call_bytes`) where the batch size
      was chosen from a memory budget; None where it was given.
    calls_computed: calls run by this invocation, the others read back from ``resume_dir``
      (None: no ``resume_dir``).
    num_forwards: ``(P, N)`` int, forward passes of the model spent on the example
      (``extras['num_forwards']`` of the attack's results); None where unknown: an attack whose
      results lack the count, or a call read back from a ``resume_dir`` written before it was
      saved.
  """

  attack: str
  points: tuple[dict[str, Any], ...]
  l2: np.ndarray
  success: np.ndarray
  num_grads: np.ndarray
  summaries: tuple[AttackSummary, ...]
  seconds: float
  model_finite: np.ndarray | None = None
  batch_size: int | None = None
  num_calls: int | None = None
  call_bytes: int | None = None
  calls_computed: int | None = None
  num_forwards: np.ndarray | None = None

  def rows(self) -> list[dict[str, Any]]:
    """One dict per point for a results table: its hyperparameters, then its summary."""
    return [
      {
        **point,
        'success_rate': s.success_rate,
        'mean_l2': s.mean_l2,
        'median_l2': s.median_l2,
        'mean_grads': s.mean_grads,
        'mean_forwards': s.mean_forwards,
        'num_nonfinite': s.num_nonfinite,
      }
      for point, s in zip(self.points, self.summaries)
    ]


def _hyperparameters(attack: Callable[..., Any]) -> dict[str, inspect.Parameter]:
  parameters = inspect.signature(attack).parameters
  return {n: p for n, p in parameters.items() if n not in _NOT_HYPERPARAMETERS}


def _is_traced(parameter: inspect.Parameter) -> bool:
  """Whether the attack traces this hyperparameter: it is annotated (or defaults to) a float."""
  annotation = parameter.annotation
  if annotation is not inspect.Parameter.empty:
    return 'float' in (annotation if isinstance(annotation, str) else repr(annotation))
  return isinstance(parameter.default, float)


def _values(kind: str, name: str, values: Any) -> list[Any]:
  if isinstance(values, (str, bytes)) or not isinstance(values, Sequence | np.ndarray):
    raise TypeError(
      f'{kind}[{name!r}] must be a sequence of values to sweep, got {values!r}; '
      f'write [{values!r}] for a single value.'
    )
  if len(values) == 0:
    raise ValueError(f'{kind}[{name!r}] is empty: give at least one value.')
  return list(values)


def _check_names(attack_name, hyperparameters, grid, static) -> None:
  valid = ', '.join(hyperparameters)
  if not grid:
    raise ValueError(
      f'grid is empty: give at least one float hyperparameter of {attack_name} to vmap over.'
    )
  for kind, names in (('grid', grid), ('static', static)):
    for name in names:
      if name in ('targeted', 'key'):
        raise ValueError(f'{name!r} is not swept: pass it as sweep(..., {name}=...).')
      if name not in hyperparameters:
        raise ValueError(
          f'{attack_name} has no hyperparameter {name!r} (in {kind}); valid ones: {valid}.'
        )
  for name in grid:
    if name in static:
      raise ValueError(f'{name!r} is in both grid and static; give it once.')
    if not _is_traced(hyperparameters[name]):
      raise ValueError(
        f'{name!r} is a static hyperparameter of {attack_name} (it sets the compiled program), '
        f'so it cannot be a vmapped grid axis: pass it in static, e.g. static={{{name!r}: [...]}}.'
      )


def _grid_by_examples(attack, static, targeted, logits_fn, inputs, labels, keys, grid):
  """``(G, n)`` results by field (`_CALL_FIELDS`): ``attack`` at every grid point on every
  example alone, with its key."""

  def one(point, x, y, key):
    kwargs = {**static, **point} if key is None else {**static, **point, 'key': key}
    result = attack(logits_fn, x[None], y[None], targeted=targeted, **kwargs)
    finite = getattr(result, 'model_finite', None)  # None: a result built by hand
    finite = jnp.ones((), bool) if finite is None else finite[0]
    out = {
      'l2': result.l2[0],
      'success': result.success[0],
      'num_grads': result.num_grads[0],
      'model_finite': finite,
    }
    forwards = num_forwards_of(result)
    if forwards is not None:
      out['num_forwards'] = forwards[0]
    return out

  per_example = jax.vmap(one, in_axes=(None, 0, 0, 0))
  return jax.vmap(per_example, in_axes=(0, None, None, None))(grid, inputs, labels, keys)


@functools.partial(jax.jit, static_argnames=('attack', 'static', 'targeted', 'mesh'))
def _sweep_program(attack, logits_fn, inputs, labels, keys, grid, *, static, targeted, mesh):
  body = functools.partial(_grid_by_examples, attack, dict(static), targeted)
  if mesh is None:
    return body(logits_fn, inputs, labels, keys, grid)
  # vmap over the grid cannot enclose the attacks' own shard_map islands (the model's batched
  # convolutions would merge the grid axis into the sharded batch axis), so the island is here:
  # each device runs every grid point on its slice, with no communication.
  spec = jax.sharding.PartitionSpec
  return jax.shard_map(
    body,
    mesh=mesh,
    in_specs=(spec(), spec(DATA_AXIS), spec(DATA_AXIS), spec(DATA_AXIS), spec()),
    out_specs=spec(None, DATA_AXIS),
    check_vma=False,
  )(logits_fn, inputs, labels, keys, grid)


def _concatenate(parts: list[dict[str, np.ndarray]], axis: int) -> dict[str, np.ndarray]:
  """Each field of ``parts`` concatenated along ``axis``; a field that some part lacks (a count
  that an older resume file did not save) is unknown for the whole, and left out."""
  return {
    f: np.concatenate([p[f] for p in parts], axis=axis)
    for f in parts[0]
    if all(f in p for p in parts)
  }


def _chunks(num_examples: int, batch_size: int, multiple: int) -> tuple[int, int]:
  """The examples per call (a multiple of ``multiple``) and the number of calls."""
  size = min(batch_size, num_examples)
  size = -(-size // multiple) * multiple
  return size, -(-num_examples // size)


def _intermediate_bytes(jaxpr) -> int:
  total = 0
  for eqn in jaxpr.eqns:
    for v in eqn.outvars:
      total += int(np.prod(v.aval.shape)) * v.aval.dtype.itemsize
    for param in eqn.params.values():
      inner = getattr(param, 'jaxpr', None)
      if inner is not None:
        total += _intermediate_bytes(getattr(inner, 'jaxpr', inner))
  return total


def estimate_call_bytes(logits_fn: attacks.LogitsFn, example: jax.ShapeDtypeStruct) -> int:
  """An upper estimate of the memory one example at one grid point takes during an attack.

  Every intermediate value of the model's forward pass on one example (traced, nothing runs or
  compiles), three times over (the forward, what the backward keeps of it, the backward), plus
  sixteen copies of the example for the attack's own state (points, gradients, best points,
  optimiser moments). An estimate: XLA reuses buffers, so the real peak is usually lower.

  Args:
    logits_fn: the model.
    example: one example's shape and dtype, ``(1, H, W, C)``.
  """
  activations = _intermediate_bytes(jax.make_jaxpr(logits_fn)(example).jaxpr)
  return 3 * activations + 16 * int(np.prod(example.shape)) * example.dtype.itemsize


def sweep(
  attack: Callable[..., attacks.AttackResult],
  logits_fn: attacks.LogitsFn,
  inputs: Any,
  labels: Any,
  *,
  grid: Mapping[str, Sequence[float]],
  static: Mapping[str, Sequence[Any]] | None = None,
  mesh: jax.sharding.Mesh | None = None,
  batch_size: int | None = None,
  memory_budget: int = DEFAULT_MEMORY_BUDGET,
  targeted: bool = False,
  key: jax.Array | None = None,
  resume_dir: str | os.PathLike | None = None,
) -> SweepResult:
  """Runs ``attack`` at every point of a hyperparameter grid.

  The float hyperparameters in ``grid`` form one ``vmap`` axis of ``G`` points (their Cartesian
  product) inside a single jitted program, compiled once per combination of ``static`` values
  and batch shape: other values of the same grid size do not recompile. ``G`` points of a batch
  run at once, so memory grows with ``G × batch_size``: without a ``batch_size``, the largest
  batch whose estimated memory (`estimate_call_bytes` × ``G`` × batch) fits ``memory_budget``
  is used, at least one example per device; the result says how it was chunked.

  Example ``j`` at a point is attacked as by
  ``attack(logits_fn, inputs[j:j+1], labels[j:j+1], key=jax.random.fold_in(key, j), **point)``,
  so no result depends on ``batch_size`` or on the mesh (beyond float rounding, as the model
  sees batches of another size). Under ``jax.distributed``, every process calls it with the same
  arguments and a mesh over all their devices; each places only its devices' examples, and every
  process returns the whole result. Attacks without a key, or whose key only picks a direction
  where a gradient is exactly zero (DDN), give the same as the attack on the whole batch.

  Args:
    attack: an attack with the library's signature, e.g. `ddn_jax.attacks.ddn`.
    logits_fn: images ``(N, H, W, C)`` in [0, 1] -> logits ``(N, num_classes)``.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int labels (targets when ``targeted``).
    grid: traced (float) hyperparameter -> values, e.g. ``{'gamma': [0.02, 0.05, 0.1]}``.
    static: static hyperparameter -> values, e.g. ``{'steps': [100, 300]}``; one program per
      combination. Hyperparameters in neither keep the attack's defaults.
    mesh: if given, each batch is sharded along its ``'data'`` axis (each device attacks its
      slice for all grid points).
    batch_size: examples per call (default: chosen from ``memory_budget``); the last call is
      padded with repeated examples, so every call has the same shape. Rounded up to a
      multiple of the mesh size.
    memory_budget: bytes one call may take, when ``batch_size`` is None (default 2 GiB).
    targeted: passed to the attack.
    key: for attacks that take one (default ``jax.random.key(0)``); example ``j`` uses
      ``jax.random.fold_in(key, j)``.
    resume_dir: a directory where each finished call's per-example results are saved
      atomically (``batch_SSS_CCCCCC.npz``: static combination, call) beside a
      ``manifest.json``; a rerun with the same arguments reads them back instead of recomputing
      them, a rerun with other arguments (attack, grid, static values, chunking, targeted, key,
      data, model) is refused. Under ``jax.distributed``, process 0 writes it (a filesystem
      shared by the processes).

  Returns:
    A :class:`SweepResult` with ``P = G ×`` (number of static combinations) points.

  Raises:
    ValueError / TypeError: an unknown hyperparameter, a static one in ``grid``, an empty or
      non-sequence list of values, a value the attack rejects, bad inputs (or none), a mesh
      without a ``'data'`` axis, or a ``resume_dir`` holding another sweep.

  References:
    Rony et al., CVPR 2019, Section 4 (the grid search over C&W's learning rate and constant).
  """
  attack_name = getattr(attack, '__name__', type(attack).__name__)
  hyperparameters = _hyperparameters(attack)
  static = dict(static or {})
  _check_names(attack_name, hyperparameters, grid, static)
  grid_values = {name: _values('grid', name, v) for name, v in grid.items()}
  static_values = {name: _values('static', name, v) for name, v in static.items()}
  if batch_size is not None:
    batch_size = attacks.check_count('batch_size', batch_size)
  memory_budget = attacks.check_count('memory_budget', memory_budget)
  takes_key = 'key' in inspect.signature(attack).parameters
  if key is not None and not takes_key:
    raise ValueError(f'{attack_name} takes no key.')
  inputs, labels = attacks.validate_inputs(logits_fn, inputs, labels)
  if not len(inputs):
    raise ValueError(f'Cannot sweep {attack_name} over 0 examples.')
  inputs, labels = np.asarray(inputs), np.asarray(labels)
  logits_fn = attacks.as_pytree_fn(logits_fn)

  grid_points = [dict(zip(grid_values, v)) for v in itertools.product(*grid_values.values())]
  static_points = [dict(zip(static_values, v)) for v in itertools.product(*static_values.values())]
  # The attack's own checks of every value, on one abstract example: nothing runs.
  example = (jax.ShapeDtypeStruct((1, *inputs.shape[1:]), inputs.dtype),)
  example += (jax.ShapeDtypeStruct((1,), labels.dtype),)
  for s, g in itertools.product(static_points, grid_points):
    jax.eval_shape(functools.partial(attack, logits_fn, targeted=targeted, **s, **g), *example)

  num_shards = data_devices(mesh)
  call_bytes = None
  if batch_size is None:
    per_example = estimate_call_bytes(logits_fn, example[0]) * len(grid_points)
    fitting = memory_budget // per_example // num_shards * num_shards
    size, num_calls = _chunks(len(inputs), max(num_shards, fitting), num_shards)
    call_bytes = per_example * size
  else:
    size, num_calls = _chunks(len(inputs), batch_size, num_shards)
  # The last call repeats the last example up to the common shape.
  calls = np.minimum(np.arange(size * num_calls), len(inputs) - 1).reshape(num_calls, size)
  batched = replicated = None
  if mesh is not None:
    spec = jax.sharding.PartitionSpec
    batched = jax.sharding.NamedSharding(mesh, spec(DATA_AXIS))
    replicated = jax.sharding.NamedSharding(mesh, spec())
    if isinstance(logits_fn, jax.tree_util.Partial):  # parameters on every device of the mesh
      logits_fn = replicate(logits_fn, mesh)
  grid_arrays = {
    name: jax.device_put(np.asarray([p[name] for p in grid_points], inputs.dtype), replicated)
    for name in grid_values
  }
  base_key = attacks.default_key(key) if takes_key else None
  done: set[str] = set()
  if resume_dir is not None:
    resume_dir, done = open_resume_dir(
      resume_dir,
      {
        'name': attack_name,
        'attack': describe_attack(attack),
        'grid': {name: [float(v) for v in values] for name, values in grid_values.items()},
        'static': {name: [repr(v) for v in values] for name, values in static_values.items()},
        'targeted': bool(targeted),
        'batch_size': int(size),
        'num_calls': int(num_calls),
        'key': None if base_key is None else np.asarray(jax.random.key_data(base_key)).tolist(),
        'data': fingerprint(inputs, labels),
        'model': model_digest(logits_fn),
      },
    )

  # Per static combination, each field's (G, N) values.
  outputs, call_seconds, computed = [], [], 0
  for s_index, s in enumerate(static_points):
    per_call = []
    for c_index, index in enumerate(calls):
      file_name = f'batch_{s_index:03d}_{c_index:06d}.npz'
      if file_name in done:
        with np.load(resume_dir / file_name) as saved:
          per_call.append({f: saved[f] for f in _CALL_FIELDS if f in saved.files})
          call_seconds.append(float(saved['seconds']))
        continue
      start = time.perf_counter()
      if mesh is None:
        x, y, indices = inputs[index], labels[index], index
      else:  # each process puts only its devices' examples
        x, y, indices = (
          _multihost.put_rows(lambda p, a=a, index=index: a[index[p]], size, a.shape[1:], batched)
          for a in (inputs, labels, np.arange(len(inputs), dtype=np.int32))
        )
      call_keys = None  # per example, so neither batching nor sharding changes any result
      if takes_key:
        call_keys = jax.vmap(functools.partial(jax.random.fold_in, base_key))(indices)
      out = _sweep_program(
        attack,
        logits_fn,
        x,
        y,
        call_keys,
        grid_arrays,
        static=tuple(sorted(s.items())),
        targeted=bool(targeted),
        mesh=mesh,
      )
      per_call.append({f: _multihost.to_host(a) for f, a in out.items()})
      call_seconds.append(time.perf_counter() - start)
      computed += 1
      if resume_dir is not None and _multihost.is_chief():
        saved = {**per_call[-1], 'seconds': np.float64(call_seconds[-1])}
        write_atomically(resume_dir / file_name, lambda f, o=saved: np.savez(f, **o))
    outputs.append({f: a[:, : len(inputs)] for f, a in _concatenate(per_call, axis=1).items()})
  seconds = sum(call_seconds)

  fields = _concatenate(outputs, axis=0)
  l2, success, num_grads, finite = (fields[f] for f in _CALL_FIELDS if f != 'num_forwards')
  forwards = fields.get('num_forwards')
  points = tuple({**s, **g} for s in static_points for g in grid_points)
  worst_l2 = worst_case_l2(inputs)
  summaries = tuple(
    summary_from_arrays(
      success[p],
      l2[p],
      worst_l2,
      num_grads[p],
      attack=attack_name,
      model_finite=finite[p],
      num_forwards=None if forwards is None else forwards[p],
    )
    for p in range(len(points))
  )
  success = success & finite
  return SweepResult(
    attack_name,
    points,
    l2,
    success,
    num_grads,
    summaries,
    seconds,
    finite,
    batch_size=size,
    num_calls=num_calls,
    call_bytes=call_bytes,
    calls_computed=None if resume_dir is None else computed,
    num_forwards=forwards,
  )
