"""`run`: checks what to measure, then measures the sections in order, saving after each."""

from __future__ import annotations

import copy
import json
import os
import pathlib
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, NamedTuple

from ddn_jax import attacks
from ddn_jax.benchmark import (
  _compaction,
  _distributed,
  _flops,
  _markdown,
  _presets,
  _sections,
  _setup,
  _sides,
)
from ddn_jax.benchmark._timing import BareGradient, error_text

PROG = 'python -m ddn_jax.benchmark'


def _log(*args) -> None:
  print(*args, file=sys.stderr, flush=True)


def _check(what: str, names: Sequence[str], known: Sequence[str]) -> None:
  unknown = sorted(set(names) - set(known))
  if unknown:
    raise ValueError(f'unknown {what}(s) {unknown}; expected among {list(known)}')


class _Plan(NamedTuple):
  """What a run measures, checked before anything runs."""

  preset_name: str
  config: dict[str, Any]
  models: list[str]
  attack_names: list[str]
  implementations: list[str]
  sections: set[str]
  compaction: list[attacks.Attack]
  precision: str


def _plan(
  preset,
  *,
  models,
  attack_names,
  implementations,
  sections,
  batch,
  steps,
  repeats,
  compaction_batches,
  compaction_attacks,
  precision='float32',
) -> _Plan:
  _check('preset', [preset], _presets.PRESETS)
  _check('precision', [precision], _presets.RUN_PRECISIONS)
  config = copy.deepcopy(_presets.PRESETS[preset])
  models = list(models or config['models'])
  attack_names = list(attack_names or _presets.ATTACKS)
  _check('model', models, _presets.MODELS)
  _check('attack', attack_names, _presets.ATTACKS)
  _check('implementation', implementations, _presets.IMPLEMENTATIONS)
  _check('section', sections, _presets.SECTIONS)
  if batch:
    config['batch'] = dict.fromkeys(config['batch'], batch)
  if steps:
    config['steps'] = steps
  if repeats:
    config['repeats'] = repeats
  if compaction_batches:
    config['compaction']['batches'] = tuple(compaction_batches)
  if compaction_attacks:
    config['compaction']['attacks'] = tuple(compaction_attacks)
  else:
    specs = config['compaction']['attacks']
    config['compaction']['attacks'] = tuple(s for s in specs if s.split(':')[0] in attack_names)
  compaction = [attacks.parse_attack(s) for s in config['compaction']['attacks']]
  return _Plan(
    preset,
    config,
    models,
    attack_names,
    list(implementations),
    set(sections),
    compaction,
    precision,
  )


def run(
  preset: str = 'cpu',
  *,
  models: Sequence[str] | None = None,
  attack_names: Sequence[str] | None = None,
  implementations: Sequence[str] = _presets.IMPLEMENTATIONS,
  sections: Sequence[str] = _presets.SECTIONS,
  batch: int | None = None,
  steps: int | None = None,
  repeats: int | None = None,
  compaction_batches: Sequence[int] | None = None,
  compaction_attacks: Sequence[str] | None = None,
  precision: str = 'float32',
  single_thread: bool = False,
  out: str | os.PathLike = 'results/bench',
  tag: str | None = None,
  notes: Sequence[str] = (),
  command: str | None = None,
) -> dict[str, Any]:
  """Runs the benchmark and writes ``<out>/<tag>.json`` and ``.md``, after every measurement.

  Args:
    preset: a key of `PRESETS` (the sizes of everything).
    models: among `MODELS` (default the preset's); the first one's sections run first.
    attack_names: among `ATTACKS`, the attacks compared side by side (default all); also
      filters the preset's compaction attacks.
    implementations: among `IMPLEMENTATIONS` (``ddn_jax``, ``adv_lib``, ``foolbox``).
    sections: among `SECTIONS` (``gradient``, ``attacks``, ``cw_long``, ``compaction``,
      ``scaling``, ``sweep``, ``persist``, ``distributed``).
    batch, steps, repeats: override the preset's images per attack call, K and timed rounds.
    compaction_batches, compaction_attacks: override the compaction section's batch sizes and
      attack specs (``NAME[:KEY=VALUE,...]``, `ddn_jax.attacks.parse_attack`).
    precision: the models' compute precision, among `RUN_PRECISIONS` (`models.make_logits_fn`:
      in bfloat16, gradients from the bfloat16 model and logits from the float32 one, so each
      gradient also counts a float32 forward in the model's FLOPs); the achieved FLOP/s are
      compared with the device's peak in it (`device_peak`). The scaling section (fresh
      processes) and PyTorch's side run in float32.
    single_thread: one thread on both sides (effective only before JAX starts its backend).
    out: the directory written to.
    tag: the file name (default the machine's, e.g. ``cpu-amd-epyc-2core``).
    notes: lines for the report.
    command: the command line recorded in the report.

  Returns:
    The result, as written to the JSON file.

  Raises:
    ValueError / TypeError: an unknown name or a bad attack spec, before anything runs.
  """
  plan = _plan(
    preset,
    models=models,
    attack_names=attack_names,
    implementations=implementations,
    sections=sections,
    batch=batch,
    steps=steps,
    repeats=repeats,
    compaction_batches=compaction_batches,
    compaction_attacks=compaction_attacks,
    precision=precision,
  )
  return _execute(plan, single_thread=single_thread, out=out, tag=tag, notes=notes, command=command)


def _execute(plan: _Plan, *, single_thread, out, tag, notes, command) -> dict[str, Any]:
  if single_thread:  # Before JAX initialises its backend (machine_info does).
    flags = os.environ.get('XLA_FLAGS', '')
    os.environ['XLA_FLAGS'] = f'{flags} --xla_cpu_multi_thread_eigen=false'.strip()
    try:
      import torch

      torch.set_num_threads(1)
    except ImportError:
      pass
  bench = _Benchmark(plan, command, tag, notes, pathlib.Path(out))
  sections = plan.sections
  # The first model's attacks, the sweep and the scaling points come before the other models,
  # the costly ones last, so that a run cut short has the main comparisons.
  per_model = bool(sections & {'gradient', 'attacks', 'cw_long'})
  if per_model:
    bench.model_block(plan.models[0])
  if 'sweep' in sections:
    bench.sweep_block()
  if 'scaling' in sections:
    bench.scaling_block()
  if 'persist' in sections:
    bench.persist_block()
  if 'distributed' in sections:
    bench.distributed_block()
  if 'cw_long' in sections and bench.small:
    bench.cw_long_block()
  if 'compaction' in sections:
    bench.compaction_block()
  for model_name in plan.models[1:] if per_model else []:
    bench.model_block(model_name)
  bench.save(complete=True)
  _log(f'wrote {bench.out / bench.result["tag"]}.json and .md')
  return bench.result


def annotate(path: str | os.PathLike, *, measure_peak: bool = False) -> dict[str, Any]:
  """Adds FLOPs, the peak and FLOP/s to a recorded result; rewrites its ``.json`` and ``.md``.

  The model FLOPs are a property of the model and input shape, counted now. The peak is the
  table's for a known accelerator; a CPU's (or an unknown device's) is kept if the result has
  one, else measured now with ``measure_peak`` when this machine is of the same kind (CPU model,
  core count, backend and device), and recorded as such; otherwise it stays unknown.

  Args:
    path: a ``.json`` file written by `run`.
    measure_peak: measure a missing CPU peak on this machine.

  Returns:
    The annotated result.
  """
  path = pathlib.Path(path)
  result = json.loads(path.read_text())
  m = result['machine']
  result.setdefault('precision', 'float32')
  models = {
    r['model']
    for s in ('gradient', 'attacks', 'scaling_batch', 'scaling_steps')
    for r in result.get(s, [])
  }
  if result.get('compaction') or 'error' not in result.get('sweep', {'error': None}):
    models.add('small_cnn')
  result['model_flops'] = {
    name: _flops.model_flops(
      _setup.make_model(name, 0, result['precision'])[2], _presets.MODELS[name][1]
    )
    for name in sorted(models)
  }
  if 'peak' not in result or (measure_peak and result['peak']['flops_per_s'] is None):
    here = _setup.machine_info()
    keys = lambda m: (m['cpu'], int(m.get('logical_cpus') or m['cores']), m['backend'], m['device'])
    same = keys(m) == keys(here)
    peak = _flops.device_peak(
      result['precision'],
      device_kind=m['device'],
      backend=m['backend'],
      matmul_precision=m.get('gpu', {}).get('jax_default_matmul_precision'),
      measure=measure_peak and same,
    )
    if peak['source'].startswith('measured'):
      peak['source'] = (
        f'{peak["source"]}; measured by `{PROG} --annotate` after the run, on a machine of the '
        f'same kind ({here["cpu"]}, {here["logical_cpus"]} logical cores), load average '
        f'{[round(v, 2) for v in os.getloadavg()]}'
      )
    result['peak'] = peak
  _flops.add_flop_rates(result)
  path.write_text(json.dumps(result, indent=2, default=str) + '\n')
  path.with_suffix('.md').write_text(_markdown.to_markdown(result))
  return result


class _Benchmark:
  """One run's configuration and results; `save` rewrites both files with what is measured."""

  def __init__(self, plan: _Plan, command, tag, notes, out: pathlib.Path):
    self.plan, self.config, self.out = plan, plan.config, out
    self.start = time.perf_counter()
    machine = _setup.machine_info()
    self.result: dict[str, Any] = {
      'command': command or f'{PROG} --preset {plan.preset_name}',
      'preset_name': plan.preset_name,
      'preset': plan.config,
      'date': time.strftime('%Y-%m-%d %H:%M %Z'),
      'machine': machine,
      'tag': tag or _setup.machine_tag(machine),
      'load_start': [round(v, 2) for v in os.getloadavg()],
      'notes': list(notes),
      'gradient': [],
      'attacks': [],
      'compaction': [],
      'scaling_batch': [],
      'scaling_steps': [],
      'sweep': {'error': 'not run'},
      'persist': {'error': 'not run'},
      'distributed': [],
      'precision': plan.precision,
      'model_flops': {},
    }
    _log(f'[peak] {plan.precision} on {machine["device"]}')
    self.result['peak'] = _flops.device_peak(plan.precision)
    try:
      import torch  # noqa: F401

      from ddn_jax import interop

      self.interop = interop
    except ImportError as e:
      self.interop = None
      self.result['notes'].append(f'PyTorch side not run: {error_text(e)}')
    if machine['backend'] == 'cpu':
      self.result['notes'].append('No GPU in this run (JAX backend: cpu).')
    self.small: dict[str, Any] = {}  # small_cnn's model, images and PyTorch twin, once made.
    out.mkdir(parents=True, exist_ok=True)

  def save(self, complete: bool = False) -> None:
    """Writes what has been measured so far, so an interrupted run still leaves its results."""
    self.result['complete'] = complete
    self.result['load_end'] = [round(v, 2) for v in os.getloadavg()]
    self.result['total_s'] = time.perf_counter() - self.start
    tag = self.result['tag']
    _flops.add_flop_rates(self.result)
    (self.out / f'{tag}.json').write_text(json.dumps(self.result, indent=2, default=str) + '\n')
    (self.out / f'{tag}.md').write_text(_markdown.to_markdown(self.result))

  def model_block(self, model_name: str) -> None:
    sections = self.plan.sections
    config, notes = self.config, self.result['notes']
    model, variables, logits_fn, weights = _setup.make_model(
      model_name, config['train_steps'], self.plan.precision
    )
    notes.append(f'{model_name}: {weights}.')
    self.count_flops(model_name)
    module = None
    if self.interop is not None:
      shape = _presets.MODELS[model_name][1]
      module = self.interop.to_torch(model, variables, input_shape=shape)
      module = module.to(_setup.torch_device()).eval()
    if 'gradient' in sections:
      _log(f'[gradient] {model_name}')
      batch, rounds = config['grad_batch'][model_name], config['repeats'] + 1
      row = _sections.gradient_section(model_name, logits_fn, module, batch, rounds)
      self.result['gradient'].append(row)
      self.save()
    x, what = _setup.load_images(model_name, config['batch'][model_name])
    y = _setup.predictions(logits_fn, x)
    notes.append(
      f"{model_name} images: {what}; labels are the model's own predictions (every example "
      'starts correctly classified).'
    )
    if model_name == 'small_cnn':
      self.small.update(logits_fn=logits_fn, module=module, x=x, y=y)
    wanted = config.get('attacks', {}).get(model_name, _presets.ATTACKS)
    todo = [a for a in self.plan.attack_names if a in wanted] if 'attacks' in sections else []
    bare = BareGradient(logits_fn, x, y) if todo else None
    for name in todo:
      attack = _presets.benchmark_attack(name, config['steps'])
      _log(f'[attacks] {model_name} {attack.label}')
      impls = [i for i in self.plan.implementations if i != 'adv_lib' or module is not None]
      row = _sides.compare_attack(
        attack,
        logits_fn,
        module,
        x,
        y,
        impls=impls,
        warmup=config['warmup'],
        repeats=config['repeats'],
        bare=bare,
      )
      self.result['attacks'].append({'model': model_name, **row})
      self.save()

  def count_flops(self, model_name: str) -> None:
    """The model's FLOPs per image (`model_flops`), once, before any of its rows is saved.

    Counted on the randomly initialised network, as `annotate` does for recorded results, so
    that every file counts the same (XLA folds the zero biases of a fresh initialisation: 0.25%
    of SmallCNN's forward pass).
    """
    if model_name not in self.result['model_flops']:
      logits_fn = _setup.make_model(model_name, 0, self.plan.precision)[2]
      shape = _presets.MODELS[model_name][1]
      self.result['model_flops'][model_name] = _flops.model_flops(logits_fn, shape)

  def cw_long_block(self) -> None:
    cfg, small = self.config['cw_long'], self.small
    attack = _presets.cw_long_attack(cfg)
    _log(f'[cw_long] {attack.label}')
    xs, ys = small['x'][: cfg['images']], small['y'][: cfg['images']]
    impls = [i for i in self.plan.implementations if (i != 'foolbox' or cfg['foolbox'])]
    impls = [i for i in impls if i != 'adv_lib' or small['module'] is not None]
    if not cfg['foolbox'] and 'foolbox' in self.plan.implementations:
      self.result['notes'].append(
        f'{attack.label}: foolbox not run in this preset (eager, too slow).'
      )
    row = _sides.compare_attack(
      attack,
      small['logits_fn'],
      small['module'],
      xs,
      ys,
      impls=impls,
      warmup=0,
      repeats=1,
      bare=BareGradient(small['logits_fn'], xs, ys),
    )
    self.result['attacks'].append({'model': 'small_cnn', **row})
    self.save()

  def sweep_block(self) -> None:
    cfg = self.config['sweep']
    _log(f'[sweep] {cfg}')
    _, _, logits_fn, _ = _setup.make_model('small_cnn', 0, self.plan.precision)
    self.count_flops('small_cnn')
    x, _ = _setup.load_images('small_cnn', cfg['batch'])
    y = _setup.predictions(logits_fn, x)
    try:
      sweep = _sections.sweep_section(logits_fn, x, y, cfg['points'], cfg['steps'], rounds=1)
    except Exception as e:  # noqa: BLE001
      traceback.print_exc()
      sweep = {'error': error_text(e)}
    self.result['sweep'] = sweep
    self.save()

  def scaling_block(self) -> None:
    config = self.config
    self.count_flops('small_cnn')
    for batch in config['scaling_batches']:
      _log(f'[scaling] batch {batch}')
      point = _sections.run_point('small_cnn', batch, config['scaling_attack_steps'])
      self.result['scaling_batch'].append(point)
      self.save()
    for steps in config['scaling_steps']:
      _log(f'[scaling] steps {steps}')
      point = _sections.run_point('small_cnn', config['scaling_steps_batch'], steps)
      self.result['scaling_steps'].append(point)
      self.save()

  def persist_block(self) -> None:
    cfg = self.config['persist']
    _log(f'[persist] {cfg}')
    _, _, logits_fn, _ = _setup.make_model('small_cnn', 0, self.plan.precision)
    x, _ = _setup.load_images('small_cnn', cfg['images'])
    y = _setup.predictions(logits_fn, x)
    try:
      settings = {k: cfg[k] for k in ('batch', 'steps', 'rounds')}
      self.result['persist'] = _distributed.persist_section(logits_fn, x, y, **settings)
    except Exception as e:  # noqa: BLE001
      traceback.print_exc()
      self.result['persist'] = {'error': error_text(e)}
    self.save()

  def distributed_block(self) -> None:
    cfg = self.config['distributed']
    _log(f'[distributed] {cfg}')

    def save(rows):
      self.result['distributed'] = rows
      self.save()

    _distributed.distributed_section(cfg, save)

  def compaction_block(self) -> None:
    if not self.plan.compaction:
      return
    logits_fn, note = self.small.get('logits_fn'), None
    if logits_fn is None:  # The attack sections did not make it.
      _, _, logits_fn, weights = _setup.make_model(
        'small_cnn', self.config['train_steps'], self.plan.precision
      )
      note = f'small_cnn (compaction): {weights}'
    self.count_flops('small_cnn')
    for batch in self.config['compaction']['batches']:
      x, what = _setup.load_images('small_cnn', batch)
      y = _setup.predictions(logits_fn, x)
      if note:
        self.result['notes'].append(f"{note}; images: {what}, labelled by the model's predictions.")
        note = None
      for attack in self.plan.compaction:
        _log(f'[compaction] {attack.label}, batch {batch}')
        try:
          row = _compaction.compaction_row(attack, logits_fn, x, y, self.config['repeats'])
        except Exception as e:  # noqa: BLE001 (recorded in the results, never hidden)
          traceback.print_exc()
          row = {'attack': attack.label, 'spec': attack.spec, 'batch': batch}
          row['error'] = error_text(e)
        self.result['compaction'].append(row)
        self.save()
