"""Adversarial training: the DDN defence (Eq. 9), the Madry et al. baseline and the Eq. 6 mix."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ddn_jax import attacks
from ddn_jax.data import to_float_images
from ddn_jax.training._state import TrainState
from ddn_jax.training._step import optimizer_step

LogitsFn = Callable[[jax.Array], jax.Array]


class AdversaryResult(NamedTuple):
  """What an `Adversary` returns for a batch of ``B`` examples.

  Attributes:
    adv: ``(B, H, W, C)`` the images to train on, within ε of the inputs, in [0, 1].
    success: ``(B,)`` bool, whether the model (inference mode) misclassifies ``adv``.
    l2: ``(B,)`` L2 norm of the attack's perturbation before the projection into the ε-ball.
      For DDN, the minimal adversarial norm found (0 where the clean image is already
      misclassified or no adversarial was found); PGD projects at every step, so its final
      norm.
  """

  adv: jax.Array
  success: jax.Array
  l2: jax.Array


# (logits_fn, images, labels, key) -> AdversaryResult; see `ddn_adversary`, `madry_adversary`.
Adversary = Callable[[LogitsFn, jax.Array, jax.Array, jax.Array], AdversaryResult]


def _ddn_adversary(logits_fn, images, labels, key, *, eps, levels, **ddn_kwargs) -> AdversaryResult:
  # Unprojected, so that the minimal norm can be logged; then projected as `ddn(eps=eps)`
  # does, with the same rounding onto the grey-level grid.
  result = attacks.ddn(logits_fn, images, labels, levels=levels, key=key, **ddn_kwargs)
  adv = attacks.project_l2_ball(images, result.adv, eps, levels=levels)
  success = attacks.is_adversarial(logits_fn(adv), labels, False)
  return AdversaryResult(adv=adv, success=success, l2=result.l2)


def ddn_adversary(
  *,
  eps: float,
  steps: int = 100,
  gamma: float = 0.05,
  init_norm: float = 1.0,
  alpha_init: float = 1.0,
  alpha_final: float = 0.01,
  levels: int | None = 256,
) -> Adversary:
  """The DDN defence's adversary: DDN with a fixed budget, projected into the ε-ball.

  The paper runs 100 steps with ε = 2.4 on MNIST and ε = 1 on CIFAR-10. Other arguments are
  those of `ddn_jax.attacks.ddn`.

  Args:
    eps: radius of the L2 ball the adversarial examples are projected into.
    steps: DDN iterations per training batch.
    gamma: DDN's multiplicative norm update.
    init_norm: DDN's initial norm.
    alpha_init: DDN's first step size.
    alpha_final: DDN's last step size.
    levels: grey levels the adversarial images are quantised to; None disables it.

  Returns:
    An `Adversary` for `adversarial_train_step`.

  References:
    Rony et al., 2019, Section 5 (Eq. 9) and Section 6.
  """
  return functools.partial(
    _ddn_adversary,
    eps=eps,
    levels=levels,
    steps=steps,
    gamma=gamma,
    init_norm=init_norm,
    alpha_init=alpha_init,
    alpha_final=alpha_final,
  )


def _pgd_adversary(logits_fn, images, labels, key, **pgd_kwargs) -> AdversaryResult:
  result = attacks.pgd_l2(logits_fn, images, labels, key=key, **pgd_kwargs)
  return AdversaryResult(adv=result.adv, success=result.success, l2=result.l2)


def madry_adversary(
  *, eps: float, steps: int, step_size: float, random_start: bool = True
) -> Adversary:
  """The Madry et al. baseline's adversary: PGD in the L2 ε-ball, from a random start.

  Args:
    eps: radius of the L2 ball.
    steps: PGD steps per training batch.
    step_size: L2 length of each step.
    random_start: start from a uniform random point of the ball.

  Returns:
    An `Adversary` for `adversarial_train_step`.

  References:
    Madry et al., 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks" (Eq. 7
    of Rony et al., 2019).
  """
  return functools.partial(
    _pgd_adversary, eps=eps, steps=steps, step_size=step_size, random_start=random_start
  )


def madry_step_size(eps: float, steps: int) -> float:
  """PGD's step length when none is given: ``2.5 * eps / steps`` (Madry et al.'s rule)."""
  return 2.5 * eps / steps


def make_adversary(
  name: str | None,
  *,
  eps: float,
  steps: int,
  gamma: float = 0.05,
  step_size: float | None = None,
) -> Adversary | None:
  """The training adversary called ``name``, as the CLI and the experiments configure it.

  Args:
    name: ``'ddn'`` (`ddn_adversary`, the paper's defence), ``'madry'`` (`madry_adversary`) or
      ``None`` / ``'none'`` for plain training.
    eps: radius of the L2 ball.
    steps: attack steps per training batch.
    gamma: DDN's γ.
    step_size: PGD's step length (None: `madry_step_size`).

  Returns:
    An `Adversary`, or None.

  Raises:
    ValueError: an unknown name.
  """
  if name in (None, 'none'):
    return None
  if name == 'ddn':
    return ddn_adversary(eps=eps, steps=steps, gamma=gamma)
  if name == 'madry':
    step_size = madry_step_size(eps, steps) if step_size is None else step_size
    return madry_adversary(eps=eps, steps=steps, step_size=step_size)
  raise ValueError(f"Unknown adversary {name!r}; expected 'ddn', 'madry' or 'none'.")


def adversarial_train_step(
  state: TrainState,
  batch: Mapping[str, jax.Array],
  *,
  adversary: Adversary | None = None,
  clean_weight: float | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step on α·J(clean) + (1 − α)·J(adversarial) (Eq. 6; α = 0 is Eq. 9).

  The adversary attacks the current parameters in inference mode (dropout off, batch-norm
  running statistics) and no gradient flows through it; the loss is then taken in training
  mode. With α = 1 no attack is run (plain training).

  Pure and jit-able. Under ``jax.jit`` with the batch sharded along a ``'data'`` mesh axis and
  the state replicated (`shard_batch`, `replicate`), the attack runs per device inside a
  ``jax.shard_map`` island with no communication, and XLA all-reduces the gradient; the
  result does not depend on the number of devices.

  Args:
    state: the current `TrainState`.
    batch: ``{"image": (B, H, W, C) uint8 or float in [0, 1], "label": (B,) int}``.
    adversary: e.g. `ddn_adversary` (the paper's defence) or `madry_adversary`; None for
      plain training.
    clean_weight: α of Eq. 6, in [0, 1]; default 1 without an adversary, else 0 (Eq. 9).

  Returns:
    The new state and scalar metrics of the batch: ``"loss"`` (the objective above, with
    dropout), ``"clean_accuracy"`` of the parameters before the step in inference mode, and
    with an adversary ``"adv_accuracy"`` on its images and ``"adv_l2"``, the mean
    `AdversaryResult.l2` (for DDN: before the ε projection).

  Raises:
    ValueError: ``clean_weight`` outside [0, 1], or below 1 without an adversary.

  References:
    Rony et al., 2019, Eqs. 6 and 9.
  """
  if clean_weight is None:
    clean_weight = 1.0 if adversary is None else 0.0
  if not 0 <= clean_weight <= 1:
    raise ValueError(f'clean_weight must be in [0, 1], got {clean_weight}.')
  if adversary is None and clean_weight != 1:
    raise ValueError(
      f'clean_weight={clean_weight} < 1 weights adversarial images: pass an adversary.'
    )
  images, labels = to_float_images(batch['image']), batch['label']
  clean_key, adv_key, attack_key = jax.random.split(jax.random.fold_in(state.rng, state.step), 3)
  logits_fn = state.logits_fn()
  metrics = {'clean_accuracy': jnp.mean(attacks.predicted_class(logits_fn(images)) == labels)}
  terms = [(clean_weight, images, clean_key)]
  if clean_weight < 1:
    result = jax.lax.stop_gradient(adversary(logits_fn, images, labels, attack_key))
    metrics['adv_accuracy'] = jnp.mean(~result.success)
    metrics['adv_l2'] = jnp.mean(result.l2)
    terms.append((1 - clean_weight, result.adv, adv_key))
  terms = [term for term in terms if term[0] > 0]
  new_state, loss, _ = optimizer_step(state, labels, terms)
  return new_state, {'loss': loss, **metrics}
