"""AutoAttack's standard L2 evaluation: APGD-CE, then APGD-T, FAB-T and Square on what survives."""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks
from ddn_jax.data import to_float_images
from ddn_jax.evaluation._checks import model_warnings
from ddn_jax.evaluation._evaluate import LogitsFn, evaluate_attack, folder_name
from ddn_jax.evaluation._predict import predict

# AutoAttack's version='standard' for norm='L2' (Croce & Hein, 2020; its autoattack.py): each
# component as (report name, registry name, settings), run in this order on the examples that
# the ones before left robust.
AUTOATTACK_STANDARD_L2 = (
  ('APGD-CE', 'apgd', {'loss': 'ce', 'steps': 100, 'restarts': 1}),
  ('APGD-T', 'apgd-t', {'steps': 100, 'num_targets': 9}),
  ('FAB-T', 'fab-t', {'steps': 100, 'num_targets': 9}),
  ('Square', 'square', {'queries': 5000, 'p_init': 0.8}),
)
VERSIONS = {'standard': AUTOATTACK_STANDARD_L2}
# An adversarial counts only if its norm is at most eps * (1 + this): float32 rounding of a
# projection onto the ball, as AutoAttack's own check allows.
_EPS_RTOL = 1e-5


@dataclasses.dataclass(frozen=True)
class AutoAttackComponent:
  """What one component of `autoattack_l2` did.

  Attributes:
    name: e.g. ``'APGD-T'``.
    settings: the attack (its registry or function name) and the settings it ran with.
    num_attacked: examples still robust when it started.
    num_broken: those it broke (an adversarial verified: misclassified, within ε, in [0, 1]).
    robust_accuracy: robust accuracy over all examples after it.
    seconds: its wall time, compilation included.
    num_unverified: examples the attack reported broken whose returned point failed the
      verification (counted as robust); zero for a correct attack.
    num_box_violations: returned points outside [0, 1] (must be zero).
  """

  name: str
  settings: dict[str, Any]
  num_attacked: int
  num_broken: int
  robust_accuracy: float
  seconds: float
  num_unverified: int
  num_box_violations: int


@dataclasses.dataclass(frozen=True)
class AutoAttackEvaluation:
  """The result of `autoattack_l2` over ``N`` examples.

  Attributes:
    eps: the L2 radius.
    version: ``'standard'`` or ``'custom'`` (components given).
    clean: ``(N,)`` bool, classified correctly (finite logits, the label's class).
    robust: ``(N,)`` bool, classified correctly and no component found an adversarial.
    broken_by: ``(N,)`` int, the index in ``components`` of the component that broke the
      example; -1 where none did (robust, or misclassified to begin with).
    l2: ``(N,)`` float64, the norm of the adversarial that broke the example; 0 where it was
      misclassified to begin with, inf where it is robust.
    components: a `AutoAttackComponent` per component, in the order they ran.
    seconds: total wall time.
    adv: ``(N, H, W, C)`` float32, the worst-case inputs (the adversarial where one was found,
      else the clean image), if kept.
    warnings: `model_warnings` of the model on the first 100 examples (also issued as Python
      warnings): what would make this evaluation unreliable.
  """

  eps: float
  version: str
  clean: np.ndarray
  robust: np.ndarray
  broken_by: np.ndarray
  l2: np.ndarray
  components: tuple[AutoAttackComponent, ...]
  seconds: float
  adv: np.ndarray | None = None
  warnings: tuple[str, ...] = ()

  @property
  def clean_accuracy(self) -> float:
    return float(self.clean.mean())

  @property
  def robust_accuracy(self) -> float:
    return float(self.robust.mean())

  def lines(self) -> list[str]:
    """A run-time report like AutoAttack's: clean accuracy, then robust accuracy after each
    component with its time."""
    out = [f'clean accuracy: {self.clean_accuracy:.2%}']
    for c in self.components:
      out.append(
        f'robust accuracy after {c.name}: {c.robust_accuracy:.2%} ({c.num_broken} of '
        f'{c.num_attacked} broken, {c.seconds:.1f} s)'
      )
    out.append(f'robust accuracy at eps={self.eps:g}: {self.robust_accuracy:.2%}')
    return out + [f'warning: {w}' for w in self.warnings]


def _components(version: str, components) -> tuple[str, Sequence[tuple[str, Any, dict]]]:
  if components is not None:
    return 'custom', tuple(components)
  if version not in VERSIONS:
    raise ValueError(
      f'Unknown AutoAttack version {version!r}; expected one of {list(VERSIONS)} (the rand '
      "version's EOT over randomised defences is not implemented), or pass components."
    )
  return version, VERSIONS[version]


def autoattack_l2(
  logits_fn: LogitsFn,
  images: Any,
  labels: Any,
  *,
  eps: float,
  version: str = 'standard',
  components: Sequence[tuple[str, str | Callable[..., Any], dict[str, Any]]] | None = None,
  batch_size: int = 512,
  mesh: jax.sharding.Mesh | None = None,
  key: jax.Array | None = None,
  keep_adv: bool = False,
  progress: bool = False,
  resume_dir: str | os.PathLike | None = None,
) -> AutoAttackEvaluation:
  """AutoAttack's L2 protocol: robust accuracy at ``eps`` under an ensemble of attacks.

  The clean images are classified first; each component then attacks only the examples still
  robust (`evaluate_attack` in batches of ``batch_size``, over ``mesh`` if given), and an
  example counts as broken only when the point returned is verified here: classified other
  than its label (with finite logits), within ``eps`` (up to float32 rounding, a relative
  1e-5) and inside [0, 1]. The model is first checked (`model_warnings`: probabilities for
  logits, randomness, zero gradients) and each problem is warned of. ``version='standard'`` runs `AUTOATTACK_STANDARD_L2`: APGD with the
  cross-entropy loss, APGD-T and FAB-T against the 9 most likely other classes, and the
  score-based Square attack with 5000 queries, as AutoAttack's ``version='standard'`` does for
  ``norm='L2'``.

  Args:
    logits_fn: images ``(B, H, W, C)`` float in [0, 1] -> logits ``(B, K)``.
    images: ``(N, H, W, C)`` uint8 (divided by 255) or float in [0, 1].
    labels: ``(N,)`` int true labels.
    eps: the L2 radius.
    version: ``'standard'``.
    components: instead of a version, ``(name, attack, settings)`` triples, the attack a name
      in `ddn_jax.attacks.ATTACKS` or a bounded attack function, e.g.
      ``[('APGD-CE', 'apgd', {'loss': 'ce'})]``; ``eps`` is added to each one's settings.
    batch_size: examples per attack call.
    mesh: a mesh with a ``'data'`` axis to shard each batch over (see `evaluate_attack`).
    key: PRNG key (default ``jax.random.key(0)``); component ``i`` gets ``fold_in(key, i)``.
    keep_adv: also return the worst-case inputs.
    progress: show a progress bar per component.
    resume_dir: where each component keeps its finished batches (``<i>_<name>``, an
      `evaluate_attack` ``resume_dir``): a rerun after an interruption recomputes none of them,
      a rerun with other arguments is refused.

  Returns:
    An `AutoAttackEvaluation`.

  Raises:
    ValueError: an unknown version or attack name, a non-positive ``eps``, mismatched lengths.

  References:
    Croce & Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020.
  """
  if not eps > 0:
    raise ValueError(f'eps must be positive, got {eps}.')
  version, specs = _components(version, components)
  made = []  # (name, attack function with its settings bound, the settings reported)
  for name, attack, settings in specs:
    if callable(attack):
      settings = {**settings, 'eps': eps}
      made.append(
        (name, functools.partial(attack, **settings), {'attack': attack.__name__, **settings})
      )
    else:
      attack = attacks.make_attack(attack, **{**settings, 'eps': eps})
      made.append((name, attack.function, {'attack': attack.entry.name, **attack.settings}))
  images, labels = np.asarray(images), np.asarray(labels)
  if len(images) != len(labels):
    raise ValueError(f'{len(images)} images but {len(labels)} labels.')
  key = jax.random.key(0) if key is None else key
  start = time.perf_counter()
  found = tuple(model_warnings(logits_fn, images[:100], labels[:100]))
  for line in found:
    warnings.warn(f'autoattack_l2: {line}', stacklevel=2)
  clean = predict(logits_fn, images, batch_size=batch_size) == labels
  robust = clean.copy()
  broken_by = np.full(len(labels), -1)
  l2 = np.where(clean, np.inf, 0.0)
  adv = to_float_images(images).copy() if keep_adv else None
  reports = []
  for i, (name, attack, settings) in enumerate(made):
    index = np.flatnonzero(robust)
    num_unverified = num_box = num_broken = 0
    seconds = 0.0
    if len(index):
      evaluation = evaluate_attack(
        attack,
        logits_fn,
        images[index],
        labels[index],
        name=name,
        batch_size=batch_size,
        mesh=mesh,
        key=jax.random.fold_in(key, i),
        keep_adv=True,
        progress=progress,
        resume_dir=None
        if resume_dir is None
        else pathlib.Path(resume_dir) / f'{i}_{folder_name(name)}',
      )
      seconds = evaluation.seconds
      x = to_float_images(images[index])
      norms = np.linalg.norm(
        (evaluation.adv - x).reshape(len(index), -1).astype(np.float64), axis=1
      )
      in_box = np.all((evaluation.adv >= 0) & (evaluation.adv <= 1), axis=(1, 2, 3))
      predicted = predict(logits_fn, evaluation.adv, batch_size=batch_size)
      broken = (predicted >= 0) & (predicted != labels[index]) & in_box
      broken &= norms <= eps * (1 + _EPS_RTOL)
      num_unverified = int(np.sum(evaluation.success & ~broken))
      num_box = int(np.sum(~in_box))
      num_broken = int(broken.sum())
      hit = index[broken]
      robust[hit] = False
      broken_by[hit] = i
      l2[hit] = norms[broken]
      if keep_adv:
        adv[hit] = evaluation.adv[broken]
    reports.append(
      AutoAttackComponent(
        name=name,
        settings=settings,
        num_attacked=len(index),
        num_broken=num_broken,
        robust_accuracy=float(robust.mean()),
        seconds=seconds,
        num_unverified=num_unverified,
        num_box_violations=num_box,
      )
    )
  return AutoAttackEvaluation(
    eps=float(eps),
    version=version,
    clean=clean,
    robust=robust,
    broken_by=broken_by,
    l2=l2,
    components=tuple(reports),
    seconds=time.perf_counter() - start,
    adv=adv,
    warnings=found,
  )
