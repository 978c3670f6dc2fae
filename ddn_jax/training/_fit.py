"""A resumable training loop with metrics files and orbax checkpoints."""

from __future__ import annotations

import csv
import json
import math
import os
import pathlib
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from ddn_jax import data
from ddn_jax._atomic import write_text_atomically
from ddn_jax.sharding import check_batch_size, replicate, shard_batch
from ddn_jax.training import _checkpoints
from ddn_jax.training._output import make_output_dir
from ddn_jax.training._state import TrainState
from ddn_jax.training._step import evaluate_state, train_step

# The facts of a run that a resumed run must share (`fit`).
RUN_FILE = 'run_config.json'

StepFn = Callable[[TrainState, Mapping[str, jax.Array]], tuple[TrainState, dict[str, jax.Array]]]


def _arrays(state: TrainState) -> dict[str, Any]:
  # Typed PRNG keys are stored as their raw uint32 data.
  return {
    'step': state.step,
    'params': state.params,
    'batch_stats': state.batch_stats,
    'opt_state': state.opt_state,
    'rng': jax.random.key_data(state.rng),
  }


def _with_arrays(state: TrainState, arrays: dict[str, Any]) -> TrainState:
  rng = jax.random.wrap_key_data(arrays['rng'], impl=jax.random.key_impl(state.rng))
  return state.replace(**{**arrays, 'rng': rng})


def _finite_or_none(value: Any) -> Any:
  # JSON has no NaN or infinity.
  if isinstance(value, float) and not math.isfinite(value):
    return None
  return value


def _write_metrics(workdir: pathlib.Path, history: list[dict[str, Any]]) -> None:
  write_text_atomically(
    workdir / 'metrics.json', json.dumps(history, indent=1, allow_nan=False) + '\n'
  )
  if history:
    with open(workdir / 'metrics.csv', 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(history[0]))
      writer.writeheader()
      writer.writerows(history)


def _shown(value: Any) -> str:
  text = repr(value)
  return text if len(text) <= 16 else text[:13] + '...'


def _check_run(workdir: pathlib.Path, record: dict[str, Any], *, resuming: bool) -> None:
  """Records the run's facts in `RUN_FILE`, or checks that a resumed run has the same ones."""
  path = workdir / RUN_FILE
  if resuming and path.exists():
    try:
      recorded = json.loads(path.read_text())
    except ValueError:  # not JSON
      recorded = None
    if not isinstance(recorded, dict):
      raise ValueError(
        f'{path} is not a record of fit; delete it to resume without checking that the run is '
        'the same.'
      )
    differences = [
      f'{k} {_shown(recorded[k])} then, {_shown(v)} now'
      for k, v in record.items()
      if k in recorded and recorded[k] != v
    ]
    if differences:
      raise ValueError(
        f'{workdir} holds the checkpoints of another run: {"; ".join(differences)}. Resume it '
        'with the same training data, batch size and seed, or use another directory.'
      )
  elif jax.process_index() == 0:  # a new run, or one of a version that kept no record
    write_text_atomically(path, json.dumps(record, indent=1) + '\n')


def _local_copy(state: TrainState) -> TrainState:
  # One device's copy of a replicated state: evaluation then runs once per process, not once per
  # device.
  return jax.tree.map(lambda a: a.addressable_data(0), state)


def _metric_order(names: Iterable[str]) -> list[str]:
  return sorted(names, key=lambda name: (name != 'loss', name))


def fit(
  state: TrainState,
  train_data: tuple[np.ndarray, np.ndarray],
  *,
  num_epochs: int,
  batch_size: int,
  seed: int = 0,
  eval_data: tuple[np.ndarray, np.ndarray] | None = None,
  step_fn: StepFn = train_step,
  mesh: jax.sharding.Mesh | None = None,
  workdir: str | os.PathLike | None = None,
  checkpoint_every_steps: int | None = None,
  max_checkpoints: int = 3,
  max_steps: int | None = None,
  progress: bool = True,
  allow_non_finite_loss: bool = False,
) -> tuple[TrainState, list[dict[str, Any]]]:
  """Trains for ``num_epochs`` epochs, resuming from ``workdir`` if possible.

  The batches are `ddn_jax.data.batches` of ``train_data`` shuffled with
  ``seed``, and the randomness of step ``s`` is derived from ``(state.rng,
  s)``; so a run resumed from a checkpoint ends with the same state as an
  uninterrupted one, with no batch repeated or skipped.

  With a ``mesh`` (e.g. `data_mesh`), training is data-parallel: the state is
  replicated, each global batch is split along the mesh's ``'data'`` axis
  (`shard_batch`) and ``step_fn`` is jitted on these explicitly sharded
  arrays, so XLA all-reduces the gradients. Each process loads only its share
  of each batch; with several processes (after ``jax.distributed.initialize()``)
  every process calls `fit` with the same arguments, and only process 0 writes
  metrics and shows progress.

  With a ``workdir``, checkpoints go to ``workdir/checkpoints`` every
  ``checkpoint_every_steps`` steps, at the end of each epoch and when
  stopping at ``max_steps``; training restarts from the newest usable one
  (`load_checkpoint`: newer unusable ones are moved to
  ``workdir/unusable_checkpoints`` with a warning). ``workdir/run_config.json``
  records the training data's size and `ddn_jax.data.fingerprint`, the batch
  size and the seed: a run resumes only with the same ones, and with more
  ``num_epochs`` it continues training (with fewer or as many as done it
  returns the saved state). After each epoch one row of metrics (epoch, step,
  ``train_<name>`` for each scalar metric of ``step_fn`` averaged over the
  epoch, ``eval_loss`` and ``eval_accuracy``, seconds) is appended to
  ``workdir/metrics.json`` (strict JSON: a non-finite value is ``null``) and
  ``workdir/metrics.csv``; the progress bar shows the running averages.

  Training stops with a ValueError naming the step at the first non-finite
  loss (read on the host at every step anyway, for the progress bar), and
  when the state (parameters, batch statistics, optimizer state) holds a
  non-finite value at the end of an epoch or before a checkpoint (one jitted
  check of the state): a diverged state is never saved, so the checkpoints
  that rotation keeps are all good ones.

  Args:
    state: the initial state, e.g. from `create_train_state`; ignored in
      favour of the latest checkpoint in ``workdir`` if there is one.
    train_data: ``(images, labels)``, e.g. from `ddn_jax.data.load`.
    num_epochs: total number of epochs, counting those already done.
    batch_size: global training batch size; incomplete batches are dropped.
    seed: shuffling seed.
    eval_data: optional ``(images, labels)`` evaluated after each epoch.
    step_fn: ``step_fn(state, batch) -> (state, metrics)`` with scalar
      metrics, ``"loss"`` among them; jitted here. Default `train_step`;
      for adversarial training e.g. ``functools.partial(
      adversarial_train_step, adversary=ddn_adversary(eps=2.4))``.
    mesh: a mesh with a ``'data'`` axis for data parallelism, or None to
      train on the default device.
    workdir: directory for checkpoints and metrics, or None for neither.
    checkpoint_every_steps: also checkpoint every this many steps.
    max_checkpoints: number of checkpoints kept, at least 1.
    max_steps: stop once ``state.step`` reaches this (e.g. a time budget).
    progress: show tqdm bars for epochs and steps, and log each epoch.
    allow_non_finite_loss: go on past steps with a non-finite loss, e.g.
      with an optimizer wrapped in ``optax.apply_if_finite``, which skips
      their updates. They are left out of the epoch's averages and counted
      in its ``non_finite_steps`` column; the state is checked all the same.

  Returns:
    The final state and the per-epoch metrics rows.

  Raises:
    ValueError: ``batch_size`` is larger than the training set or does not
      split over the mesh's devices; ``workdir`` is not a writable directory
      or holds another run (other data, batch size or seed, model or
      optimizer) or no usable checkpoint; training diverged.
  """
  images, labels = train_data
  if max_checkpoints < 1:
    raise ValueError(f'max_checkpoints must be at least 1, got {max_checkpoints}.')
  steps_per_epoch = data.steps_per_epoch(len(images), batch_size)
  if steps_per_epoch < 1:
    raise ValueError(
      f'batch_size={batch_size} is larger than the {len(images)} training examples, and '
      'incomplete batches are dropped: use a batch size of at most the number of examples.'
    )
  total_steps = num_epochs * steps_per_epoch
  if max_steps is not None:
    total_steps = min(total_steps, max_steps)
  if mesh is not None:
    check_batch_size(batch_size, mesh)
    state = replicate(state, mesh)
  jit_step = jax.jit(step_fn)
  is_chief = jax.process_index() == 0
  progress = progress and is_chief

  manager = None
  history: list[dict[str, Any]] = []
  # Sums of the metrics over the steps of the current epoch (and the number of its steps with a
  # non-finite loss), kept in checkpoints so that a resumed epoch reports the same averages.
  sums: dict[str, float] = {}
  skipped = 0
  if workdir is not None:
    workdir = make_output_dir(workdir)
    record = {
      'num_examples': len(images),
      'data_fingerprint': data.fingerprint(images, labels),
      'batch_size': batch_size,
      'seed': seed,
    }
    manager = _checkpoints.manager(workdir / _checkpoints.CHECKPOINTS, max_to_keep=max_checkpoints)
    try:
      resuming = manager.latest_step() is not None
      _check_run(workdir, record, resuming=resuming)
      if resuming:
        target = jax.tree.map(ocp.utils.to_shape_dtype_struct, _arrays(state))
        checkpoint, problems = _checkpoints.newest_usable(manager, target=target)
        state = _with_arrays(state, checkpoint.state)
        history = [
          {k: _finite_or_none(v) for k, v in row.items()} for row in checkpoint.progress['history']
        ]
        sums = checkpoint.progress['sums']
        skipped = checkpoint.progress.get('non_finite_steps', 0)
        if problems:
          moved = _checkpoints.set_aside(manager, sorted(problems)) if is_chief else []
          ocp.multihost.sync_global_processes('ddn_jax.training.fit: set aside checkpoints')
          manager.reload()
          for (bad, reason), path in zip(sorted(problems.items()), moved):
            warnings.warn(
              f'The checkpoint of step {bad} is unusable ({reason}); moved it to {path} and '
              f'resumed from step {checkpoint.step}.',
              stacklevel=2,
            )
    except BaseException:
      manager.close()
      raise

  step = int(state.step)
  checked: dict[int, dict[str, int]] = {}  # the checksums of the last state checked, by step

  def check_state(when: str) -> dict[str, int]:
    """Raises if the state is not finite; returns its checksums."""
    if step not in checked:
      non_finite, checksums = _checkpoints.inspect(_arrays(state))
      if non_finite:
        raise ValueError(
          f'Training diverged: non-finite values in {_checkpoints.few(non_finite)} after step '
          f'{step} (epoch {(step - 1) // steps_per_epoch + 1}), found {when}; {kept()}.'
        )
      checked.clear()
      checked[step] = checksums
    return checked[step]

  def kept() -> str:
    latest = manager.latest_step() if manager is not None else None
    if latest is None:
      return 'nothing was saved'
    return f'not saved, the checkpoint of step {latest} in {manager.directory} is kept'

  def save() -> None:
    if manager is not None and step not in manager.all_steps():
      checksums = check_state('before saving it')
      progress_record = {
        'history': history,
        'sums': sums,
        'non_finite_steps': skipped,
        'checksums': checksums,
      }
      manager.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(_arrays(state)),
          progress=ocp.args.JsonSave(progress_record),
        ),
      )

  if workdir is not None and step >= num_epochs * steps_per_epoch and progress:
    tqdm.tqdm.write(
      f'{workdir} holds a run already trained for {step // steps_per_epoch} epoch(s) ({step} '
      f'steps): nothing to train for num_epochs={num_epochs}; pass more epochs to continue it.'
    )
  epoch_bar = tqdm.trange(
    step // steps_per_epoch,
    num_epochs,
    desc='epochs',
    initial=step // steps_per_epoch,
    total=num_epochs,
    disable=not progress,
  )
  try:
    for epoch in epoch_bar:
      if step >= total_steps:
        break
      start_time = time.perf_counter()
      epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
      stream = data.batches(
        images,
        labels,
        batch_size=batch_size,
        seed=seed,
        start_step=step,
        process_index=jax.process_index() if mesh is not None else 0,
        process_count=jax.process_count() if mesh is not None else 1,
      )
      with tqdm.tqdm(
        total=steps_per_epoch,
        initial=step % steps_per_epoch,
        desc=f'epoch {epoch}',
        leave=False,
        disable=not progress,
      ) as step_bar:
        for batch in stream:
          if mesh is not None:
            batch = shard_batch(batch, mesh)
          state, metrics = jit_step(state, batch)
          metrics = jax.device_get(metrics)
          step += 1
          loss = float(metrics['loss'])
          if math.isfinite(loss):
            sums = {k: sums.get(k, 0.0) + float(metrics[k]) for k in _metric_order(metrics)}
          elif allow_non_finite_loss:
            skipped += 1
          else:
            raise ValueError(
              f'Training diverged: the loss of step {step} (epoch {epoch + 1}) is {loss}; '
              f'{kept()}. Lower the learning rate, or check the data for non-finite values.'
            )
          done = step - epoch * steps_per_epoch - skipped
          step_bar.set_postfix(
            {k: f'{v / max(done, 1):.4g}' for k, v in sums.items()}, refresh=False
          )
          step_bar.update()
          if step == epoch_end:
            break
          if checkpoint_every_steps and step % checkpoint_every_steps == 0:
            save()
      if step % steps_per_epoch == 0:
        check_state('at the end of the epoch')
        finite_steps = steps_per_epoch - skipped
        row = {'epoch': epoch + 1, 'step': step}
        row.update({f'train_{k}': v / finite_steps for k, v in sums.items()})
        if allow_non_finite_loss:
          row['non_finite_steps'] = skipped
        if eval_data is not None:
          eval_state = _local_copy(state) if mesh is not None else state
          scores = evaluate_state(eval_state, *eval_data)
          row.update({f'eval_{k}': v for k, v in scores.items()})
        row['seconds'] = time.perf_counter() - start_time
        row = {k: _finite_or_none(v) for k, v in row.items()}
        history.append(row)
        sums, skipped = {}, 0
        summary = {
          k: f'{v:.4g}'
          for k, v in row.items()
          if k.startswith(('train_', 'eval_')) and v is not None
        }
        epoch_bar.set_postfix(summary)
        if progress:
          tqdm.tqdm.write(f'epoch {epoch + 1}: ' + ' '.join(f'{k}={v}' for k, v in summary.items()))
        if workdir is not None and is_chief:
          _write_metrics(workdir, history)
      save()
  finally:
    if manager is not None:
      manager.wait_until_finished()
      manager.close()
  return state, history
