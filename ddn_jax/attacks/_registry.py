"""The one table of the library's attacks: names, defaults, labels, adv-lib counterparts, specs.

The command line, the experiments, the benchmarks, the PyTorch comparison and the tests all name
an attack through this table, so that an attack's defaults and its label are decided here once.
A spec is ``NAME[:KEY=VALUE,...]``, e.g. ``ddn:steps=300,gamma=0.1`` or ``cw:steps=10000``.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any

from ddn_jax.attacks._alma import alma_l2
from ddn_jax.attacks._apgd import apgd_l2, apgd_targeted_l2
from ddn_jax.attacks._carlini_wagner import carlini_wagner_l2
from ddn_jax.attacks._ddn import ddn
from ddn_jax.attacks._deepfool import deepfool
from ddn_jax.attacks._fab import fab_l2, fab_targeted_l2
from ddn_jax.attacks._fgm import fgm_l2
from ddn_jax.attacks._fmn import fmn_l2
from ddn_jax.attacks._pgd import pgd_l2
from ddn_jax.attacks._square import square_l2

# Arguments a spec cannot set: the data, what the protocol running the attack decides, and
# C&W's deprecated switch of its return type.
_NOT_SETTINGS = frozenset({'logits_fn', 'inputs', 'labels', 'targeted', 'key', 'return_best_const'})


@dataclasses.dataclass(frozen=True)
class AttackEntry:
  """What the library knows of one attack.

  Attributes:
    name: the spec name, e.g. ``'cw'``.
    function: the attack, ``function(logits_fn, inputs, labels, *, targeted=False, ...)``.
    title: the label's first word, e.g. ``'C&W'``.
    budget: the static loop counts the label shows, e.g. ``('binary_search_steps', 'steps')``
      for ``C&W 9×10000``.
    defaults: the settings a spec starts from (the budget of the paper's default run, and the
      hyperparameters that budget needs); the function's own defaults fill in the rest.
    aliases: former argument names still accepted, mapped to the current ones.
    adv_lib: the function of ``adv_lib.attacks`` that runs the same algorithm, or None.
    adv_lib_settings: the settings with which ours reproduces adv-lib's algorithm step for step.
    minimum_norm: a minimum-norm attack (else bounded by ``eps``).
    targeted: supports ``targeted=True``.
    query_count: ``query_count(settings, num_classes, targeted)``, the most queries (forward plus
      backward passes of the model, AttackBench's count) the attack makes on one example with
      ``settings`` (all of them, the function's defaults included); an example that stops
      early (DeepFool, restarts) makes fewer. It is exact where nothing stops early:
      ``AttackResult.num_queries`` then equals it.
  """

  name: str
  function: Callable[..., Any]
  title: str
  budget: tuple[str, ...] = ()
  defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  aliases: Mapping[str, str] = dataclasses.field(default_factory=dict)
  adv_lib: str | None = None
  adv_lib_settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  minimum_norm: bool = True
  targeted: bool = True
  query_count: Callable[[Mapping[str, Any], int, bool], int] | None = None

  def parameters(self) -> dict[str, inspect.Parameter]:
    """The function's settings (keyword arguments a spec may set), by name."""
    return {
      name: p
      for name, p in inspect.signature(self.function).parameters.items()
      if name not in _NOT_SETTINGS and name not in self.aliases
    }

  def function_defaults(self) -> dict[str, Any]:
    """The function's own default settings."""
    return {
      n: p.default for n, p in self.parameters().items() if p.default is not inspect.Parameter.empty
    }


@dataclasses.dataclass(frozen=True)
class Attack:
  """An attack with all its settings: call it as the function it wraps.

  Attributes:
    entry: the `AttackEntry`.
    settings: the keyword arguments passed to ``entry.function`` (defaults and overrides).
  """

  entry: AttackEntry
  settings: Mapping[str, Any]

  @property
  def name(self) -> str:
    return self.entry.name

  @property
  def function(self) -> functools.partial:
    """``entry.function`` with the settings bound, for APIs that take an attack function (e.g.
    `ddn_jax.evaluation.evaluate_attack`)."""
    return functools.partial(self.entry.function, **self.settings)

  @property
  def label(self) -> str:
    """A table label made from the settings: the budget, then every other setting that differs
    from the function's own default, e.g. ``'C&W 1×100 (learning_rate=0.1, initial_const=1)'``.
    """
    return attack_label(self.entry, self.settings)

  @property
  def spec(self) -> str:
    """The canonical spec that rebuilds this attack with `parse_attack`."""
    items = ','.join(f'{k}={_format(v)}' for k, v in self.settings.items())
    return f'{self.entry.name}:{items}' if items else self.entry.name

  def __call__(self, logits_fn, inputs, labels, **kwargs):
    """``entry.function(logits_fn, inputs, labels, **settings, **kwargs)``; ``kwargs`` (e.g.
    ``targeted``, ``key``, or a setting) take precedence over the settings."""
    return self.entry.function(logits_fn, inputs, labels, **{**self.settings, **kwargs})

  def replace(self, **settings) -> Attack:
    """The same attack with some settings changed (checked as in `make_attack`)."""
    return make_attack(self.entry.name, **{**self.settings, **settings})

  def max_queries(self, *, num_classes: int, targeted: bool = False) -> int:
    """The most queries (forward plus backward passes) this attack makes on one example of a
    model with ``num_classes`` classes; see `AttackEntry.query_count`."""
    settings = {**self.entry.function_defaults(), **self.settings}
    return self.entry.query_count(settings, num_classes, targeted)


# Most queries per example, from the loop counts: a value_and_grad is 1 forward + 1 backward
# pass, a Jacobian of k logit differences 1 forward + k backward (the attacks' docstrings).
def _fab_queries(s, num_classes, targeted, *, num_targets=None):
  runs = s['restarts'] * (num_targets or 1)
  rows = 1 if targeted or num_targets else num_classes - 1
  return 1 + runs * s['steps'] * (2 + rows)  # the clean forward, then Jacobian and check


def _deepfool_queries(s, num_classes, targeted):
  candidates = s['candidates'] or min(10, num_classes)
  return s['steps'] * candidates  # per step 1 forward + candidates - 1 backward


def _fmn_queries(s, num_classes, targeted):
  bisections = 0 if s.get('starting_points') is None else s['binary_search_steps']
  return 2 * s['steps'] + bisections


def _entries() -> dict[str, AttackEntry]:
  entries = [
    AttackEntry(
      name='ddn',
      function=ddn,
      title='DDN',
      budget=('steps',),
      defaults={'steps': 100},
      aliases={'max_norm': 'eps'},
      query_count=lambda s, k, t: 2 * s['steps'],
      adv_lib='ddn',
      # adv-lib's DDN fixes its step sizes in code: cosine from 1 towards 0.01, as 'adv_lib'.
      adv_lib_settings={
        'steps': 100,
        'gamma': 0.05,
        'init_norm': 1.0,
        'levels': 256,
        'alpha_schedule': 'adv_lib',
      },
    ),
    AttackEntry(
      name='cw',
      function=carlini_wagner_l2,
      title='C&W',
      budget=('binary_search_steps', 'steps'),
      # The paper's 1×100 budget, with the learning rate and constant its grid search picked for
      # it (the function's defaults, lr 0.01 and c 0.001, are Carlini's for 9×10000 and stop at
      # ~0% success after 100 iterations).
      defaults={
        'binary_search_steps': 1,
        'steps': 100,
        'learning_rate': 0.1,
        'initial_const': 1.0,
      },
      aliases={'max_iterations': 'steps'},
      # The check of the clean input, then each iteration's value_and_grad.
      query_count=lambda s, k, t: 1 + 2 * s['binary_search_steps'] * s['steps'],
      adv_lib='carlini_wagner_l2',
      # adv-lib aborts a search step when the whole batch stalls: our 'batch' rule.
      adv_lib_settings={
        'binary_search_steps': 1,
        'steps': 100,
        'learning_rate': 0.1,
        'initial_const': 1.0,
        'confidence': 0.0,
        'abort_early': 'batch',
      },
    ),
    AttackEntry(
      name='deepfool',
      function=deepfool,
      title='DeepFool',
      budget=('steps',),
      defaults={'steps': 100},
      query_count=_deepfool_queries,
      adv_lib='df',
      # adv-lib linearises every class: `ddn_jax.interop.compare` sets candidates to match.
      adv_lib_settings={'steps': 100, 'overshoot': 0.02},
      targeted=False,
    ),
    AttackEntry(
      name='fmn',
      function=fmn_l2,
      title='FMN',
      budget=('steps',),
      defaults={'steps': 100},
      query_count=_fmn_queries,
      adv_lib='fmn',
      adv_lib_settings={
        'steps': 100,
        'alpha_init': 1.0,
        'alpha_final': 0.01,
        'gamma_init': 0.05,
        'gamma_final': 0.001,
        'projection': 'sphere',  # adv-lib 0.2.8's projection (ours defaults to the paper's ball).
      },
    ),
    AttackEntry(
      name='fgm', function=fgm_l2, title='FGM', minimum_norm=False, query_count=lambda s, k, t: 2
    ),
    AttackEntry(
      name='pgd',
      function=pgd_l2,
      title='PGD',
      budget=('steps',),
      minimum_norm=False,
      query_count=lambda s, k, t: 2 * s['steps'],
    ),
    AttackEntry(
      name='apgd',
      function=apgd_l2,
      title='APGD',
      budget=('steps',),
      defaults={'steps': 100},
      adv_lib='apgd',
      # adv-lib 0.2.8's step-size rule (see apgd_l2); eps is the run's, as for PGD.
      adv_lib_settings={'steps': 100, 'loss': 'dlr', 'restarts': 1, 'reduce_rule': 'adv_lib'},
      minimum_norm=False,
      query_count=lambda s, k, t: 2 * (s['steps'] + 1) * s['restarts'],
    ),
    AttackEntry(
      name='apgd-t',
      function=apgd_targeted_l2,
      title='APGD-T',
      budget=('num_targets', 'steps'),
      defaults={'num_targets': 9, 'steps': 100},
      adv_lib='apgd_targeted',
      adv_lib_settings={'steps': 100, 'num_targets': 9, 'reduce_rule': 'adv_lib'},
      minimum_norm=False,
      targeted=False,
      # The clean forward that ranks the targets, then steps + 1 value_and_grads per target.
      query_count=lambda s, k, t: 1 + 2 * (s['steps'] + 1) * s['num_targets'],
    ),
    AttackEntry(
      name='alma',
      function=alma_l2,
      title='ALMA',
      budget=('steps',),
      defaults={'steps': 1000},
      adv_lib='alma',
      # The function's defaults are adv-lib's (P2, no quantisation); targeted, see alma_l2.
      adv_lib_settings={'steps': 1000, 'penalty': 'P2', 'logit_tolerance': 1e-4},
      query_count=lambda s, k, t: 2 * s['steps'],
    ),
    AttackEntry(
      name='fab',
      function=fab_l2,
      title='FAB',
      budget=('steps',),
      defaults={'steps': 100},
      adv_lib='fab',
      adv_lib_settings={'steps': 100, 'restarts': 1},
      query_count=_fab_queries,
    ),
    AttackEntry(
      name='fab-t',
      function=fab_targeted_l2,
      title='FAB-T',
      budget=('num_targets', 'steps'),
      defaults={'num_targets': 9, 'steps': 100},
      # adv-lib's fab with targeted_restarts=True and restarts=num_targets.
      adv_lib='fab',
      adv_lib_settings={'steps': 100, 'num_targets': 9, 'restarts': 1},
      targeted=False,
      query_count=lambda s, k, t: _fab_queries(s, k, t, num_targets=s['num_targets']),
    ),
    # Score-based (no gradients); adv-lib 0.2.8 has no Square Attack.
    AttackEntry(
      name='square',
      function=square_l2,
      title='Square',
      budget=('queries',),
      defaults={'queries': 5000},
      minimum_norm=False,
      query_count=lambda s, k, t: s['restarts'] * (1 + s['queries']),  # forward passes only
    ),
  ]
  return {e.name: e for e in entries}


ATTACKS: Mapping[str, AttackEntry] = types.MappingProxyType(_entries())
# Each attack is also found under its function's name (``carlini_wagner_l2`` for ``cw``).
_BY_NAME = {**{e.function.__name__: e for e in ATTACKS.values()}, **ATTACKS}


def get_attack(name: str) -> AttackEntry:
  """The `AttackEntry` of a spec name (``'cw'``) or a function name (``'carlini_wagner_l2'``).

  Raises:
    ValueError: an unknown name, listing the known ones.
  """
  entry = _BY_NAME.get(name)
  if entry is None:
    raise ValueError(f'unknown attack {name!r}; expected one of {", ".join(ATTACKS)}.')
  return entry


def make_attack(name: str, *, adv_lib: bool = False, **settings) -> Attack:
  """The attack ``name`` with its registered defaults updated by ``settings``.

  With ``adv_lib``, the settings start from ``adv_lib_settings`` (those reproducing adv-lib's
  algorithm, for the side-by-side comparison) instead of ``defaults``.

  Every setting is checked before anything runs: an unknown name, a former name given together
  with its current one, a missing required setting (e.g. PGD's ``eps``) or a budget that is not
  a positive int raise ValueError or TypeError naming it.
  """
  entry = get_attack(name)
  known = entry.parameters()
  canonical: dict[str, Any] = {}
  for key, value in settings.items():
    new = entry.aliases.get(key, key)
    if new in canonical:
      raise ValueError(f'{entry.name}: {key!r} is given twice (also as {new!r}).')
    if new in _NOT_SETTINGS:
      raise ValueError(
        f'{entry.name}: {key!r} is not a setting of a spec; the command or protocol sets it.'
      )
    if new not in known:
      raise ValueError(
        f'{entry.name}: unknown setting {key!r}; {entry.function.__name__} takes '
        f'{", ".join(known)}.'
      )
    canonical[new] = value
  if adv_lib and entry.adv_lib is None:
    raise ValueError(f'{entry.name} has no adv-lib counterpart.')
  merged = {**(entry.adv_lib_settings if adv_lib else entry.defaults), **canonical}
  missing = [
    n for n, p in known.items() if p.default is inspect.Parameter.empty and n not in merged
  ]
  if missing:
    raise ValueError(
      f'{entry.name} needs {", ".join(missing)}, e.g. {entry.name}:'
      + ','.join(f'{n}=...' for n in missing)
    )
  for key in entry.budget:
    value = merged.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
      raise TypeError(f'{entry.name}: {key} must be an int (it sets the program), got {value!r}.')
    if value < 1:
      raise ValueError(f'{entry.name}: {key} must be >= 1, got {value}.')
  return Attack(entry, types.MappingProxyType(merged))


def within_query_budget(
  attack: Attack | str, queries: int, *, num_classes: int, targeted: bool = False
) -> Attack:
  """``attack`` with its inner loop count set so that it makes at most ``queries`` queries on
  each example, AttackBench's per-example budget (a query is one forward or one backward pass).

  The last of the entry's ``budget`` counts (``steps``; Square's ``queries``) becomes the
  largest one whose `Attack.max_queries` fits; the outer ones (C&W's ``binary_search_steps``,
  the targets and restarts) are kept, so lower them to give the inner loop more. Where the
  attack stops early on an example (DeepFool, restarts), it makes fewer queries there. The
  minimum-norm attacks return the smallest adversarial point they evaluated within the budget;
  the bounded ones return their own point (PGD its last iterate, APGD its adversarial or best
  one), whose success is re-checked.

  Args:
    attack: an `Attack` or a spec (``'ddn'``, ``'cw:binary_search_steps=2'``).
    queries: the budget per example, a positive int.
    num_classes: the model's number of classes (DeepFool's and FAB's passes depend on it).
    targeted: whether the attack will run targeted (FAB's Jacobian then has one row).

  Returns:
    An `Attack` whose `Attack.max_queries` is at most ``queries``.

  Raises:
    ValueError: a budget that is not a positive int, or that not even one iteration fits.

  References:
    Cinà et al., `AttackBench: Evaluating Gradient-based Attacks for Adversarial Examples
    <https://arxiv.org/abs/2404.19460>`_, AAAI 2025.
  """
  attack = parse_attack(attack) if isinstance(attack, str) else attack
  if isinstance(queries, bool) or not isinstance(queries, int) or queries < 1:
    raise ValueError(f'queries must be a positive int (queries per example), got {queries!r}.')
  entry = attack.entry
  cost = lambda a: a.max_queries(num_classes=num_classes, targeted=targeted)
  if not entry.budget:  # one fixed step (FGM)
    if cost(attack) > queries:
      raise ValueError(
        f'{attack.label} takes {cost(attack)} queries per example, more than the budget of '
        f'{queries}.'
      )
    return attack
  key = entry.budget[-1]
  with_count = lambda n: attack.replace(**{key: n})
  if cost(with_count(1)) > queries:
    raise ValueError(
      f'{entry.name}: one iteration ({key}=1) takes {cost(with_count(1))} queries per example, '
      f'more than the budget of {queries}; raise it, or lower the other loop counts '
      f'({", ".join(entry.budget[:-1]) or "none"}).'
    )
  # The count grows with the loop count, by at least one query per iteration.
  low, high = 1, queries
  while low < high:
    mid = (low + high + 1) // 2
    low, high = (mid, high) if cost(with_count(mid)) <= queries else (low, mid - 1)
  return with_count(low)


def parse_value(text: str) -> Any:
  """A value of a spec: a Python literal (``300``, ``0.1``, ``None``, ``True``), else the bare
  word as a string (``batch`` for ``abort_early=batch``)."""
  text = text.strip()
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse_attack(spec: str, *, adv_lib: bool = False) -> Attack:
  """Parses ``NAME[:KEY=VALUE,...]`` into an `Attack`.

  Values are Python literals (``300``, ``0.1``, ``None``, ``True``) or bare words for string
  options (``abort_early=batch``). Duplicate and unknown keys are errors, so a whole list of
  specs can be checked before any attack runs. ``adv_lib`` is as in `make_attack`.

  Raises:
    ValueError / TypeError naming the problem and the spec.
  """
  name, _, rest = spec.strip().partition(':')
  settings: dict[str, Any] = {}
  for item in filter(None, (s.strip() for s in rest.split(','))):
    key, eq, value = item.partition('=')
    key = key.strip()
    if not eq or not key:
      raise ValueError(f'bad setting {item!r} in attack spec {spec!r}; expected KEY=VALUE.')
    if key in settings:
      raise ValueError(f'{key!r} is given twice in attack spec {spec!r}.')
    settings[key] = parse_value(value)
  try:
    return make_attack(name.strip(), adv_lib=adv_lib, **settings)
  except (ValueError, TypeError) as e:
    raise type(e)(f'{e} (in attack spec {spec!r})') from None


def _format(value: Any) -> str:
  return f'{value:g}' if isinstance(value, float) else str(value)


def attack_label(entry: AttackEntry | str, settings: Mapping[str, Any]) -> str:
  """The table label of an attack with ``settings`` (see `Attack.label`)."""
  entry = get_attack(entry) if isinstance(entry, str) else entry
  counts = [settings[k] for k in entry.budget if k in settings]
  label = entry.title + (' ' + '×'.join(str(c) for c in counts) if counts else '')
  defaults = entry.function_defaults()
  others = [
    f'{k}={_format(v)}'
    for k, v in settings.items()
    if k not in entry.budget and (k not in defaults or defaults[k] != v)
  ]
  return label + (f' ({", ".join(others)})' if others else '')


def attack_help() -> str:
  """One paragraph for a command line's help: the spec syntax, the names and their defaults."""

  def describe(e: AttackEntry) -> str:
    required = [n for n, p in e.parameters().items() if p.default is inspect.Parameter.empty]
    missing = [n for n in required if n not in e.defaults]
    if missing:  # e.g. a bounded attack's eps: no default label
      return f'{e.name} ({e.function.__name__}, needs {", ".join(missing)})'
    label = f', {make_attack(e.name).label}' if e.defaults else ''
    return f'{e.name} ({e.function.__name__}{label})'

  names = '; '.join(describe(e) for e in ATTACKS.values())
  return (
    'attack spec NAME[:KEY=VALUE,...], KEY=VALUE overriding an argument of the function, e.g. '
    f'ddn:steps=300,gamma=0.1 or cw:binary_search_steps=9,steps=10000. Names: {names}'
  )
