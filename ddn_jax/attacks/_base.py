"""Pieces shared by every attack: the result type, input checks, and per-example helpers.

Every attack follows the same shape: a public function validates its inputs eagerly, then calls one
``jax.jit``-compiled program in which the per-example algorithm is ``jax.vmap``-ped over the batch.
The per-example code sees a single image ``x`` of shape ``(H, W, C)`` and calls the model as
``logits_fn(x[None])[0]``; under ``vmap`` this becomes one batched call of the model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddn_jax.attacks import _canonical_conv

LogitsFn = Callable[[jax.Array], jax.Array]


class AttackResult(NamedTuple):
  """What every attack returns; all fields are batched along the first axis.

  Attributes:
    adv: ``(N, H, W, C)`` adversarial images, in ``[0, 1]``. Minimum-norm attacks return the
      clean input for an example they failed on. Bounded attacks (FGM, PGD, DDN with
      ``max_norm``) return their point in the ε-ball whether or not it is adversarial, since
      that point is what adversarial training uses; ``success`` says which ones are.
    l2: ``(N,)`` L2 norm of ``adv - inputs``, computed from the returned ``adv``.
    success: ``(N,)`` bool, whether ``logits_fn(adv)`` is adversarial (misclassified, or
      classified as the target when ``targeted``), re-checked on the returned ``adv``.
    num_grads: ``(N,)`` int32, gradient evaluations (forward+backward passes) the algorithm
      spent on each example.
  """

  adv: jax.Array
  l2: jax.Array
  success: jax.Array
  num_grads: jax.Array


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


def _is_concrete(x: Any) -> bool:
  return not isinstance(x, jax.core.Tracer)


@jax.jit
def _input_stats(inputs: jax.Array, labels: jax.Array):
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
  logits_shape = jax.eval_shape(logits_fn, jax.ShapeDtypeStruct(inputs.shape, inputs.dtype)).shape
  if len(logits_shape) != 2 or logits_shape[0] != inputs.shape[0]:
    raise ValueError(
      f'logits_fn must map inputs {inputs.shape} to logits of shape (N, num_classes), '
      f'got {logits_shape}.'
    )
  num_classes = logits_shape[1]
  if _is_concrete(inputs) and _is_concrete(labels) and np.size(inputs):
    # Concrete values can still meet a caller's trace (constants closed over by a jitted or
    # vmapped function, e.g. a sweep over hyperparameters): evaluate the checks eagerly anyway.
    with jax.ensure_compile_time_eval():
      stats = _input_stats(jnp.asarray(inputs), jnp.asarray(labels))
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
) -> None:
  """Range-checks a float hyperparameter when it is concrete (traced values pass through)."""
  if not _is_concrete(value) or np.ndim(value) != 0:
    return
  value = float(value)
  if np.isnan(value):
    raise ValueError(f'{name} is NaN.')
  if low is not None and (value < low or (value == low and not low_inclusive)):
    raise ValueError(f'{name} must be {">=" if low_inclusive else ">"} {low}, got {value}.')
  if high is not None and value > high:
    raise ValueError(f'{name} must be <= {high}, got {value}.')


def check_count(name: str, value: Any, *, minimum: int = 1) -> int:
  """Checks a static integer hyperparameter (steps, levels, ...)."""
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
    raise TypeError(
      f'{name} must be a Python int (it is static: it sets the program), got {value!r}.'
    )
  if value < minimum:
    raise ValueError(f'{name} must be >= {minimum}, got {value}.')
  return int(value)


def default_key(key: jax.Array | None) -> jax.Array:
  return jax.random.key(0) if key is None else key


def map_examples(
  fn: Callable[..., Any],
  batched: tuple[Any, ...],
  shared: tuple[Any, ...],
) -> Any:
  """``vmap``s the per-example ``fn(*batched, *shared)`` over the leading axis of ``batched``.

  Runs per device as `map_batches` does.
  """
  in_axes = (0,) * len(batched) + (None,) * len(shared)
  return map_batches(jax.vmap(fn, in_axes=in_axes), batched, shared)


def map_batches(
  mapped: Callable[..., Any],
  batched: tuple[Any, ...],
  shared: tuple[Any, ...],
) -> Any:
  """Runs ``mapped(*batched, *shared)``, a function of a batch whose examples are independent.

  When the batch is sharded along a mesh axis under explicit sharding (a mesh from
  ``jax.make_mesh``), ``mapped`` runs per device inside ``jax.shard_map``, on each device's
  slice, with no communication; ``shared`` (model parameters, hyperparameters) is replicated.
  Per-example values such as PRNG keys are made for the whole batch before, so the result does
  not depend on the number of devices. Otherwise ``jit`` partitions ``mapped`` as it sees fit.
  """
  sharding = jax.typeof(batched[0]).sharding
  axis = sharding.spec[0] if sharding.spec else None
  if axis is None:
    return mapped(*batched, *shared)
  mesh, spec = sharding.mesh, jax.sharding.PartitionSpec
  batched = tuple(
    jax.tree.map(
      lambda a: jax.sharding.reshard(
        a, jax.sharding.NamedSharding(mesh, spec(axis, *([None] * (a.ndim - 1))))
      ),
      b,
    )
    for b in batched
  )
  shared = jax.tree.map(
    lambda a: jax.sharding.reshard(a, jax.sharding.NamedSharding(mesh, spec())), shared
  )
  # Per-example code never communicates; its loop carries start replicated (constants) and
  # become per-device, which the varying-axes type check would otherwise reject.
  return jax.shard_map(
    mapped,
    mesh=mesh,
    in_specs=(spec(axis),) * len(batched) + (spec(),) * len(shared),
    out_specs=spec(axis),
    check_vma=False,
  )(*batched, *shared)


def compacting_while_loop(
  cond_fun: Callable[[Any], jax.Array],
  body_fun: Callable[[Any], Any],
  state: Any,
  *,
  shrink: int = 4,
  stages: int = 3,
  min_size: int = 4,
) -> Any:
  """The vmapped ``lax.while_loop`` of independent examples, without running finished ones.

  Under ``vmap`` a while loop runs every row until the last example finishes, finished rows
  frozen by a select: a few slow examples cost the whole batch. Here, once at most ``N / shrink``
  rows still run, those rows are gathered into a batch of that size and the loop goes on there,
  for up to ``stages`` batch sizes (none below ``min_size``); rows are scattered back at the end.
  Each size is one more copy of the body in the program (compile time grows with ``stages``).
  Row by row the result is the vmapped loop's.

  Args:
    cond_fun: batched state -> ``(N,)`` bool, the rows still running.
    body_fun: batched state -> batched state, one step of every row (rows that are not running
      are restored here afterwards).
    state: pytree of arrays with a leading batch axis ``N``.
    shrink: factor between consecutive batch sizes.
    stages: maximum number of batch sizes, ``N`` included.
    min_size: smallest batch size to gather into.

  Returns:
    The final state, rows in their original order.
  """
  sizes = [jax.tree.leaves(state)[0].shape[0]]
  while len(sizes) < stages and sizes[-1] // shrink >= min_size:
    sizes.append(sizes[-1] // shrink)

  def step(rows):
    running = cond_fun(rows)
    restore = lambda new, old: jnp.where(running.reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
    return jax.tree.map(restore, body_fun(rows), rows)

  index = None  # Rows of ``state`` in the current batch (None: all of them, in order).
  for next_size in sizes[1:] + [0]:
    rows = state if index is None else jax.tree.map(lambda a, i=index: a[i], state)
    more = lambda r, n=next_size: jnp.sum(cond_fun(r)) > n
    rows = jax.lax.while_loop(more, step, rows)
    if index is None:
      state = rows
    else:
      scatter = lambda a, r, i=index: a.at[i].set(r, unique_indices=True)
      state = jax.tree.map(scatter, state, rows)
    if next_size:
      # The running rows first (at most next_size of them), then finished ones as padding.
      order = jnp.argsort(~cond_fun(rows), stable=True)[:next_size]
      index = order if index is None else index[order]
  return state


def l2_norm(x: jax.Array) -> jax.Array:
  """L2 norm of one example (any shape), as a scalar."""
  return jnp.sqrt(jnp.sum(jnp.square(x)))


def batch_l2_norm(x: jax.Array) -> jax.Array:
  """``(N, ...) -> (N,)`` per-example L2 norms."""
  return jax.vmap(l2_norm)(x)


def single_logits(logits_fn: LogitsFn, x: jax.Array) -> jax.Array:
  """Logits ``(K,)`` of one example ``x``; batched into one model call under ``vmap``."""
  return logits_fn(x[None])[0]


def is_adversarial(logits: jax.Array, label: jax.Array, targeted: bool) -> jax.Array:
  """Whether logits ``(..., K)`` are adversarial for ``label`` (the target when ``targeted``)."""
  pred = jnp.argmax(logits, axis=-1)
  return pred == label if targeted else pred != label


def loss_and_grad_fn(logits_fn: LogitsFn, targeted: bool):
  """Per-example ``(x, y) -> (logits, g)``: ``g`` is the gradient of the cross-entropy to ascend.

  Untargeted attacks ascend the cross-entropy of the true label; targeted ones descend that of
  the target, so ``g`` is the negated gradient for them. One forward+backward pass per call.
  """
  sign = -1.0 if targeted else 1.0

  def loss(x, y):
    logits = single_logits(logits_fn, x)
    return sign * optax.softmax_cross_entropy_with_integer_labels(logits, y), logits

  grad_fn = _canonical_conv.canonicalize_convolutions(jax.grad(loss, has_aux=True))

  def fn(x, y):
    g, logits = grad_fn(x, y)
    return logits, g

  return fn


def normalize(g: jax.Array, fallback: jax.Array) -> jax.Array:
  """``g / ||g||``, or ``fallback`` (a unit vector) where ``g`` is zero."""
  norm = l2_norm(g)
  return jnp.where(norm > 0, g / jnp.where(norm > 0, norm, 1), fallback)


def random_unit(key: jax.Array, like: jax.Array) -> jax.Array:
  d = jax.random.normal(key, like.shape, like.dtype)
  return d / l2_norm(d)


def project_ball(delta: jax.Array, eps: jax.Array) -> jax.Array:
  """Projects one perturbation onto the L2 ball of radius ``eps``."""
  norm = l2_norm(delta)
  return delta * jnp.minimum(1, eps / jnp.where(norm > 0, norm, 1))


def quantize(x: jax.Array, levels: int | None) -> jax.Array:
  """Rounds ``x`` in ``[0, 1]`` to the nearest of ``levels`` grey levels (no-op for None)."""
  if levels is None:
    return x
  return jnp.round(x * (levels - 1)) / (levels - 1)


def cosine_schedule(
  steps: int, alpha_init: jax.Array, alpha_final: jax.Array, schedule: str = 'paper'
) -> jax.Array:
  """``(steps,)`` values cosine-annealed from ``alpha_init`` towards ``alpha_final``.

  ``'paper'`` reaches ``alpha_final`` at the last step (t = i / (steps - 1)), as the DDN paper
  states; ``'adv_lib'`` uses t = i / steps like adv-lib and the official DDN and FMN code, whose
  last step is ``alpha_final + (alpha_init - alpha_final) * (1 - cos(π / steps)) / 2``, not
  ``alpha_final``.
  """
  denominator = max(steps - 1, 1) if schedule == 'paper' else steps
  # The cosine factor in float64 at trace time (steps is static), as the references compute it.
  factor = 0.5 * (1 + np.cos(np.pi * np.arange(steps) / denominator))
  return alpha_final + (alpha_init - alpha_final) * jnp.asarray(factor, jnp.float32)


def finalize(
  logits_fn: LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  adv: jax.Array,
  num_grads: jax.Array,
  *,
  targeted: bool,
  keep_failed: bool,
) -> AttackResult:
  """Re-checks ``adv`` on the model and assembles the batched :class:`AttackResult`.

  Args:
    keep_failed: bounded attacks keep a non-adversarial point; minimum-norm attacks reset a
      failed example to its clean input.
  """
  success = is_adversarial(logits_fn(adv), labels, targeted)
  if not keep_failed:
    adv = jnp.where(success[:, None, None, None], adv, inputs)
  return AttackResult(
    adv=adv, l2=batch_l2_norm(adv - inputs), success=success, num_grads=num_grads.astype(jnp.int32)
  )
