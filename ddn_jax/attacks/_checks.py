"""Eager checks of what the attacks accept: inputs, hyperparameters, keys and the model.

Every attack follows the same shape: a public function validates its inputs eagerly, then calls one
``jax.jit``-compiled program in which the per-example algorithm is ``jax.vmap``-ped over the batch.
The per-example code sees a single image ``x`` of shape ``(H, W, C)`` and calls the model as
``logits_fn(x[None])[0]``; under ``vmap`` this becomes one batched call of the model.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ddn_jax.attacks._numerics import LogitsFn


def as_pytree_fn(logits_fn: LogitsFn) -> jax.tree_util.Partial:
  """Wraps ``logits_fn`` so it can be a (non-static) argument of a jitted attack.

  A ``jax.tree_util.Partial(apply_fn, params)`` keeps ``params`` as traced leaves, so new
  parameters do not recompile the attack; any other callable becomes a leafless ``Partial``
  whose identity keys the compilation cache.
  """
  if not callable(logits_fn):
    raise TypeError(f'logits_fn must be callable, got {type(logits_fn).__name__}.')
  if isinstance(logits_fn, jax.tree_util.Partial):
    return logits_fn
  return jax.tree_util.Partial(logits_fn)


def is_concrete(x: Any) -> bool:
  return not isinstance(x, jax.core.Tracer)


@jax.jit
def input_stats(inputs: jax.Array, labels: jax.Array):
  return (
    jnp.min(inputs),
    jnp.max(inputs),
    jnp.any(jnp.isnan(inputs)),
    jnp.min(labels),
    jnp.max(labels),
  )


def validate_inputs(logits_fn: LogitsFn, inputs: Any, labels: Any) -> tuple[jax.Array, jax.Array]:
  """Checks an attack's inputs and returns them as arrays.

  Shapes and dtypes are always checked; values (range, NaN, label range) are checked when the
  arrays are concrete, i.e. not when the attack is traced inside a caller's ``jit``/``vmap``.
  Images of a floating dtype narrower than float32 (float16, bfloat16) are cast to float32:
  the attacks' loops carry float32 state. An empty batch is valid; the model is then checked on
  the shape of one example.

  Raises:
    ValueError / TypeError naming the problem.
  """
  if not hasattr(inputs, 'dtype'):
    inputs = np.asarray(inputs)
  if not hasattr(labels, 'dtype'):
    labels = np.asarray(labels)
  if not jnp.issubdtype(inputs.dtype, jnp.floating):
    raise TypeError(
      f'inputs must be floating point with pixels in [0, 1], got dtype {inputs.dtype}; '
      'convert uint8 images with images.astype(np.float32) / 255.'
    )
  if jnp.finfo(inputs.dtype).bits < 32:
    inputs = inputs.astype(jnp.float32)
  if inputs.ndim != 4:
    raise ValueError(
      f'inputs must be a batch of images of shape (N, H, W, C), got shape {inputs.shape} '
      f'(rank {inputs.ndim}); add a batch axis for a single image: inputs[None].'
    )
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise TypeError(f'labels must be integers, got dtype {labels.dtype}.')
  if labels.shape != inputs.shape[:1]:
    raise ValueError(
      f'labels must have shape (N,) = ({inputs.shape[0]},) to match inputs {inputs.shape}, '
      f'got shape {labels.shape}.'
    )
  # Models need not support a batch of 0 (a reshape to (0, -1) fails): check on one example.
  batch = max(inputs.shape[0], 1)
  example = jax.ShapeDtypeStruct((batch, *inputs.shape[1:]), inputs.dtype)
  logits_shape = jax.eval_shape(logits_fn, example).shape
  if len(logits_shape) != 2 or logits_shape[0] != batch:
    raise ValueError(
      f'logits_fn must map inputs {example.shape} to logits of shape (N, num_classes), '
      f'got {logits_shape}.'
    )
  num_classes = logits_shape[1]
  if is_concrete(inputs) and is_concrete(labels) and np.size(inputs):
    # Concrete values can still meet a caller's trace (constants closed over by a jitted or
    # vmapped function, e.g. a sweep over hyperparameters): evaluate the checks eagerly anyway.
    with jax.ensure_compile_time_eval():
      stats = input_stats(jnp.asarray(inputs), jnp.asarray(labels))
    lo, hi, has_nan, label_lo, label_hi = jax.device_get(stats)
    if has_nan:
      raise ValueError('inputs contain NaN.')
    if lo < 0 or hi > 1:
      raise ValueError(
        f'inputs must have pixels in [0, 1], got values in [{lo:g}, {hi:g}]; attacks work in '
        'pixel space: normalise inside the model, not the inputs.'
      )
    if label_lo < 0 or label_hi >= num_classes:
      raise ValueError(
        f'labels must be in [0, {num_classes}) for a model with {num_classes} classes, '
        f'got values in [{label_lo}, {label_hi}].'
      )
  return jnp.asarray(inputs), jnp.asarray(labels)


def check_hyperparameter(
  name: str,
  value: Any,
  *,
  low: float | None = None,
  high: float | None = None,
  low_inclusive: bool = True,
  high_inclusive: bool = True,
) -> None:
  """Range-checks a float hyperparameter when it is concrete (traced values pass through)."""
  if not is_concrete(value) or np.ndim(value) != 0:
    return
  value = float(value)
  if np.isnan(value):
    raise ValueError(f'{name} is NaN.')
  if low is not None and (value < low or (value == low and not low_inclusive)):
    raise ValueError(f'{name} must be {">=" if low_inclusive else ">"} {low}, got {value}.')
  if high is not None and (value > high or (value == high and not high_inclusive)):
    raise ValueError(f'{name} must be {"<=" if high_inclusive else "<"} {high}, got {value}.')


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
  """Checks a static integer hyperparameter (steps, levels, ...)."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(
      f'{name} must be a Python int (it is static: it sets the program), got {value!r}.'
    )
  if value < minimum:
    raise ValueError(f'{name} must be >= {minimum}, got {value}.')
  return int(value)


def default_key(key: Any) -> jax.Array:
  """``key``, checked to be one PRNG key or a batch of them, or ``jax.random.key(0)`` for None.

  A typed key (``jax.random.key``) of shape ``()`` or a raw ``uint32`` key
  (``jax.random.PRNGKey``) of the default implementation's shape is accepted, traced or not; so is
  a batch ``(N,)`` of typed keys, one per example (`example_keys` checks ``N``).

  Raises:
    TypeError: anything else (an int seed, an array of another shape or dtype).
  """
  if key is None:
    return jax.random.key(0)
  dtype, shape = getattr(key, 'dtype', None), getattr(key, 'shape', None)
  if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key):
    if len(shape) <= 1:
      return key
  elif dtype == jnp.uint32 and shape == jax.eval_shape(jax.random.PRNGKey, 0).shape:
    return key
  got = type(key).__name__ if dtype is None else f'an array of dtype {dtype} and shape {shape}'
  raise TypeError(
    f'key must be a PRNG key, e.g. key=jax.random.key(0), or a batch (N,) of them, one per '
    f'example, got {got}.'
  )


def example_keys(key: jax.Array, batch_size: int) -> jax.Array:
  """The per-example keys ``(batch_size,)``: ``key`` itself if it is a batch of typed keys, else
  ``jax.random.split(key, batch_size)``.

  Keys given per example (e.g. ``fold_in(key, i)`` for the ``i``-th example of a dataset, as
  `ddn_jax.evaluation` does) make each example's randomness independent of the batch it is in;
  one key split here depends on the example's position and the batch size.

  Raises:
    ValueError: a batch of keys of another length than the inputs.
  """
  if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.ndim == 1:
    if key.shape[0] != batch_size:
      raise ValueError(
        f'key holds {key.shape[0]} per-example keys for a batch of {batch_size} inputs; pass one '
        'key per example, or a single key.'
      )
    return key
  return jax.random.split(key, batch_size)


def renamed(name: str, value: Any, old_name: str, old_value: Any, default: Any = None) -> Any:
  """The value of an argument that also has an older name: whichever was given, else ``default``.

  Raises:
    TypeError: both names were given.
  """
  if old_value is None:
    return default if value is None else value
  if value is not None:
    raise TypeError(f'Give {name} only ({old_name} is its older name), not both.')
  return old_value
