"""A resumable training loop with metrics files and orbax checkpoints."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from ddn_jax import data
from ddn_jax.sharding import check_batch_size, replicate, shard_batch
from ddn_jax.training._state import TrainState
from ddn_jax.training._step import evaluate_state, train_step

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


def _restore(
  manager: ocp.CheckpointManager, state: TrainState
) -> tuple[TrainState, dict[str, Any]]:
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, _arrays(state))
  restored = manager.restore(
    manager.latest_step(),
    args=ocp.args.Composite(
      state=ocp.args.StandardRestore(target), progress=ocp.args.JsonRestore()
    ),
  )
  arrays = restored.state
  rng = jax.random.wrap_key_data(arrays['rng'], impl=jax.random.key_impl(state.rng))
  return state.replace(**{**arrays, 'rng': rng}), restored.progress


def _write_metrics(workdir: pathlib.Path, history: list[dict[str, Any]]) -> None:
  (workdir / 'metrics.json').write_text(json.dumps(history, indent=1) + '\n')
  if history:
    with open(workdir / 'metrics.csv', 'w', newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(history[0]))
      writer.writeheader()
      writer.writerows(history)


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
  stopping at ``max_steps``; training restarts from the latest one. After
  each epoch one row of metrics (epoch, step, ``train_<name>`` for each
  scalar metric of ``step_fn`` averaged over the epoch, ``eval_loss`` and
  ``eval_accuracy``, seconds) is appended to ``workdir/metrics.json`` and
  ``workdir/metrics.csv``; the progress bar shows the running averages.

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
    max_checkpoints: number of checkpoints kept.
    max_steps: stop once ``state.step`` reaches this (e.g. a time budget).
    progress: show tqdm bars for epochs and steps, and log each epoch.

  Returns:
    The final state and the per-epoch metrics rows.

  Raises:
    ValueError: ``batch_size`` does not split over the mesh's devices.
  """
  images, labels = train_data
  steps_per_epoch = data.steps_per_epoch(len(images), batch_size)
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
  # Sums of the metrics over the steps of the current epoch, kept in
  # checkpoints so that a resumed epoch reports the same averages.
  sums: dict[str, float] = {}
  if workdir is not None:
    workdir = pathlib.Path(workdir)
    manager = ocp.CheckpointManager(
      (workdir / 'checkpoints').absolute(),
      options=ocp.CheckpointManagerOptions(max_to_keep=max_checkpoints, create=True),
      item_names=('state', 'progress'),
    )
    if manager.latest_step() is not None:
      state, saved = _restore(manager, state)
      history, sums = saved['history'], saved['sums']

  def save(step: int) -> None:
    if manager is not None and step not in manager.all_steps():
      manager.save(
        step,
        args=ocp.args.Composite(
          state=ocp.args.StandardSave(_arrays(state)),
          progress=ocp.args.JsonSave({'history': history, 'sums': sums}),
        ),
      )

  step = int(state.step)
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
          sums = {k: sums.get(k, 0.0) + float(metrics[k]) for k in _metric_order(metrics)}
          step += 1
          done = step - epoch * steps_per_epoch
          step_bar.set_postfix({k: f'{v / done:.4g}' for k, v in sums.items()}, refresh=False)
          step_bar.update()
          if step == epoch_end:
            break
          if checkpoint_every_steps and step % checkpoint_every_steps == 0:
            save(step)
      if step % steps_per_epoch == 0:
        row = {'epoch': epoch + 1, 'step': step}
        row.update({f'train_{k}': v / steps_per_epoch for k, v in sums.items()})
        if eval_data is not None:
          eval_state = _local_copy(state) if mesh is not None else state
          scores = evaluate_state(eval_state, *eval_data)
          row.update({f'eval_{k}': v for k, v in scores.items()})
        row['seconds'] = time.perf_counter() - start_time
        history.append(row)
        sums = {}
        summary = {k: f'{v:.4g}' for k, v in row.items() if k.startswith(('train_', 'eval_'))}
        epoch_bar.set_postfix(summary)
        if progress:
          tqdm.tqdm.write(f'epoch {epoch + 1}: ' + ' '.join(f'{k}={v}' for k, v in summary.items()))
        if workdir is not None and is_chief:
          _write_metrics(workdir, history)
      save(step)
  finally:
    if manager is not None:
      manager.wait_until_finished()
      manager.close()
  return state, history
