"""The targeted protocol: every image attacked towards several target classes."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import jax
import numpy as np

from ddn_jax import attacks
from ddn_jax.evaluation._evaluate import (
  Attack,
  AttackEvaluation,
  LogitsFn,
  check_dataset,
  run_batches,
)


@dataclasses.dataclass(frozen=True, eq=False)
class TargetedEvaluation:
  """A targeted attack over ``P = N * T`` (image, target) pairs, ``T`` targets per image.

  Attributes:
    image_index: ``(P,)`` the image of each pair; pairs are image-major (pair ``i * T + t`` is
      target ``t`` of image ``i``).
    target: ``(P,)`` the target class of each pair.
    pairs: the :class:`AttackEvaluation` over all pairs; its summary is the average case.
    least_likely: an :class:`AttackEvaluation` over the ``N`` images: per image, its worst
      pair, i.e. the first target the attack failed on if any, else the target with the
      largest norm; it succeeds only if every target of the image succeeded (never where the
      model's logits at the image are not finite). Its arrays
      (``l2``, ``num_grads``, ``num_forwards``, ``adv``) are those of that pair, and its times
      those of all pairs; its summary is the least-likely case.
    least_likely_target: ``(N,)`` the target class of each image's worst pair.
  """

  image_index: np.ndarray
  target: np.ndarray
  pairs: AttackEvaluation
  least_likely: AttackEvaluation
  least_likely_target: np.ndarray


def target_classes(
  labels: Any, num_classes: int, *, num_targets: int | None = None, seed: int = 0
) -> np.ndarray:
  """The target classes of each image: every other class, or a random subset of them.

  Args:
    labels: ``(N,)`` true classes.
    num_classes: ``K``.
    num_targets: ``None`` for all ``K - 1`` other classes (in increasing order), or the number
      ``T`` of distinct other classes to draw per image, e.g. 100 of ImageNet's 1000.
    seed: seed of the random draw (NumPy ``default_rng``); unused for all classes.

  Returns:
    ``(N, T)`` int targets, never the image's own class, sorted within each row.

  References:
    Rony et al., 2019, Section 4, after Carlini and Wagner, 2017.
  """
  labels = np.asarray(labels)
  num_classes = attacks.check_count('num_classes', num_classes, minimum=2)
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'labels must be (N,) integers, got shape {labels.shape}.')
  if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(
      f'labels must be in [0, {num_classes}), got values in [{labels.min()}, {labels.max()}].'
    )
  others = np.arange(num_classes)[None, :] != labels[:, None]
  if num_targets is None:
    return np.nonzero(others)[1].reshape(len(labels), num_classes - 1)
  num_targets = attacks.check_count('num_targets', num_targets)
  if num_targets > num_classes - 1:
    raise ValueError(
      f'num_targets must be at most num_classes - 1 = {num_classes - 1}, got {num_targets}.'
    )
  # A uniformly random subset per image: the classes with the smallest random keys.
  scores = np.where(others, np.random.default_rng(seed).random(others.shape), np.inf)
  return np.sort(np.argsort(scores, axis=1, kind='stable')[:, :num_targets], axis=1)


def evaluate_targeted(
  attack: Attack,
  logits_fn: LogitsFn,
  images: Any,
  labels: Any,
  *,
  name: str,
  num_targets: int | None = None,
  seed: int = 0,
  batch_size: int = 512,
  mesh: jax.sharding.Mesh | None = None,
  key: jax.Array | None = None,
  keep_adv: bool = False,
  progress: bool = False,
  resume_dir: str | os.PathLike | None = None,
) -> TargetedEvaluation:
  """Runs a targeted attack towards every other class (or ``num_targets`` random ones).

  All (image, target) pairs are attacked with ``targeted=True`` in batches of pairs, as
  `evaluate_attack` does (same keys, sharding and padding, batch ``i`` holding pairs
  ``[i * batch_size, (i + 1) * batch_size)``); images are gathered per batch, so the pairs'
  images are never all in memory.

  Args:
    attack: a targeted attack, e.g. ``functools.partial(ddn_jax.attacks.ddn, steps=100)``.
    logits_fn: images ``(B, H, W, C)`` float in [0, 1] -> logits ``(B, K)``.
    images: ``(N, H, W, C)`` uint8 or float in [0, 1].
    labels: ``(N,)`` int true classes.
    name: the attack's name in reports.
    num_targets: targets per image: ``None`` for all ``K - 1`` other classes (9 on MNIST and
      CIFAR-10), or a number of random ones (100 on ImageNet in the paper).
    seed: seed of the random targets.
    batch_size: pairs per attack call; a multiple of the devices of ``mesh``.
    mesh: optional ``'data'`` mesh to shard each batch over.
    key: PRNG key (default ``jax.random.key(0)``).
    keep_adv: also keep the adversarial images of all pairs.
    progress: show a progress bar.
    resume_dir: where each finished batch of pairs is saved, to resume after an interruption
      (as `evaluate_attack`'s; a rerun with other arguments, targets included, is refused).

  Returns:
    A :class:`TargetedEvaluation`: ``pairs.summary`` is the average case and
    ``least_likely.summary`` the least-likely case of Tables 2-4.

  References:
    Rony et al., 2019, Section 4 (Tables 2-4).
  """
  images, labels = check_dataset(images, labels, batch_size)
  shape = jax.ShapeDtypeStruct((1, *images.shape[1:]), np.float32)
  num_classes = jax.eval_shape(logits_fn, shape).shape[-1]
  targets = target_classes(labels, num_classes, num_targets=num_targets, seed=seed)
  num_images, per_image = targets.shape
  image_index = np.repeat(np.arange(num_images), per_image)
  pairs = run_batches(
    attack,
    logits_fn,
    images,
    image_index,
    targets.reshape(-1),
    name=name,
    batch_size=batch_size,
    mesh=mesh,
    key=key,
    targeted=True,
    keep_adv=keep_adv,
    progress=progress,
    resume_dir=resume_dir,
  )
  # Per image the worst pair: a non-finite model (NaN) or a failure (inf) first, then the
  # largest norm.
  worst = np.argmax(pairs.norms.reshape(num_images, per_image), axis=1)
  chosen = np.arange(num_images) * per_image + worst
  least_likely = AttackEvaluation(
    name=name,
    success=pairs.success.reshape(num_images, per_image).all(axis=1),
    l2=pairs.l2[chosen],
    num_grads=pairs.num_grads[chosen],
    worst_l2=pairs.worst_l2[chosen],
    seconds=pairs.seconds,
    first_batch_seconds=pairs.first_batch_seconds,
    batch_size=pairs.batch_size,
    num_devices=pairs.num_devices,
    adv=None if pairs.adv is None else pairs.adv[chosen],
    model_finite=pairs.model_finite.reshape(num_images, per_image).all(axis=1),
    num_forwards=None if pairs.num_forwards is None else pairs.num_forwards[chosen],
  )
  return TargetedEvaluation(
    image_index=image_index,
    target=targets.reshape(-1),
    pairs=pairs,
    least_likely=least_likely,
    least_likely_target=targets.reshape(-1)[chosen],
  )
