"""The attack registry: every attack is registered, specs are checked before anything runs, and
labels say what actually runs."""

import inspect

import jax.numpy as jnp
import numpy as np
import pytest

from ddn_jax import attacks, interop
from ddn_jax.reference import LinearProblem


def test_every_public_attack_is_registered_once():
  public = {
    getattr(attacks, n)
    for n in attacks.__all__
    if inspect.isfunction(getattr(attacks, n))
    # The attack signature: attack(logits_fn, inputs, labels, *, targeted=..., ...).
    and list(inspect.signature(getattr(attacks, n)).parameters)[:3]
    == ['logits_fn', 'inputs', 'labels']
    and 'targeted' in inspect.signature(getattr(attacks, n)).parameters
  }
  registered = [e.function for e in attacks.ATTACKS.values()]
  assert sorted(f.__name__ for f in public) == sorted(f.__name__ for f in registered)
  assert len(set(registered)) == len(registered)


@pytest.mark.parametrize('name', list(attacks.ATTACKS))
def test_defaults_and_adv_lib_settings_are_arguments_of_the_function(name):
  entry = attacks.get_attack(name)
  known = entry.parameters()
  for settings in (entry.defaults, entry.adv_lib_settings):
    assert set(settings) <= set(known), set(settings) - set(known)
  assert set(entry.budget) <= set(known)


def test_function_names_find_the_same_entry():
  for entry in attacks.ATTACKS.values():
    assert attacks.get_attack(entry.function.__name__) is entry


@pytest.mark.parametrize(
  'spec, message',
  [
    ('ddn:steps=3,steps=4', 'given twice'),
    ('ddn:stepz=3', "unknown setting 'stepz'"),
    ('cw:max_iterations=10,steps=5', 'given twice'),
    ('ddn:targeted=True', 'not a setting'),
    ('ddn:key=1', 'not a setting'),
    ('pgd:eps=1.0', 'needs steps, step_size'),
    ('ddn:steps=0', 'steps must be >= 1'),
    ('ddn:steps=1.5', 'steps must be an int'),
    ('ddn:steps', 'expected KEY=VALUE'),
    ('nope', "unknown attack 'nope'"),
  ],
)
def test_bad_specs_are_rejected_naming_the_problem(spec, message):
  with pytest.raises((ValueError, TypeError), match=message):
    attacks.parse_attack(spec)


def test_labels_show_every_setting_that_differs_from_the_function_default():
  # Carlini's 9×10000 with the registry's 1×100 learning rate and constant: not silent.
  long_cw = attacks.parse_attack('cw:binary_search_steps=9,steps=10000')
  assert long_cw.label == 'C&W 9×10000 (learning_rate=0.1, initial_const=1)'
  carlini = attacks.parse_attack('cw:binary_search_steps=9,steps=10000,learning_rate=0.01')
  assert carlini.label == 'C&W 9×10000 (initial_const=1)'  # 0.01 is the function's default
  assert attacks.parse_attack('ddn').label == 'DDN 100'
  assert attacks.parse_attack('ddn:steps=300,gamma=0.1').label == 'DDN 300 (gamma=0.1)'
  assert attacks.parse_attack('ddn:gamma=0.05').label == 'DDN 100'  # the function's default
  assert attacks.parse_attack('fgm:eps=2').label == 'FGM (eps=2)'


def test_old_argument_names_are_accepted_and_labelled_as_the_new_ones():
  old = attacks.parse_attack('cw:max_iterations=25')
  assert old.settings['steps'] == 25 and 'max_iterations' not in old.settings
  assert old.label == attacks.parse_attack('cw:steps=25').label


def test_spec_round_trip():
  for spec in (
    'ddn:steps=300,gamma=0.1,levels=None',
    'cw:abort_early=batch',
    'pgd:eps=1,steps=3,step_size=0.5',
  ):
    attack = attacks.parse_attack(spec)
    again = attacks.parse_attack(attack.spec)
    assert again.settings == attack.settings and again.label == attack.label


def test_spec_values_are_literals_or_bare_words():
  attack = attacks.parse_attack('ddn:levels=None,alpha_schedule=adv_lib,gamma=1e-1')
  assert attack.settings['levels'] is None
  assert attack.settings['alpha_schedule'] == 'adv_lib'
  assert attack.settings['gamma'] == pytest.approx(0.1)


def test_adv_lib_settings_start_from_the_reference_options():
  attack = attacks.parse_attack('cw:steps=200', adv_lib=True)
  assert attack.settings['abort_early'] == 'batch' and attack.settings['steps'] == 200
  assert dict(interop.DEFAULT_HPARAMS['carlini_wagner_l2']) == dict(
    attacks.get_attack('cw').adv_lib_settings
  )
  with pytest.raises(ValueError, match='no adv-lib counterpart'):
    attacks.parse_attack('fgm:eps=1', adv_lib=True)


def test_a_registered_attack_runs_as_its_function_with_its_settings():
  problem = LinearProblem(8)
  attack = attacks.parse_attack('ddn:steps=20,gamma=0.1')
  ours = attack(problem.logits_fn, problem.inputs, problem.labels)
  direct = attacks.ddn(problem.logits_fn, problem.inputs, problem.labels, steps=20, gamma=0.1)
  np.testing.assert_array_equal(np.asarray(ours.adv), np.asarray(direct.adv))
  via_partial = attack.function(problem.logits_fn, problem.inputs, problem.labels)
  np.testing.assert_array_equal(np.asarray(via_partial.adv), np.asarray(direct.adv))


# Every registered attack on the linear problem (ε = 0.55 breaks all examples but the first).
BUDGET_SPECS = {
  'fgm': 'fgm:eps=0.55',
  'pgd': 'pgd:eps=0.55,steps=1,step_size=0.2',
  'apgd': 'apgd:eps=0.55',
  'apgd-t': 'apgd-t:eps=0.55',
  'square': 'square:eps=0.55',
}
# Attacks that may stop an example early, making fewer queries than `Attack.max_queries`.
STOP_EARLY = {'deepfool'}


@pytest.mark.parametrize('name', list(attacks.ATTACKS))
def test_a_query_budget_is_never_exceeded_and_is_used(name):
  problem = LinearProblem(4, seed=21)
  budget = 60
  attack = attacks.within_query_budget(BUDGET_SPECS.get(name, name), budget, num_classes=10)
  r = attack(problem.logits_fn, problem.inputs, problem.labels)
  queries = np.asarray(r.num_queries)
  assert queries.max() <= budget
  # The count is the attack's own (exactly what it makes where nothing stops early) ...
  most = attack.max_queries(num_classes=10)
  assert queries.max() <= most and (name in STOP_EARLY or queries.max() == most)
  if name in STOP_EARLY:  # On a flat model nothing is ever adversarial: every step runs.
    flat = lambda x: 0 * x.reshape(len(x), -1)[:, :10] - jnp.arange(10.0)
    r = attack(flat, problem.inputs, np.zeros(len(problem.labels), np.int32))
    np.testing.assert_array_equal(r.num_queries, most)
  # ... and one more iteration of the inner loop would not fit.
  if attack.entry.budget:
    key = attack.entry.budget[-1]
    longer = attack.replace(**{key: attack.settings[key] + 1})
    assert longer.max_queries(num_classes=10) > budget


def test_query_budgets_that_fit_no_iteration_are_rejected():
  with pytest.raises(ValueError, match=r'one iteration \(steps=1\) takes 12 queries'):
    attacks.within_query_budget('fab', 11, num_classes=10)  # 1 + (1 forward, 9 backward, 1)
  with pytest.raises(ValueError, match='more than the budget of 1'):
    attacks.within_query_budget('fgm:eps=1', 1, num_classes=10)
  for bad in (0, 2.5, True):
    with pytest.raises(ValueError, match='positive int'):
      attacks.within_query_budget('ddn', bad, num_classes=10)
  # C&W at 1×49 is 99 queries; two search steps leave 24 iterations each.
  assert attacks.within_query_budget('cw', 100, num_classes=10).settings['steps'] == 49
  cw2 = attacks.within_query_budget('cw:binary_search_steps=2', 100, num_classes=10)
  assert cw2.settings['steps'] == 24
