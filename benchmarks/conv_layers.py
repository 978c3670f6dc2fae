"""XLA:CPU vs PyTorch per convolution layer of SmallCNN, and XLA options that might change it.

  python -m benchmarks.conv_layers                 # the four 3x3 convolutions, JAX vs PyTorch
  python -m benchmarks.conv_layers --flags         # the same under XLA options, one process each

Forward, and forward + gradient w.r.t. the input, of each of SmallCNN's convolutions at
``--batch`` (the shapes DDN runs at), medians of 5 calls after 2 warm-up calls, JAX and
PyTorch in the same process; with ``--flags``, also one jitted input gradient of the whole
SmallCNN. Run it under the allocator you want to report (see ``CPU_GAP.md``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

# (spatial size, input channels, output channels) of SmallCNN's convolutions.
LAYERS = [(28, 1, 32), (26, 32, 32), (12, 32, 64), (10, 64, 64)]
FLAGS = [
  '',
  '--xla_cpu_use_onednn=true',
  '--xla_cpu_use_xnnpack=false',
  '--xla_cpu_experimental_onednn_custom_call=true',
  '--xla_cpu_experimental_onednn_fusion_type=individual_convolution',
  '--xla_cpu_experimental_xnn_fusion_type=individual_convolution',
  '--xla_cpu_experimental_ynn_fusion_type=individual_convolution,individual_dot',
  '--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY',
  '--xla_cpu_enable_fast_math=true',
  '--xla_cpu_multi_thread_eigen=false',
]


def _median_ms(fn, calls: int = 5) -> float:
  fn()
  fn()
  times = []
  for _ in range(calls):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def _layer_row(x: np.ndarray, w: np.ndarray) -> str:
  import jax
  import jax.numpy as jnp
  import torch

  dn = ('NHWC', 'HWIO', 'NHWC')
  conv = lambda x, w: jax.lax.conv_general_dilated(x, w, (1, 1), 'VALID', dimension_numbers=dn)
  forward = jax.jit(conv)
  gradient = jax.jit(jax.grad(lambda x, w: jnp.sum(jnp.square(conv(x, w))) / 2))
  xj, wj = jnp.asarray(x), jnp.asarray(w)
  xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
  wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous()

  def torch_gradient():
    d = xt.clone().requires_grad_(True)
    torch.autograd.grad(torch.nn.functional.conv2d(d, wt).square().sum() / 2, d)

  with torch.no_grad():
    torch_forward = _median_ms(lambda: torch.nn.functional.conv2d(xt, wt))
  return (
    f'| {_median_ms(lambda: jax.block_until_ready(forward(xj, wj))):.1f} '
    f'| {torch_forward:.1f} '
    f'| {_median_ms(lambda: jax.block_until_ready(gradient(xj, wj))):.1f} '
    f'| {_median_ms(torch_gradient):.1f} |'
  )


def layers(batch: int) -> None:
  import jax
  import torch

  rng = np.random.default_rng(0)
  print(f'batch {batch}, torch threads {torch.get_num_threads()}, jax {jax.__version__}\n')
  print('| conv | JAX fwd (ms) | PyTorch fwd (ms) | JAX fwd+grad (ms) | PyTorch fwd+grad (ms) |')
  print('|---|---:|---:|---:|---:|')
  for hw, cin, cout in LAYERS:
    x = rng.random((batch, hw, hw, cin), np.float32)
    w = rng.standard_normal((3, 3, cin, cout)).astype(np.float32) * 0.1
    print(f'| {hw}×{hw}, {cin}→{cout} ' + _layer_row(x, w), flush=True)


def model_gradient(batch: int) -> None:
  import jax
  import jax.numpy as jnp
  import optax

  from ddn_jax import models

  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.random((batch, 28, 28, 1), np.float32))
  y = jnp.zeros(batch, jnp.int32)
  model = models.SmallCNN()
  f = models.make_logits_fn(model, model.init(jax.random.key(0), x[:1]))
  loss = lambda x: optax.softmax_cross_entropy_with_integer_labels(f(x), y).sum()
  gradient = jax.jit(jax.grad(loss))
  ms = _median_ms(lambda: jax.block_until_ready(gradient(x)))
  print(f'| `{os.environ.get("XLA_FLAGS") or "(defaults)"}` | {ms:.1f} |', flush=True)


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--batch', type=int, default=1000)
  parser.add_argument('--flags', action='store_true', help='time the model under XLA options')
  parser.add_argument('--model-gradient', action='store_true', help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.model_gradient:
    model_gradient(args.batch)
  elif args.flags:
    print(f'SmallCNN input gradient, batch {args.batch}\n\n| XLA_FLAGS | ms |\n|---|---:|')
    for flags in FLAGS:  # XLA reads its flags once per process.
      command = [sys.executable, '-m', 'benchmarks.conv_layers', '--model-gradient']
      command += ['--batch', str(args.batch)]
      subprocess.run(command, env={**os.environ, 'XLA_FLAGS': flags}, check=True)
  else:
    layers(args.batch)


if __name__ == '__main__':
  main()
