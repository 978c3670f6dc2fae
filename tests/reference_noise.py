"""Measures the noise that the tolerances on the reference model allow for (not a test).

  PYTHONPATH=. python tests/reference_noise.py   # about 15 minutes on 2 idle CPU cores

For the reference model (`ddn_jax.reference.mnist_small_cnn`) and variants of it, prints the
held-out accuracy and the median DDN-100 L2 on the first 128 held-out digits it classifies
correctly: the same model attacked in batches of 1, 7, 32 and 128 and sharded over 8 devices
(rounding of the attack), the recipe trained data-parallel over 8 devices (other rounding in
training, as another CPU gives), and seeds 1 to 3. On an AMD EPYC (2 cores, jax 0.10.2):

  reference          accuracy 0.959  median 1.7547
  batch 1 / 7 / 32   median 1.75474 / 1.75472 / 1.75472  (single examples within 0.46%)
  8 devices          median 1.75472
  trained on 8 dev.  accuracy 0.946  median 1.7937
  seeds 1, 2, 3      accuracy 0.963, 0.965, 0.968  median 1.5611, 1.6034, 1.6909

test_reference.py and test_attacks_cnn.py derive their ranges from these numbers.
"""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=8')

import jax
import numpy as np

from ddn_jax import attacks, models, reference, training


def _report(tag, logits_fn, held_out):
  x, y = held_out[0].astype(np.float32) / 255, held_out[1]
  predictions = np.asarray(logits_fn(x)).argmax(1)
  keep = np.flatnonzero(predictions == y)[:128]
  l2 = np.asarray(attacks.ddn(logits_fn, x[keep], y[keep], steps=100).l2)
  print(f'{tag}: accuracy {np.mean(predictions == y):.3f}, median {np.median(l2):.5f}', flush=True)
  return x[keep], y[keep], l2


def main():
  jax.config.update('jax_num_cpu_devices', 8)
  model = reference.mnist_small_cnn()
  x, y, l2 = _report('reference', model.logits_fn, model.split.held_out)
  for size in (1, 7, 32):
    parts = [
      np.asarray(attacks.ddn(model.logits_fn, x[i : i + size], y[i : i + size], steps=100).l2)
      for i in range(0, len(x), size)
    ]
    other = np.concatenate(parts)
    print(
      f'batch {size}: median {np.median(other):.5f}, max |rel. diff| {np.max(np.abs(other / l2 - 1)):.2e}'
    )
  sharding = jax.sharding.NamedSharding(
    jax.make_mesh((8,), ('data',)), jax.sharding.PartitionSpec('data')
  )
  put = lambda a: jax.device_put(a, sharding)
  sharded = np.asarray(attacks.ddn(model.logits_fn, put(x), put(y), steps=100).l2)
  print(f'8 devices: median {np.median(sharded):.5f}')
  state = training.create_train_state(
    models.SmallCNN(), rng=jax.random.key(0), input_shape=(1, 28, 28, 1), optimizer=model.state.tx
  )
  state, _ = training.fit(
    state, model.split.train, num_epochs=3, batch_size=64, mesh=training.data_mesh(), progress=False
  )
  variables = jax.tree.map(lambda a: np.asarray(a.addressable_data(0)), state.variables)
  _report(
    'trained on 8 devices', models.make_logits_fn(state.model, variables), model.split.held_out
  )
  for seed in (1, 2, 3):
    other = reference.mnist_small_cnn(seed=seed)
    _report(f'seed {seed}', other.logits_fn, other.split.held_out)


if __name__ == '__main__':
  main()
