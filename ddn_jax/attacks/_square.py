"""Square Attack in the L2 ball: a score-based random search that needs no gradients."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ddn_jax.attacks import _checks, _mapping, _numerics, _result

# The reference code's floor on norms, and its schedule of the window's area fraction p: on a
# 10000-query scale, p_init halves after each of these query counts.
_TINY_NORM = 1e-12
_P_HALVINGS = (10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000)
_LOSSES = ('margin', 'ce')
_MIN_SIZE = 5


class _State(NamedTuple):
  """Per-example state of one run."""

  i: jax.Array  # queries made after the initial one
  x_best: jax.Array  # (H, W, C) the point of the lowest loss, or the adversarial one
  loss_best: jax.Array  # its loss (+inf where the logits were not finite)
  found: jax.Array  # bool, x_best is adversarial


def _halvings(queries: int) -> np.ndarray:
  """``(queries,)`` int32: how many times p_init is halved at each query, the schedule rescaled
  to ``queries`` as the reference code does (``int(i / queries * 10000)``, in float64)."""
  it = np.array([int(i / queries * 10000) for i in range(queries)])
  return np.searchsorted(np.array(_P_HALVINGS), it, side='left').astype(np.int32)


def _rectangle_sums(size: int) -> np.ndarray:
  """``S[d, k] = sum_{j=d}^{k-1} 1 / (j + 1)^2`` (float32), the value of the concentric-squares
  pattern at ring ``d`` of a pattern of ``k`` rings, summed in float64."""
  terms = 1 / np.arange(1, size + 1, dtype=np.float64) ** 2
  ends = np.concatenate([[0.0], np.cumsum(terms)])
  return np.maximum(ends[None, :] - ends[:, None], 0).astype(np.float32)


def _eta(a, b, s, sums):
  """The reference code's ``eta(s)`` at window coordinates ``(a, b)`` (integer arrays covering
  the window; 0 outside it): a square of side ``s`` whose upper half (``s // 2`` rows) and lower
  half are each a stack of concentric rectangles, weights ``1 / (ring + 1)^2`` summed from the
  centre, normalised to unit norm, the lower half negated, the whole normalised again.
  """
  half = s // 2
  inside = (a >= 0) & (a < s) & (b >= 0) & (b < s)
  top = a < half
  rows = jnp.where(top, half, s - half)
  i = jnp.where(top, a, a - half)
  ring = jnp.maximum(jnp.abs(i - rows // 2), jnp.abs(b - s // 2))
  rings = s // 2 + 1  # max(rows // 2, s // 2) + 1
  raw = jnp.where(inside, sums[jnp.clip(ring, 0, sums.shape[0] - 1), rings], 0)

  def unit(part):
    norm = jnp.sqrt(jnp.sum(jnp.where(part, raw, 0) ** 2))
    return jnp.where(part, raw / jnp.where(norm > 0, norm, 1), 0)

  eta = unit(top & inside) - unit(~top & inside)
  return eta / _numerics.l2_norm(eta)


def _initial_delta(key, shape, sums):
  """The reference's start: a grid of ``eta`` tiles of side ``H // 5``, each transposed at random
  and signed at random per channel (tiles that would cross the image's edge are cut)."""
  height, width, channels = shape
  side = height // 5
  start = (height - side * 5) // 2
  rows, cols = height // side, width // side
  # Per pixel (static): its tile, and its position in the tile.
  r = np.arange(height)[:, None] - start
  c = np.arange(width)[None, :] - start
  tiled = (r >= 0) & (c >= 0) & (r // side < rows) & (c // side < cols)
  tile = np.where(tiled, r // side * cols + c // side, 0)
  a, b = np.broadcast_arrays(r % side, c % side)
  grid = np.arange(side)
  eta = _eta(grid[:, None], grid[None, :], side, sums)
  flips, signs = jax.random.split(key)
  flips = jax.random.bernoulli(flips, shape=(rows * cols,))
  signs = jax.random.rademacher(signs, (rows * cols, channels), jnp.float32)
  pattern = jnp.where(flips[tile], eta[b, a], eta[a, b])
  return jnp.where(tiled[..., None], pattern[..., None] * signs[tile], 0)


def _to_ball(x, delta, eps):
  """``clip(x + eps * delta / ||delta||, 0, 1)``, the reference's point on the ε-sphere."""
  return jnp.clip(x + delta * (eps / (_numerics.l2_norm(delta) + _TINY_NORM)), 0, 1)


def _proposal(key, x, x_best, eps, p, sums):
  """One query's candidate: a window of side ``s`` (odd, about ``sqrt(p H W)``, at least 3)
  gets a new ``eta`` pattern added to its normalised old content, scaled to take the budget left
  in the ε-ball and that of a second window, which is zeroed; the result goes onto the sphere."""
  height, width, channels = x.shape
  delta = x_best - x
  area = jnp.asarray(height * width, p.dtype)
  s = jnp.maximum(jnp.round(jnp.sqrt(p * area)).astype(jnp.int32), 3)
  s = s + 1 - s % 2
  largest = min(height, width)
  s = jnp.minimum(s, largest - 1 + largest % 2)  # never wider than the image
  k_pos, k_flip, k_sign = jax.random.split(key, 3)
  # Corners in [0, H - s), as the reference draws them (never at H - s unless that is 0).
  high = jnp.maximum(jnp.array([height, width, height, width]) - s, 1)
  vh, vw, vh2, vw2 = jax.random.randint(k_pos, (4,), 0, high)
  rows = jnp.arange(height)[:, None]
  cols = jnp.arange(width)[None, :]
  in1 = ((rows >= vh) & (rows < vh + s) & (cols >= vw) & (cols < vw + s))[..., None]
  in2 = ((rows >= vh2) & (rows < vh2 + s) & (cols >= vw2) & (cols < vw2 + s))[..., None]
  channel_norm = lambda v: jnp.sqrt(jnp.sum(v**2, axis=(0, 1)))  # (C,)
  window1 = jnp.where(in1, delta, 0)
  budget = jnp.maximum(eps**2 - jnp.sum(delta**2), 0) / channels
  both = _numerics.l2_norm(jnp.where(in1 | in2, delta, 0))
  flip = jax.random.bernoulli(k_flip)
  a = jnp.broadcast_to(rows - vh, (height, width))
  b = jnp.broadcast_to(cols - vw, (height, width))
  eta = _eta(jnp.where(flip, b, a), jnp.where(flip, a, b), s, sums)[
    ..., None
  ] * jax.random.rademacher(k_sign, (channels,), x.dtype)
  new = eta + window1 / (_TINY_NORM + channel_norm(window1))
  new = new / (_TINY_NORM + channel_norm(new)) * jnp.sqrt(budget + both**2)
  delta = jnp.where(in1, new, jnp.where(in2, 0, delta))
  return _to_ball(x, delta, eps)


def _loss_fn(logits_fn, y, targeted, loss):
  """``x -> (loss, logits)``, the loss the search lowers: the margin ``z_y - max_{j≠y} z_j``
  (``max_{j≠t} z_j - z_t`` when targeted) or minus the cross-entropy (the target's when
  targeted); ``+inf`` where the logits are not finite."""

  def fn(x):
    z = _numerics.single_logits(logits_fn, x)
    onehot = jax.nn.one_hot(y, z.shape[-1], dtype=bool)
    if loss == 'margin':
      value = jnp.sum(jnp.where(onehot, z, 0)) - jnp.max(jnp.where(onehot, -jnp.inf, z))
    else:
      value = -optax.softmax_cross_entropy_with_integer_labels(z, y)
    value = -value if targeted else value
    return jnp.where(_numerics.all_finite(z), value, jnp.inf), z

  return fn


def _square_single(x, y, key, logits_fn, eps, p_init, *, targeted, queries, loss, restarts):
  """Square Attack on one example; returns ``(point, num_forwards)``."""
  shape = x.shape
  sums = jnp.asarray(_rectangle_sums(max(shape[0], shape[1]) + 2))
  eps, p_init = jnp.asarray(eps, x.dtype), jnp.asarray(p_init, x.dtype)
  halvings = jnp.asarray(_halvings(queries))
  loss_fn = _loss_fn(logits_fn, y, targeted, loss)
  is_adv = lambda z: _numerics.is_adversarial(z, y, targeted)

  def query(s: _State, run_key) -> _State:
    p = p_init / 2.0 ** halvings[s.i]
    candidate = _proposal(jax.random.fold_in(run_key, s.i), x, s.x_best, eps, p, sums)
    value, z = loss_fn(candidate)
    adv = is_adv(z)
    better = (value < s.loss_best) | adv
    return _State(
      i=s.i + 1,
      x_best=jnp.where(better, candidate, s.x_best),
      loss_best=jnp.where(better, value, s.loss_best),
      found=adv,
    )

  def run(carry):
    r, _, best, best_loss, num_forwards = carry
    start_key, run_key = jax.random.split(jax.random.fold_in(key, r))
    start = _to_ball(x, _initial_delta(start_key, shape, sums), eps)
    value, z = loss_fn(start)
    init = _State(jnp.zeros((), jnp.int32), start, value, is_adv(z))
    s = jax.lax.while_loop(lambda s: (s.i < queries) & ~s.found, lambda s: query(s, run_key), init)
    better = s.found | (s.loss_best < best_loss)
    return (
      r + 1,
      s.found,
      jnp.where(better, s.x_best, best),
      jnp.where(better, s.loss_best, best_loss),
      num_forwards + 1 + s.i,
    )

  init = (
    jnp.zeros((), jnp.int32),
    jnp.zeros((), bool),
    x,
    jnp.asarray(jnp.inf, x.dtype),
    jnp.zeros((), jnp.int32),
  )
  _, _, best, _, num_forwards = jax.lax.while_loop(lambda c: (c[0] < restarts) & ~c[1], run, init)
  return best, num_forwards


@functools.partial(jax.jit, static_argnames=('targeted', 'queries', 'loss', 'restarts'))
def _square_l2(logits_fn, inputs, labels, key, eps, p_init, *, targeted, queries, loss, restarts):
  single = functools.partial(
    _square_single, targeted=targeted, queries=queries, loss=loss, restarts=restarts
  )
  keys = _checks.example_keys(key, inputs.shape[0])
  adv, num_forwards = _mapping.map_examples(
    single, (inputs, labels, keys), (logits_fn, eps, p_init)
  )
  num_grads = jnp.zeros_like(num_forwards)
  return _result.finalize(
    logits_fn,
    inputs,
    labels,
    adv,
    num_grads,
    num_forwards=num_forwards,
    targeted=targeted,
    keep_failed=True,
  )


def square_l2(
  logits_fn: _numerics.LogitsFn,
  inputs: jax.Array,
  labels: jax.Array,
  *,
  targeted: bool = False,
  eps: float,
  queries: int = 5000,
  p_init: float = 0.8,
  loss: str = 'margin',
  restarts: int = 1,
  key: jax.Array | None = None,
) -> _result.AttackResult:
  """Square Attack in the L2 ball of radius ``eps``: a random search that only queries logits.

  A run starts on the ε-sphere around the input (clipped to [0, 1]) at a grid of tiles of side
  ``H // 5``, each a pattern of two opposite stacks of concentric rectangles (``eta``), signed
  at random per channel. Each of at most ``queries`` queries picks two random windows of side
  ``s ≈ sqrt(p H W)`` (odd, at least 3, at most the image), moves the perturbation's mass from
  the second window into the first, adds a new random ``eta`` there, puts the result back on the
  ε-sphere and keeps it if it lowers the loss, the margin ``z_y - max_{j≠y} z_j`` (or minus the
  cross-entropy), or is adversarial. The window's area fraction ``p`` starts at ``p_init`` and
  halves after 10, 50, 200, 500, 1000, 2000, 4000, 6000 and 8000 queries on a 10000-query
  scale rescaled to ``queries``. An example stops querying once it is adversarial; ``restarts``
  runs follow one another, from new random starts, until one finds an adversarial point.

  The algorithm is that of the reference code (Andriushchenko et al.'s, AutoAttack's and
  torchattacks 3.5.1's ``Square(norm='L2')``), with the randomness drawn per example (the
  reference draws the windows for the whole batch) and an example's success decided by the
  library's criterion (``argmax``, finite logits) rather than the margin ``<= 0``. A bounded
  attack: the returned point is the adversarial point a run found, else the point of the lowest
  loss over the runs (the clean input where the model's logits there are not finite);
  ``success`` is re-checked on it. A non-finite loss is never the best.

  It uses no gradient: ``num_grads`` is 0, and ``extras['num_forwards']`` is the exact number
  of model forward passes spent on each example (1 for each run's start, plus 1 per query),
  besides the two of the final check.

  Float hyperparameters (``eps``, ``p_init``) are traced; ``targeted``, ``queries``, ``loss``
  and ``restarts`` are static.

  Args:
    logits_fn: pure function from images ``(N, H, W, C)`` in [0, 1] to logits
      ``(N, num_classes)``; images at least 5×5.
    inputs: ``(N, H, W, C)`` float images in [0, 1].
    labels: ``(N,)`` int true labels, or target labels when ``targeted``.
    targeted: make the model predict ``labels``.
    eps: radius of the L2 ball.
    queries: most queries per run after its start.
    p_init: the window's initial fraction of the image's area, in (0, 1].
    loss: ``'margin'`` or ``'ce'``.
    restarts: most runs per example.
    key: PRNG key (``jax.random.key``) for the random search, split per example; or a batch
      ``(N,)`` of per-example keys, which makes each example's search independent of its batch.

  Returns:
    An :class:`AttackResult`; ``num_grads`` is 0 and ``extras['num_forwards']`` ``(N,)`` int32
    counts the forward passes.

  References:
    Andriushchenko, Croce, Flammarion & Hein, `Square Attack: a query-efficient black-box
    adversarial attack via random search <https://arxiv.org/abs/1912.00049>`_, ECCV 2020
    (Algorithm 3, Section 4).
  """
  _checks.check_hyperparameter('eps', eps, low=0)
  _checks.check_hyperparameter('p_init', p_init, low=0, high=1, low_inclusive=False)
  queries = _checks.check_count('queries', queries)
  restarts = _checks.check_count('restarts', restarts)
  if loss not in _LOSSES:
    raise ValueError(f"loss must be 'margin' or 'ce', got {loss!r}.")
  key = _checks.default_key(key)
  inputs, labels = _checks.validate_inputs(logits_fn, inputs, labels)
  if min(inputs.shape[1:3]) < _MIN_SIZE:
    raise ValueError(
      f'square_l2 needs images of at least {_MIN_SIZE}×{_MIN_SIZE} pixels (its windows and '
      f'starting tiles), got {inputs.shape[1]}×{inputs.shape[2]}.'
    )
  if not inputs.shape[0]:
    return _result.empty_result(inputs)
  return _square_l2(
    _checks.as_pytree_fn(logits_fn),
    inputs,
    labels,
    key,
    eps,
    p_init,
    targeted=bool(targeted),
    queries=queries,
    loss=loss,
    restarts=restarts,
  )
