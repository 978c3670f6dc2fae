"""ddn_jax vs adv-lib on the same weights and images: runs and agreement statistics.

`ddn_jax.reports.comparison_table` renders `compare`'s result.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks as jax_attacks
from ddn_jax import models
from ddn_jax.interop import _adv_lib, _convert

RATIO_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def run_ddn_jax(
  attack: str,
  logits_fn: Any,
  images: np.ndarray,
  labels: np.ndarray,
  hparams: Mapping[str, Any],
  *,
  targeted: bool = False,
  warmup: bool = True,
) -> _adv_lib.SideResult:
  """Runs ddn_jax's ``attack`` with ``hparams`` (as in `DEFAULT_HPARAMS`).

  Args:
    attack: the name of a ``ddn_jax.attacks`` function, e.g. ``'ddn'``, ``'carlini_wagner_l2'``,
      ``'deepfool'`` or ``'fmn_l2'``.
    logits_fn: as for the attacks, e.g. `ddn_jax.models.make_logits_fn`.
    images: ``(N, H, W, C)`` float32 images in [0, 1].
    labels: ``(N,)`` int labels.
    hparams: the attack's keyword arguments.
    targeted: targeted attack.
    warmup: call twice and time the second (warm) call; the difference is reported as
      compile time. Without it, ``seconds`` includes compilation.

  Raises:
    NotImplementedError: ``ddn_jax.attacks`` has no such attack (yet).
  """
  fn = getattr(jax_attacks, attack, None)
  if fn is None:
    raise NotImplementedError(f'ddn_jax.attacks has no {attack!r}.')
  run = lambda: jax.block_until_ready(
    fn(logits_fn, images, labels, targeted=targeted, **dict(hparams))
  )
  start = time.perf_counter()
  result = run()
  first = time.perf_counter() - start
  seconds, compile_seconds = first, None
  if warmup:
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    compile_seconds = max(first - seconds, 0.0)
  return _adv_lib.SideResult(
    adv=np.asarray(result.adv),
    l2=np.asarray(result.l2),
    success=np.asarray(result.success),
    grads_per_example=float(np.mean(result.num_grads)),
    seconds=seconds,
    compile_seconds=compile_seconds,
  )


def agreement_stats(
  ours: _adv_lib.SideResult,
  ref: _adv_lib.SideResult,
  *,
  names: tuple[str, str] = ('ddn_jax', 'adv_lib'),
) -> dict[str, Any]:
  """Per-attack agreement of ddn_jax (``ours``) with adv-lib (``ref``) on the same images.

  ``names`` keys the two sides in the result, e.g. ``('bfloat16', 'float32')`` for two runs of
  ddn_jax.

  Median and mean L2 are over each side's successful examples (a clean-misclassified example
  counts as a success at L2 0 on both sides); relative differences are ``ours / ref - 1``. The
  per-example ratios ``l2_ours / l2_ref`` are over the examples both attacks broke at a nonzero
  norm.

  Returns:
    A JSON-serialisable dict.
  """
  # Nonzero on both sides: C&W returns a clean-misclassified input exactly on ours (norm 0) but
  # through its tanh round trip on adv-lib's (norm ~1e-6), a ratio of 0 that is no disagreement.
  both = ours.success & ref.success & (ours.l2 > 0) & (ref.l2 > 0)
  ratio = ours.l2[both] / ref.l2[both]
  sides = dict(zip(names, (ours, ref)))
  median = {
    k: float(np.median(s.l2[s.success])) if s.success.any() else None for k, s in sides.items()
  }
  mean = {k: float(np.mean(s.l2[s.success])) if s.success.any() else None for k, s in sides.items()}
  rel = lambda d: d[names[0]] / d[names[1]] - 1 if d[names[1]] and d[names[0]] else None
  return {
    'n': len(ours.l2),
    'success_rate': {k: float(np.mean(s.success)) for k, s in sides.items()},
    'success_agreement': float(np.mean(ours.success == ref.success)),
    'median_l2': median,
    'median_l2_rel_diff': rel(median),
    'mean_l2': mean,
    'mean_l2_rel_diff': rel(mean),
    'l2_ratio_n': int(both.sum()),
    'l2_ratio_quantiles': {
      str(q): float(v) for q, v in zip(RATIO_QUANTILES, np.quantile(ratio, RATIO_QUANTILES))
    }
    if both.any()
    else None,
    'seconds': {k: s.seconds for k, s in sides.items()},
    f'{names[0]}_compile_seconds': ours.compile_seconds,
    'grads_per_example': {k: s.grads_per_example for k, s in sides.items()},
  }


def compare(
  model: _convert.ModelLike,
  variables: Mapping[str, Any],
  images: np.ndarray,
  labels: np.ndarray,
  *,
  attacks: Sequence[str | jax_attacks.Attack] = ('ddn', 'cw', 'deepfool', 'fmn'),
  hparams: Mapping[str, Mapping[str, Any]] | None = None,
  warmup: bool = True,
) -> dict[str, Any]:
  """Runs each attack in ddn_jax and in adv-lib on the same network, weights and images.

  The PyTorch side is `to_torch` of the same ``variables``. ddn_jax runs each attack with the
  registry's ``adv_lib_settings`` (`DEFAULT_HPARAMS`), whose options reproduce adv-lib's
  algorithms, updated by the spec's settings and then by ``hparams``; adv-lib gets the same
  values through `ref_kwargs`. DeepFool linearises every class unless ``candidates`` is given.
  An attack ddn_jax does not have is reported as skipped.

  Args:
    model: a `SmallCNN`, `CifarCNN` or `WideResNet` instance or name.
    variables: its Flax variables (e.g. from `load_torch_state_dict`).
    images: ``(N, H, W, C)`` float32 images in [0, 1].
    labels: ``(N,)`` int true labels.
    attacks: attack specs with an adv-lib counterpart (``'ddn'``, ``'cw:steps=200'``, function
      names such as ``'carlini_wagner_l2'``; see `ddn_jax.attacks.parse_attack` with
      ``adv_lib=True``) or `ddn_jax.attacks.Attack` objects.
    hparams: ``{function name: {name: value}}`` overriding the settings.
    warmup: time ddn_jax's warm call (see `run_ddn_jax`).

  Returns:
    A JSON-serialisable dict: ``model``, ``n``, ``clean_accuracy`` and ``logits_max_abs_diff``
    of the two sides, and per attack its ``hparams`` (ddn_jax's), ``adv_lib_kwargs``, the load
    averages before and after it (``load_average``) and `agreement_stats` (or ``skipped``).
  """
  import torch

  model = _convert.flax_model(model)
  images = np.asarray(images, np.float32)
  labels = np.asarray(labels)
  logits_fn = models.make_logits_fn(model, variables)
  module = _convert.to_torch(model, variables, input_shape=images.shape[1:])
  jax_logits = np.asarray(logits_fn(images))
  with torch.no_grad():
    torch_logits = module(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
  report: dict[str, Any] = {
    'model': type(model).__name__,
    'n': len(images),
    'clean_accuracy': {
      'ddn_jax': float(np.mean(jax_logits.argmax(1) == labels)),
      'adv_lib': float(np.mean(torch_logits.argmax(1) == labels)),
    },
    'logits_max_abs_diff': float(np.abs(jax_logits - torch_logits).max()),
    'attacks': {},
  }
  for spec in attacks:
    if not isinstance(spec, jax_attacks.Attack):
      spec = jax_attacks.parse_attack(spec, adv_lib=True)
    attack = spec.entry.function.__name__
    config = {**spec.settings, **(hparams or {}).get(attack, {})}
    if attack == 'deepfool' and 'candidates' not in config:
      config['candidates'] = jax_logits.shape[1]
    entry: dict[str, Any] = {
      'hparams': config,
      'adv_lib_kwargs': _adv_lib.ref_kwargs(attack, config),
      'load_average': {'before': os.getloadavg()},
    }
    try:
      ours = run_ddn_jax(attack, logits_fn, images, labels, config, warmup=warmup)
    except NotImplementedError as e:
      entry['skipped'] = str(e)
    else:
      ref = _adv_lib.run_adv_lib(attack, module, images, labels, config)
      entry['stats'] = agreement_stats(ours, ref)
    entry['load_average']['after'] = os.getloadavg()
    report['attacks'][attack] = entry
  return report
