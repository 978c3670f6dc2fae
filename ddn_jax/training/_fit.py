"""A resumable training loop with metrics files and orbax checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import csv
import json
import os
import pathlib
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import tqdm

from ddn_jax import data
from ddn_jax.training._state import TrainState
from ddn_jax.training._step import evaluate_state
from ddn_jax.training._step import train_step

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


def fit(
  state: TrainState,
  train_data: tuple[np.ndarray, np.ndarray],
  *,
  num_epochs: int,
  batch_size: int,
  seed: int = 0,
  eval_data: tuple[np.ndarray, np.ndarray] | None = None,
  step_fn: StepFn = train_step,
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
  uninterrupted one.

  With a ``workdir``, checkpoints go to ``workdir/checkpoints`` every
  ``checkpoint_every_steps`` steps, at the end of each epoch and when
  stopping at ``max_steps``; training restarts from the latest one. After
  each epoch one row of metrics (epoch, step, train loss and accuracy
  averaged over the epoch, eval loss and accuracy, seconds) is appended to
  ``workdir/metrics.json`` and ``workdir/metrics.csv``.

  Single process: for multi-host training, build a loop on
  `ddn_jax.data.batches` with its ``process_index``.

  Args:
    state: the initial state, e.g. from `create_train_state`; ignored in
      favour of the latest checkpoint in ``workdir`` if there is one.
    train_data: ``(images, labels)``, e.g. from `ddn_jax.data.load`.
    num_epochs: total number of epochs, counting those already done.
    batch_size: training batch size; incomplete batches are dropped.
    seed: shuffling seed.
    eval_data: optional ``(images, labels)`` evaluated after each epoch.
    step_fn: ``step_fn(state, batch) -> (state, metrics)`` with scalar
      ``"loss"`` and ``"accuracy"`` metrics; jitted here. Default
      `train_step`; pass e.g. ``functools.partial(train_step,
      perturb_fn=...)`` for adversarial training.
    workdir: directory for checkpoints and metrics, or None for neither.
    checkpoint_every_steps: also checkpoint every this many steps.
    max_checkpoints: number of checkpoints kept.
    max_steps: stop once ``state.step`` reaches this (e.g. a time budget).
    progress: show tqdm bars for epochs and steps.

  Returns:
    The final state and the per-epoch metrics rows.
  """
  images, labels = train_data
  steps_per_epoch = data.steps_per_epoch(len(images), batch_size)
  total_steps = num_epochs * steps_per_epoch
  if max_steps is not None:
    total_steps = min(total_steps, max_steps)
  jit_step = jax.jit(step_fn)

  manager = None
  history: list[dict[str, Any]] = []
  # Sums over the steps of the current epoch, kept in checkpoints so that a
  # resumed epoch reports the same averages.
  sums = {'loss': 0.0, 'accuracy': 0.0}
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
      epoch_sums = {k: jnp.asarray(v, jnp.float32) for k, v in sums.items()}
      epoch_end = min((epoch + 1) * steps_per_epoch, total_steps)
      stream = data.batches(
        images,
        labels,
        batch_size=batch_size,
        seed=seed,
        start_step=step,
        process_index=0,
        process_count=1,
      )
      with tqdm.tqdm(
        total=steps_per_epoch,
        initial=step % steps_per_epoch,
        desc=f'epoch {epoch}',
        leave=False,
        disable=not progress,
      ) as step_bar:
        for batch in stream:
          state, metrics = jit_step(state, batch)
          epoch_sums = {k: v + metrics[k] for k, v in epoch_sums.items()}
          step += 1
          step_bar.update()
          if step == epoch_end:
            break
          if checkpoint_every_steps and step % checkpoint_every_steps == 0:
            sums = {k: float(v) for k, v in epoch_sums.items()}
            save(step)
      sums = {k: float(v) for k, v in epoch_sums.items()}
      if step % steps_per_epoch == 0:
        row = {'epoch': epoch + 1, 'step': step}
        row.update({f'train_{k}': v / steps_per_epoch for k, v in sums.items()})
        if eval_data is not None:
          scores = evaluate_state(state, *eval_data)
          row.update({f'eval_{k}': v for k, v in scores.items()})
        row['seconds'] = time.perf_counter() - start_time
        history.append(row)
        sums = {k: 0.0 for k in sums}
        epoch_bar.set_postfix(
          {k: f'{v:.4g}' for k, v in row.items() if k.startswith(('train_', 'eval_'))}
        )
        if workdir is not None:
          _write_metrics(workdir, history)
      save(step)
  finally:
    if manager is not None:
      manager.wait_until_finished()
      manager.close()
  return state, history
