"""The training step and evaluation."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddn_jax.models import make_logits_fn
from ddn_jax.training._state import TrainState

# (logits_fn, images, labels, key) -> images; see `train_step`.
PerturbFn = Callable[[Callable[[jax.Array], jax.Array], jax.Array, jax.Array, jax.Array], jax.Array]


def to_float_images(images: jax.Array) -> jax.Array:
  """Maps uint8 images to float32 in [0, 1]; float images pass unchanged."""
  if jnp.issubdtype(images.dtype, jnp.integer):
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)


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
      the current model in inference mode (``make_logits_fn``); no gradient
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
    logits_fn = make_logits_fn(state.model, state.variables)
    images = jax.lax.stop_gradient(perturb_fn(logits_fn, images, labels, perturb_key))

  def loss_fn(params):
    variables = state.replace(params=params).variables
    logits, updates = state.model.apply(
      variables, images, train=True, rngs={'dropout': dropout_key}, mutable=['batch_stats']
    )
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, (logits, updates.get('batch_stats', {}))

  (loss, (logits, batch_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = state.tx.update(grads, state.opt_state, state.params)
  new_state = state.replace(
    step=state.step + 1,
    params=optax.apply_updates(state.params, updates),
    batch_stats=batch_stats,
    opt_state=opt_state,
  )
  accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
  return new_state, {'loss': loss, 'accuracy': accuracy}


def _sums(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum()
  return loss, jnp.sum(jnp.argmax(logits, -1) == labels)


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
