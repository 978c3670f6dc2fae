"""One attack in ddn_jax, adv-lib and foolbox on the same model and images, timed alternately."""

from __future__ import annotations

import functools
import statistics
import sys
import time
import types
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax import attacks
from ddn_jax.benchmark import _timing


def hyperparameters(attack: attacks.Attack) -> dict[str, Any]:
  """Every setting of ``attack``, its function's defaults included, under ddn_jax's names."""
  return {**attack.entry.function_defaults(), **attack.settings}


class JaxSide:
  """ddn_jax's attack, compiled ahead of time (so compile time is measured on its own)."""

  def __init__(self, attack: attacks.Attack, logits_fn, x, y):
    self.logits_fn, self.x, self.y = logits_fn, x, y
    program = jax.jit(lambda f, x, y: attack(f, x, y))
    start = time.perf_counter()
    self.compiled = program.lower(logits_fn, x, y).compile()
    self.compile_s = time.perf_counter() - start
    self.temp_bytes = _timing.temp_bytes(self.compiled)

  def __call__(self):
    start = time.perf_counter()
    r = jax.block_until_ready(self.compiled(self.logits_fn, self.x, self.y))
    seconds = time.perf_counter() - start
    grads = np.asarray(r.num_grads)
    return seconds, _outcome(r.l2, r.success, grads.mean(), grads.max())


class AdvLibSide:
  """adv-lib on the PyTorch twin of the model (`ddn_jax.interop.comparison.run_adv_lib`)."""

  def __init__(self, attack: attacks.Attack, module, x, y):
    from ddn_jax import interop

    if attack.entry.adv_lib is None:
      raise NotImplementedError(f'{attack.name} has no adv-lib counterpart')
    name, hparams = attack.entry.function.__name__, hyperparameters(attack)
    interop.comparison.ref_kwargs(name, hparams)  # Raises for settings adv-lib cannot run.
    self.run = functools.partial(
      interop.comparison.run_adv_lib, name, module, np.asarray(x), np.asarray(y)
    )
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
    stand_in.__doc__ = 'ddn_jax.benchmark stand-in: only foolbox.zoo (unused here) needs GitPython.'
    stand_in.Repo = None
  import foolbox

  return foolbox


def foolbox_attack(fb, attack: attacks.Attack):
  """foolbox's attack with ``attack``'s settings under foolbox's names."""
  a, hp = fb.attacks, hyperparameters(attack)
  if attack.name == 'ddn':
    return a.DDNAttack(init_epsilon=hp['init_norm'], steps=hp['steps'], gamma=hp['gamma'])
  if attack.name == 'cw':
    return a.L2CarliniWagnerAttack(
      binary_search_steps=hp['binary_search_steps'],
      steps=hp['steps'],
      stepsize=hp['learning_rate'],
      confidence=hp['confidence'],
      initial_const=hp['initial_const'],
      abort_early=bool(hp['abort_early']),  # foolbox's rule is per batch.
    )
  if attack.name == 'deepfool':
    return a.L2DeepFoolAttack(
      steps=hp['steps'], overshoot=hp['overshoot'], candidates=hp['candidates']
    )
  if attack.name == 'fmn':
    return a.L2FMNAttack(steps=hp['steps'])
  raise NotImplementedError(f'no foolbox counterpart of {attack.name}')


class FoolboxSide:
  """foolbox 3 on its JAX backend (eager: each step dispatches op by op), same logits function.

  Gradient evaluations are counted as the rows the model sees under differentiation.
  """

  def __init__(self, attack: attacks.Attack, logits_fn, x, y):
    fb = import_foolbox()
    jitted = jax.jit(logits_fn)
    self.rows = 0

    def counted(x):
      if isinstance(x, jax.core.Tracer):
        self.rows += x.shape[0]
      return jitted(x)

    self.model = fb.JAXModel(counted, bounds=(0, 1))
    self.attack = foolbox_attack(fb, attack)
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


SIDES = {'ddn_jax': JaxSide, 'adv_lib': AdvLibSide, 'foolbox': FoolboxSide}


def _outcome(l2, success, grads_mean, grads_max) -> dict[str, Any]:
  l2, success = np.asarray(l2, np.float64), np.asarray(success, bool)
  return {
    'success_rate': float(success.mean()),
    'median_l2': float(np.median(l2[success])) if success.any() else None,
    'grads_per_example': float(grads_mean),
    'loop_iterations': None if grads_max is None else int(grads_max),
  }


def compare_attack(
  attack: attacks.Attack, logits_fn, module, x, y, *, impls, warmup, repeats, bare
) -> dict[str, Any]:
  """One attack in each implementation, alternating, with the bare gradient timed every round.

  ``module`` is the PyTorch twin of the model (adv-lib's side), ``bare`` a
  `_timing.BareGradient` on the same images.
  """
  sides, errors = {}, {}
  for impl in impls:
    try:
      model = module if impl == 'adv_lib' else logits_fn
      sides[impl] = SIDES[impl](attack, model, x, y)
    except Exception as e:  # noqa: BLE001 (recorded in the results, never hidden)
      errors[impl] = _timing.error_text(e)
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
        cpu = _timing.cpu_time()
        seconds, outcome[impl] = sides[impl]()
        cpu = _timing.cpu_time() - cpu
      except Exception as e:  # noqa: BLE001
        errors[impl] = _timing.error_text(e)
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
    'attack': attack.label,
    'spec': attack.spec,
    'hparams': dict(attack.settings),
    'batch': len(x),
    'bare_grad_s': grad_s,
    'bare_grad_cpu_s': grad_cpu,
    'bare_grad_in_loop_s': loop_s,
    'results': rows,
    'errors': errors,
  }
