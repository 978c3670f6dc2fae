"""Running an attack over a dataset in batches, optionally sharded over a ``'data'`` mesh."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import os
import pathlib
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import tqdm

from ddn_jax import attacks
from ddn_jax._atomic import write_atomically
from ddn_jax.data import fingerprint, to_float_images
from ddn_jax.evaluation import _multihost
from ddn_jax.evaluation._summary import (
  AttackSummary,
  num_forwards_of,
  summary_from_arrays,
  worst_case_l2,
)
from ddn_jax.sharding import DATA_AXIS, check_mesh, replicate

# attack(logits_fn, inputs, labels, *, targeted=..., key=..., ...) -> AttackResult
Attack = Callable[..., attacks.AttackResult]
LogitsFn = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True, eq=False)
class AttackEvaluation:
  """Per-example results of one attack over a dataset, and their summary.

  Attributes:
    name: the attack's name (the row label).
    success: ``(N,)`` bool, whether the example was made adversarial; always False where
      ``model_finite`` is (set so on construction).
    l2: ``(N,)`` float64 norm of the returned perturbation (for a failure: whatever the attack
      returned, e.g. 0 for a minimum-norm attack that resets to the clean image).
    num_grads: ``(N,)`` int64 gradient evaluations spent on the example.
    worst_l2: ``(N,)`` float64 distance of the image to the uniform grey image, the norm a
      failure counts as in the median.
    seconds: total wall time of the batches, compilation included; a resumed evaluation adds
      the times its batches took when they were attacked (saved with their results).
    first_batch_seconds: wall time of the first batch, compilation included; with equal-size
      batches, ``seconds - first_batch_seconds`` is the time of the remaining, compiled batches.
    batch_size: examples per attack call.
    num_devices: devices each batch was split over (1 without a mesh).
    adv: ``(N, H, W, C)`` float32 adversarial images, if kept.
    batches_computed: batches attacked by this call; the others were read back from a
      ``resume_dir`` (None: all of them were attacked, no ``resume_dir``).
    model_finite: ``(N,)`` bool, whether the model's logits at the clean image are all finite
      (`ddn_jax.attacks.AttackResult.model_finite`; None when constructing: all finite).
      Where they are not, the example is neither a success nor robust (its ``norms`` is NaN),
      and the summary counts it in ``num_nonfinite``.
    num_forwards: ``(N,)`` int64 forward passes the attack made on the example
      (``AttackResult.extras['num_forwards']``; None where unknown: a result built by hand, or a
      batch read back from a ``resume_dir`` written before it was saved). ``num_grads +
      num_forwards`` is AttackBench's count of queries.
    summary: the :class:`AttackSummary` of these arrays (computed, not passed).
  """

  name: str
  success: np.ndarray
  l2: np.ndarray
  num_grads: np.ndarray
  worst_l2: np.ndarray
  seconds: float
  first_batch_seconds: float
  batch_size: int
  num_devices: int
  adv: np.ndarray | None = None
  model_finite: np.ndarray | None = None
  batches_computed: int | None = None
  num_forwards: np.ndarray | None = None
  summary: AttackSummary = dataclasses.field(init=False)

  def __post_init__(self):
    success = np.asarray(self.success, bool)
    finite = np.ones_like(success) if self.model_finite is None else self.model_finite
    summary = summary_from_arrays(
      success,
      self.l2,
      self.worst_l2,
      self.num_grads,
      attack=self.name,
      seconds=self.seconds,
      first_batch_seconds=self.first_batch_seconds,
      model_finite=finite,
      num_forwards=self.num_forwards,
    )
    finite = np.asarray(finite, bool)
    object.__setattr__(self, 'model_finite', finite)
    object.__setattr__(self, 'success', success & finite)
    object.__setattr__(self, 'summary', summary)

  @property
  def norms(self) -> np.ndarray:
    """``(N,)`` minimal adversarial norms: ``l2`` where successful, ``inf`` where not, NaN
    where the model's logits at the clean image are not finite (there is no norm to give)."""
    return np.where(self.model_finite, np.where(self.success, self.l2, np.inf), np.nan)


def _bound_keywords(attack: Attack) -> dict[str, Any]:
  return attack.keywords if isinstance(attack, functools.partial) else {}


def _takes_key(attack: Attack) -> bool:
  try:
    return 'key' in inspect.signature(attack).parameters
  except (TypeError, ValueError):  # no signature (some builtins): pass no key
    return False


def check_attack(attack: Attack) -> None:
  """Rejects an attack that binds what the evaluation sets per batch."""
  if not callable(attack):
    raise TypeError(f'attack must be callable, got {type(attack).__name__}.')
  for name in ('key', 'targeted'):
    if name in _bound_keywords(attack):
      raise ValueError(
        f'The attack binds {name}={_bound_keywords(attack)[name]!r}; pass {name} to the '
        'evaluation instead (it sets it for every batch).'
      )


def check_dataset(images: Any, labels: Any, batch_size: Any) -> tuple[np.ndarray, np.ndarray]:
  images, labels = np.asarray(images), np.asarray(labels)
  if images.ndim != 4:
    raise ValueError(f'images must have shape (N, H, W, C), got shape {images.shape}.')
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(
      f'labels must be (N,) integers, got shape {labels.shape} and dtype {labels.dtype}.'
    )
  if len(images) != len(labels):
    raise ValueError(
      f'images and labels must have the same length, got {len(images)} images and '
      f'{len(labels)} labels.'
    )
  if not len(images):
    raise ValueError('Cannot evaluate an attack on 0 images.')
  attacks.check_count('batch_size', batch_size)
  return images, labels


def describe_attack(attack: Any) -> Any:
  """What identifies an attack and its settings in a resume manifest."""
  if isinstance(attack, functools.partial):
    return {
      'function': describe_attack(attack.func),
      'args': [repr(a) for a in attack.args],
      'keywords': {k: repr(v) for k, v in sorted(attack.keywords.items())},
    }
  spec = getattr(attack, 'spec', None)  # a registry `Attack`
  if isinstance(spec, str):
    return spec
  return f'{getattr(attack, "__module__", "")}.{getattr(attack, "__qualname__", repr(attack))}'


def folder_name(label: str) -> str:
  """A file-system name for a label (e.g. a resume directory per attack): lower case, each run
  of other characters than letters and digits as one ``_``; ``'C&W 1×100'`` -> ``'c_w_1_100'``."""
  return re.sub(r'[^a-z0-9]+', '_', label.lower()).strip('_')


def model_digest(logits_fn: Any) -> str:
  """A SHA-256 hex digest of a model: its parameters (the leaves of a ``Partial`` such as
  `ddn_jax.models.make_logits_fn` returns) and its function, to check that saved results
  (e.g. an `evaluate_attack` ``resume_dir``) belong to the same model."""
  digest = hashlib.sha256(repr(getattr(logits_fn, 'func', logits_fn)).encode())
  for leaf in jax.tree.leaves(logits_fn):
    array = np.asarray(jax.device_get(leaf))
    digest.update(f'{array.dtype}{array.shape}'.encode())
    digest.update(np.ascontiguousarray(array).tobytes())
  return digest.hexdigest()


def open_resume_dir(directory: Any, manifest: dict[str, Any]) -> tuple[pathlib.Path, set[str]]:
  """Creates ``directory`` with ``manifest.json``, or checks that it holds the same run; returns
  it and the names of the batch files it holds.

  Every process checks (so all raise alike); process 0 writes. The batch files are listed
  before any process goes on to write one, so all processes read back the same batches.
  """
  directory = pathlib.Path(directory)
  path = directory / 'manifest.json'
  if path.exists():
    try:
      saved = json.loads(path.read_text())
    except (OSError, ValueError) as e:
      raise ValueError(
        f'{path} is not a readable resume manifest ({e}); remove {directory}.'
      ) from e
    differs = sorted(k for k in set(saved) | set(manifest) if saved.get(k) != manifest.get(k))
    if differs:
      raise ValueError(
        f'{directory} holds the batches of another evaluation (it differs in: '
        f'{", ".join(differs)}); resume it with the same arguments, or use another directory.'
      )
  elif _multihost.is_chief():
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(manifest, indent=2, sort_keys=True).encode()
    write_atomically(path, lambda f: f.write(text))
  _multihost.sync('ddn_jax.evaluation: resume manifest written')
  done = {p.name for p in directory.glob('batch_*.npz')}
  _multihost.sync('ddn_jax.evaluation: resume batches listed')
  return directory, done


def run_batches(
  attack: Attack,
  logits_fn: LogitsFn,
  images: np.ndarray,
  image_index: np.ndarray,
  labels: np.ndarray,
  *,
  name: str,
  batch_size: int,
  mesh: jax.sharding.Mesh | None,
  key: jax.Array | None,
  targeted: bool,
  keep_adv: bool,
  progress: bool,
  resume_dir: Any = None,
) -> AttackEvaluation:
  """Attacks ``images[image_index]`` with ``labels`` (true classes, or targets) in batches,
  each batch's results saved in ``resume_dir`` (if given) and read back instead of recomputed.

  With a mesh over several processes' devices, each process reads only the rows of its own
  devices, and every process gets the whole result; process 0 writes the batch files."""
  check_attack(attack)
  num_devices = check_mesh(mesh, batch_size)
  key = jax.random.key(0) if key is None else key
  kwargs = {'targeted': True} if targeted else {}
  takes_key = _takes_key(attack)
  n = len(image_index)
  # Every call has one shape (one compilation): a last, shorter batch is padded with copies of
  # its own examples to the batch size (to a multiple of the devices if it is the only batch),
  # and the copies are dropped.
  call_size = min(batch_size, -(-n // num_devices) * num_devices)
  local = np.arange(call_size)  # the rows of a call this process reads
  if mesh is not None:
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))
    local = _multihost.local_positions(sharding, call_size)
    if isinstance(logits_fn, jax.tree_util.Partial):  # parameters on every device of the mesh
      logits_fn = replicate(logits_fn, mesh)
  done = set()
  if resume_dir is not None:
    resume_dir, done = open_resume_dir(
      resume_dir,
      {
        'name': name,
        'attack': describe_attack(attack),
        'targeted': bool(targeted),
        'batch_size': int(batch_size),
        'key': np.asarray(jax.random.key_data(key)).tolist(),
        # The images and which of them each example is (a targeted evaluation repeats each
        # image per target): never the repeated images themselves, which may not fit in memory.
        'data': fingerprint(np.asarray(images), np.asarray(labels)),
        'index': hashlib.sha256(np.asarray(image_index, np.int64).tobytes()).hexdigest(),
        'model': model_digest(logits_fn),
        'keep_adv': bool(keep_adv),
      },
    )
  computed = 0
  outputs = {
    'success': [], 'l2': [], 'num_grads': [], 'worst_l2': [], 'adv': [], 'finite': [],
    'num_forwards': [],
  }  # fmt: skip
  batch_seconds = []  # each batch's wall time, kept with its results: a resumed run adds it up
  progress = progress and _multihost.is_chief()
  with tqdm.tqdm(total=n, desc=name, unit='example', disable=not progress) as bar:
    for start in range(0, n, batch_size):
      count = min(batch_size, n - start)
      rows = np.resize(np.arange(start, start + count), call_size)
      file_name = f'batch_{start // batch_size:06d}.npz'
      if file_name in done:
        with np.load(resume_dir / file_name) as saved:
          batch_outputs = {k: saved[k] for k in saved.files}
      else:
        start_time = time.perf_counter()

        def read_images(positions, rows=rows):
          return to_float_images(images[image_index[rows[positions]]])

        if mesh is None:
          x, y, indices = read_images(local), labels[rows], rows
        else:  # each process puts only its devices' rows
          x, y, indices = (
            _multihost.put_rows(read, call_size, shape, sharding)
            for read, shape in (
              (read_images, images.shape[1:]),
              (lambda p, rows=rows: labels[rows[p]], ()),
              (lambda p, rows=rows: rows[p].astype(np.int32), ()),
            )
          )
        if takes_key:  # one key per example, from its index: independent of the batching
          kwargs['key'] = jax.vmap(functools.partial(jax.random.fold_in, key))(indices)
        result = attack(logits_fn, x, y, **kwargs)
        fields = ('success', 'l2', 'num_grads') + (('adv',) if keep_adv else ())
        batch_outputs = {f: _multihost.to_host(getattr(result, f))[:count] for f in fields}
        finite = getattr(result, 'model_finite', None)  # None: a result built by hand
        batch_outputs['finite'] = (
          np.ones(count, bool) if finite is None else _multihost.to_host(finite)[:count]
        )
        forwards = num_forwards_of(result)
        if forwards is not None:
          batch_outputs['num_forwards'] = _multihost.to_host(forwards)[:count]
        computed += 1
        batch_outputs['seconds'] = np.float64(time.perf_counter() - start_time)
        if resume_dir is not None and _multihost.is_chief():
          write_atomically(resume_dir / file_name, lambda f, o=batch_outputs: np.savez(f, **o))
      batch_seconds.append(float(batch_outputs.pop('seconds')))
      for field, value in batch_outputs.items():
        outputs[field].append(value)
      worst = worst_case_l2(images[image_index[rows[local]]])
      outputs['worst_l2'].append(_multihost.gather_rows(worst, local, call_size)[:count])
      bar.update(count)
  return AttackEvaluation(
    name=name,
    success=np.concatenate(outputs['success']).astype(bool),
    l2=np.concatenate(outputs['l2']).astype(np.float64),
    num_grads=np.concatenate(outputs['num_grads']).astype(np.int64),
    worst_l2=np.concatenate(outputs['worst_l2']),
    seconds=sum(batch_seconds),
    first_batch_seconds=batch_seconds[0] if batch_seconds else 0.0,
    batch_size=batch_size,
    num_devices=num_devices,
    adv=np.concatenate(outputs['adv']) if keep_adv else None,
    model_finite=np.concatenate(outputs['finite']).astype(bool),
    batches_computed=None if resume_dir is None else computed,
    # Known only if every batch had it.
    num_forwards=np.concatenate(outputs['num_forwards']).astype(np.int64)
    if len(outputs['num_forwards']) == len(outputs['success'])
    else None,
  )


def evaluate_attack(
  attack: Attack,
  logits_fn: LogitsFn,
  images: Any,
  labels: Any,
  *,
  name: str,
  batch_size: int = 512,
  mesh: jax.sharding.Mesh | None = None,
  key: jax.Array | None = None,
  targeted: bool = False,
  keep_adv: bool = False,
  progress: bool = False,
  resume_dir: str | os.PathLike | None = None,
) -> AttackEvaluation:
  """Runs ``attack`` over a dataset in batches and keeps its per-example results.

  Batch ``i`` holds examples ``[i * batch_size, (i + 1) * batch_size)``. An attack with a
  ``key`` parameter gets a batch of per-example keys, ``jax.random.fold_in(key, j)`` for the
  ``j``-th example (as `sweep` does), so each example's randomness (PGD's and APGD's random
  starts, DDN's direction where a gradient is exactly zero) depends neither on ``batch_size`` nor
  on the number of devices; results are deterministic, and differ between batchings only by
  XLA's batch-shape-dependent rounding.

  With a ``mesh``, each batch is placed on it split along ``'data'``
  (``NamedSharding(mesh, P('data'))``) and the attack runs per device in ``shard_map`` islands.
  Every call has the same shape (one compilation): a last, shorter batch is padded with copies
  of its own examples to ``batch_size`` (to a multiple of the devices when all examples fit in
  one batch) and the copies are dropped; each example's computation is independent of the
  others, so no result depends on the padding.

  Under ``jax.distributed`` (several processes, a mesh over all their devices, e.g.
  `ddn_jax.sharding.data_mesh`), every process calls this with the same arguments; each reads
  only the images of its own devices' rows of each batch (``images`` may be memory-mapped), and
  every process returns the whole result. Process 0 writes the ``resume_dir`` files; all
  processes read them back (a filesystem shared by the processes; the manifest's digest of the
  data reads every image). An example's result does not depend on the process count: with the
  same examples per device and devices per process, it is the same bit for bit.

  Args:
    attack: ``attack(logits_fn, inputs, labels, *, targeted=..., key=..., ...) ->
      AttackResult``, e.g. ``functools.partial(ddn_jax.attacks.ddn, steps=100)``; it must not
      bind ``key`` or ``targeted``.
    logits_fn: images ``(B, H, W, C)`` float in [0, 1] -> logits ``(B, K)``, e.g.
      ``make_logits_fn(model, variables)``; its parameters are replicated over the mesh.
    images: ``(N, H, W, C)`` uint8 (divided by 255) or float in [0, 1].
    labels: ``(N,)`` int true labels, or target classes when ``targeted``.
    name: the attack's name in reports.
    batch_size: examples per attack call (over all processes); a multiple of the devices of
      ``mesh``.
    mesh: a mesh with a ``'data'`` axis, e.g. ``ddn_jax.training.data_mesh()``; None runs
      each batch as the attack places it (each process then attacks every example itself).
    key: PRNG key (default ``jax.random.key(0)``).
    targeted: pass ``targeted=True`` to the attack (not passed otherwise, so untargeted-only
      attacks need not accept it).
    keep_adv: also keep the adversarial images (``N`` images in host memory).
    progress: show a progress bar.
    resume_dir: a directory where each finished batch's per-example results are saved
      atomically (``batch_NNNNNN.npz``, written whole or not at all) beside a ``manifest.json``
      of what is evaluated (name, attack and settings, batch size, key, a digest of the images
      and labels and of the model's parameters). A rerun with the same arguments, e.g. after the
      process was killed, reads the finished batches back and attacks only the others
      (`AttackEvaluation.batches_computed`); a rerun with other arguments is refused.

  Returns:
    An :class:`AttackEvaluation`. Examples where the model's logits at the clean image are
    not finite count as failures, never as successes, and are counted in
    ``summary.num_nonfinite``.

  Raises:
    ValueError: mismatched lengths, no images, a batch size that does not split over the
      mesh's devices, a mesh without a ``'data'`` axis, an attack that binds ``key`` or
      ``targeted``, or a ``resume_dir`` holding another evaluation.

  References:
    Rony et al., 2019, Section 4 (the protocol of Table 1).
  """
  images, labels = check_dataset(images, labels, batch_size)
  return run_batches(
    attack,
    logits_fn,
    images,
    np.arange(len(images)),
    labels,
    name=name,
    batch_size=batch_size,
    mesh=mesh,
    key=key,
    targeted=targeted,
    keep_adv=keep_adv,
    progress=progress,
    resume_dir=resume_dir,
  )


def combine_best(evaluations: Sequence[AttackEvaluation], *, name: str = 'All') -> AttackEvaluation:
  """Per example, the smallest successful perturbation over several evaluations: the "All" row.

  An example succeeds if any attack succeeded on it; its ``l2`` (and ``adv``) are those of the
  successful attack with the smallest norm, the first attack's where all failed (ties go to
  the earlier attack). The model is non-finite at an example if any evaluation says so.
  ``num_grads``, ``num_forwards`` (if every evaluation has it), ``seconds`` and
  ``first_batch_seconds`` are the sums over the attacks, the cost of running them all.

  Args:
    evaluations: evaluations of several attacks on the same images in the same order.
    name: the row's name.

  Returns:
    An :class:`AttackEvaluation`; ``adv`` only if every evaluation kept it.

  Raises:
    ValueError: no evaluations, or evaluations of different images.

  References:
    Rony et al., 2019, Section 6 (Tables 5 and 6).
  """
  evaluations = list(evaluations)
  if not evaluations:
    raise ValueError('combine_best needs at least one evaluation, got none.')
  first = evaluations[0]
  for e in evaluations[1:]:
    if len(e.success) != len(first.success):
      raise ValueError(
        f'Evaluations must cover the same examples: {first.name!r} has {len(first.success)}, '
        f'{e.name!r} has {len(e.success)}.'
      )
    if not np.array_equal(e.worst_l2, first.worst_l2):
      raise ValueError(
        f'Evaluations {first.name!r} and {e.name!r} were run on different images (their '
        'distances to the grey image differ).'
      )
  # NaN norms (a non-finite model) are failures here; model_finite marks those examples.
  norms = np.stack([e.norms for e in evaluations])
  norms = np.where(np.isnan(norms), np.inf, norms)
  best = np.argmin(norms, axis=0)  # the first attack where every one failed (all inf)
  examples = np.arange(len(best))

  def pick(field):
    return np.stack([getattr(e, field) for e in evaluations])[best, examples]

  keep_adv = all(e.adv is not None for e in evaluations)
  return AttackEvaluation(
    name=name,
    success=np.isfinite(norms).any(axis=0),
    l2=pick('l2'),
    num_grads=np.sum([e.num_grads for e in evaluations], axis=0),
    worst_l2=first.worst_l2,
    seconds=sum(e.seconds for e in evaluations),
    first_batch_seconds=sum(e.first_batch_seconds for e in evaluations),
    batch_size=first.batch_size,
    num_devices=first.num_devices,
    adv=pick('adv') if keep_adv else None,
    model_finite=np.all([e.model_finite for e in evaluations], axis=0),
    num_forwards=None
    if any(e.num_forwards is None for e in evaluations)
    else np.sum([e.num_forwards for e in evaluations], axis=0),
  )


def minimal_norms(
  logits_fn: LogitsFn,
  images: Any,
  labels: Any,
  *,
  steps: int = 1000,
  batch_size: int = 512,
  mesh: jax.sharding.Mesh | None = None,
  key: jax.Array | None = None,
  **ddn_kwargs: Any,
) -> np.ndarray:
  """Per-example L2 norm of the smallest adversarial perturbation DDN finds.

  `evaluate_attack` with ``ddn_jax.attacks.ddn`` (same batching, keys and sharding).

  Args:
    logits_fn: images (B, H, W, C) float in [0, 1] -> logits (B, K).
    images: (N, H, W, C) uint8 or float in [0, 1].
    labels: (N,) int.
    steps: DDN iterations (the paper evaluates defences with DDN 1000).
    batch_size: examples per attack call.
    mesh: optional ``'data'`` mesh to shard each batch over.
    key: PRNG key of DDN's zero-gradient fallback; example ``j`` uses ``fold_in(key, j)``.
    **ddn_kwargs: other arguments of `ddn_jax.attacks.ddn`.

  Returns:
    ``(N,)`` float64 norms: 0 where the clean image is misclassified, ``inf`` where DDN found
    no adversarial example, NaN where the model's logits at the clean image are not finite.

  References:
    Rony et al., 2019, Section 6.
  """
  attack = functools.partial(attacks.ddn, steps=steps, **ddn_kwargs)
  evaluation = evaluate_attack(
    attack, logits_fn, images, labels, name='DDN', batch_size=batch_size, mesh=mesh, key=key
  )
  return evaluation.norms
