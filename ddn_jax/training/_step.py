"""The training step and evaluation."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddn_jax import attacks
from ddn_jax.data import to_float_images
from ddn_jax.models import apply_in_precision, make_logits_fn
from ddn_jax.training._state import TrainState

# (logits_fn, images, labels, key) -> images; see `train_step`.
PerturbFn = Callable[[Callable[[jax.Array], jax.Array], jax.Array, jax.Array, jax.Array], jax.Array]


def train_step(
  state: TrainState,
  batch: Mapping[str, jax.Array],
  *,
  perturb_fn: PerturbFn | None = None,
) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimizer step on the softmax cross-entropy of a batch.

  Pure and jit-able, e.g. ``jax.jit(train_step)``.

  Args:
    state: the current `TrainState`.
    batch: ``{"image": (B, H, W, C) uint8 or float in [0, 1], "label":
      (B,) int}``.
    perturb_fn: optional ``perturb_fn(logits_fn, images, labels, key)``
      returning the images to train on instead, e.g. DDN adversarial
      examples for the adversarial training of the paper (Eq. 9). It sees
      the current model in inference mode (`TrainState.logits_fn`); no gradient
      flows through it.

  Returns:
    The new state and ``{"loss": scalar, "accuracy": scalar}`` on the
    images trained on.

  References:
    Rony et al., 2019, Eq. 9.
  """
  images, labels = to_float_images(batch['image']), batch['label']
  dropout_key, perturb_key = jax.random.split(jax.random.fold_in(state.rng, state.step))
  if perturb_fn is not None:
    logits_fn = state.logits_fn()
    images = jax.lax.stop_gradient(perturb_fn(logits_fn, images, labels, perturb_key))
  new_state, loss, (accuracy,) = optimizer_step(state, labels, [(1.0, images, dropout_key)])
  return new_state, {'loss': loss, 'accuracy': accuracy}


def optimizer_step(
  state: TrainState,
  labels: jax.Array,
  terms: Sequence[tuple[float, jax.Array, jax.Array]],
) -> tuple[TrainState, jax.Array, list[jax.Array]]:
  """One optimizer step on ``sum(weight * cross_entropy(model(images)))`` in training mode.

  Args:
    state: the current `TrainState`.
    labels: ``(B,)`` int labels shared by the terms.
    terms: ``(weight, images, dropout_key)`` triples, ``images`` ``(B, H, W, C)`` float.
      Each term is its own batch for batch norm; the running statistics see them in turn.

  Returns:
    The new state, the loss, and each term's training-mode accuracy.
  """

  def loss_fn(params, labels, inputs):
    loss, batch_stats, accuracies = 0.0, state.batch_stats, []
    for (weight, _, _), (images, dropout_key) in zip(terms, inputs):
      variables = state.replace(params=params, batch_stats=batch_stats).variables
      logits, updates = apply_in_precision(
        state.model,
        state.precision,
        variables,
        images,
        train=True,
        rngs={'dropout': dropout_key},
        mutable=['batch_stats'],
      )
      loss += weight * optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
      batch_stats = updates.get('batch_stats', {})
      accuracies.append(jnp.mean(attacks.predicted_class(logits) == labels))
    return loss, (batch_stats, accuracies)

  # Flax layers such as Dropout are not written for explicitly sharded types: the model runs with
  # the mesh axes made auto, and XLA inserts the all-reduce of the gradient.
  replicated = jax.sharding.NamedSharding(
    jax.typeof(labels).sharding.mesh, jax.sharding.PartitionSpec()
  )
  value_and_grad = jax.sharding.auto_axes(
    jax.value_and_grad(loss_fn, has_aux=True), out_sharding=replicated
  )
  inputs = [(images, dropout_key) for _, images, dropout_key in terms]
  (loss, (batch_stats, accuracies)), grads = value_and_grad(state.params, labels, inputs)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  new_state = state.replace(
    step=state.step + 1,
    params=optax.apply_updates(state.params, updates),
    batch_stats=batch_stats,
    opt_state=opt_state,
  )
  return new_state, loss, accuracies


def _sums(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum()
  return loss, jnp.sum(attacks.predicted_class(logits) == labels)


@functools.partial(jax.jit, static_argnums=0)
def _model_sums(model, variables, images, labels):
  return _sums(make_logits_fn(model, variables)(to_float_images(images)), labels)


def _scores(batch_sums, images, labels, batch_size: int) -> dict[str, float]:
  loss, correct = 0.0, 0
  for start in range(0, len(images), batch_size):
    batch_loss, batch_correct = batch_sums(
      images[start : start + batch_size], labels[start : start + batch_size]
    )
    loss += float(batch_loss)
    correct += int(batch_correct)
  return {'loss': loss / len(images), 'accuracy': correct / len(images)}


def evaluate(
  logits_fn: Callable[[jax.Array], jax.Array],
  images: np.ndarray,
  labels: np.ndarray,
  *,
  batch_size: int = 1000,
) -> dict[str, float]:
  """Mean cross-entropy and accuracy of a classifier over a dataset.

  Args:
    logits_fn: images (B, H, W, C) float in [0, 1] -> logits (B, K), e.g.
      ``make_logits_fn(model, variables)``.
    images: (N, H, W, C) uint8 or float in [0, 1].
    labels: (N,) int.
    batch_size: evaluation batch size (the last batch may be smaller).

  Returns:
    ``{"loss": float, "accuracy": float}``.
  """
  batch_sums = jax.jit(lambda images, labels: _sums(logits_fn(to_float_images(images)), labels))
  return _scores(batch_sums, images, labels, batch_size)


def evaluate_state(
  state: TrainState, images: np.ndarray, labels: np.ndarray, *, batch_size: int = 1000
) -> dict[str, float]:
  """`evaluate` for the state's model in inference mode.

  Unlike ``evaluate(make_logits_fn(...))``, this compiles once per model and
  shape, not once per call, which matters when evaluating every epoch.
  """
  batch_sums = functools.partial(_model_sums, state.model, state.variables)
  return _scores(batch_sums, images, labels, batch_size)
