"""A user's code over ddn_jax's public API, checked by mypy (tests/test_types.py), never run.

Errors inside the library are not reported here (``--follow-imports=silent``); what is checked is
that the public names exist with the signatures and types a user relies on.
"""

from __future__ import annotations

import jax
import numpy as np

import ddn_jax
from ddn_jax import attacks, data, evaluation, models, reports, sharding, training, workflows


def attack_everything(logits_fn: attacks.LogitsFn, x: jax.Array, y: jax.Array) -> list[float]:
  key = jax.random.key(0)
  results: list[attacks.AttackResult] = [
    ddn_jax.ddn(logits_fn, x, y, steps=10, gamma=0.05, levels=None, key=key),
    ddn_jax.ddn(logits_fn, x, y, eps=1.0),
    ddn_jax.carlini_wagner_l2(logits_fn, x, y, steps=10, binary_search_steps=1),
    ddn_jax.deepfool(logits_fn, x, y, steps=10),
    ddn_jax.fmn_l2(logits_fn, x, y, steps=10),
    ddn_jax.alma_l2(logits_fn, x, y, steps=10, learning_rate=0.1, penalty='P2'),
    ddn_jax.fgm_l2(logits_fn, x, y, eps=1.0),
    ddn_jax.pgd_l2(logits_fn, x, y, eps=1.0, steps=10, step_size=0.25, random_start=False),
  ]
  projected: jax.Array = ddn_jax.project_l2_ball(x, results[0].adv, 1.0, levels=256)
  del projected
  best_const: jax.Array = results[2].extras['best_const']
  del best_const
  return [float(r.l2.mean()) + float(r.success.mean()) + float(r.num_grads.mean()) for r in results]


def registry() -> str:
  attack: attacks.Attack = attacks.parse_attack('cw:steps=100')
  entry: attacks.AttackEntry = attacks.get_attack('ddn')
  other: attacks.Attack = attacks.make_attack(entry.name, steps=10)
  names: list[str] = list(attacks.ATTACKS)
  return attack.label + other.spec + attacks.attack_label('ddn', {'steps': 3}) + names[0]


def evaluate(logits_fn: attacks.LogitsFn, images: np.ndarray, labels: np.ndarray) -> str:
  attack = attacks.parse_attack('ddn')
  mesh = sharding.data_mesh()
  ev: evaluation.AttackEvaluation = evaluation.evaluate_attack(
    attack.function, logits_fn, images, labels, name=attack.label, batch_size=8, mesh=mesh
  )
  curve: evaluation.RobustnessCurve = evaluation.robustness_curve(ev.norms, [0.5, 1.0])
  predictions: np.ndarray = evaluation.predict(logits_fn, images, batch_size=8)
  del curve, predictions
  report = reports.Report('results/x', title='x', command='ddn-jax ...')
  reports.add_attack_results(report, [ev])
  return report.write() + reports.attack_table([ev.summary])


def train(images: np.ndarray, labels: np.ndarray) -> training.TrainState:
  model = models.SmallCNN()
  state = training.create_train_state(
    model, rng=jax.random.key(0), input_shape=(1, 28, 28, 1), optimizer=training.sgd(0.01)
  )
  state, history = training.fit(state, (images, labels), num_epochs=1, batch_size=8)
  del history
  floats = data.to_float_images(images)
  del floats
  return state


def workflows_run(out: str) -> float:
  loaded: workflows.ModelToAttack = workflows.load_model_to_attack(checkpoint=out)
  images, labels = workflows.images_to_attack(
    loaded.info, split='test', source='auto', num_images=10, seed=0
  )
  report = reports.Report(f'{out}/results', title='x')
  evaluations: list[evaluation.AttackEvaluation] = workflows.attack_report(
    report, [attacks.make_attack('ddn')], loaded.logits_fn, images, labels, batch_size=10
  )
  state, history = workflows.train(out, epochs=1, adversary='ddn', eps=2.0)
  demo: reports.Report = workflows.demo(out, num_images=10)
  optimizer = training.make_optimizer('adam', num_train_examples=10, learning_rate=1e-3)
  adversary: training.Adversary | None = training.make_adversary('madry', eps=1.0, steps=10)
  train_index, held_out = data.split_indices(100, seed=0, num_train=80)
  del state, history, demo, optimizer, adversary, train_index, held_out
  return float(evaluations[0].summary.median_l2)
