"""Rewrites convolutions to the layout XLA:CPU's fast path needs, inside attack loops.

XLA:CPU runs its ``ConvCanonicalization`` pass on the entry computation only. The input-gradient
convolutions that ``jax.vjp`` emits have swapped kernel feature dimensions; inside a while-loop
body (every ``lax.scan`` / ``lax.while_loop``) they stay non-canonical and are lowered to naive
loop nests instead of the library convolution, about 3x slower than the same gradient outside a
loop. Re-emitting every convolution with NHWC / HWIO / NHWC dimension numbers and explicit
transposes gives the loop body the fast path. Measured in ``benchmarks/LOOP_FORMS.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax import lax
from jax.extend import core as jex_core

# Call-like primitives whose body is inlined so that the convolutions in it are rewritten too.
_INLINED = frozenset({'pjit', 'jit', 'closed_call', 'core_call', 'checkpoint', 'remat2'})


def _canonical_conv(lhs, rhs, *, dimension_numbers, **params):
  """``conv_general_dilated`` with channels-last dimension numbers and explicit transposes."""
  lhs_spec, rhs_spec, out_spec = dimension_numbers
  ndim = len(lhs_spec)
  # Specs list (batch, feature, *spatial) for lhs/out and (out_feature, in_feature, *spatial)
  # for rhs; these permutations bring each operand to (batch, *spatial, feature) / HWIO order.
  lhs_perm = (lhs_spec[0], *lhs_spec[2:], lhs_spec[1])
  rhs_perm = (*rhs_spec[2:], rhs_spec[1], rhs_spec[0])
  out_perm = (out_spec[0], *out_spec[2:], out_spec[1])
  identity = tuple(range(ndim))
  if lhs_perm == rhs_perm == out_perm == identity:
    return lax.conv_general_dilated_p.bind(lhs, rhs, dimension_numbers=dimension_numbers, **params)
  channels_last = lax.ConvDimensionNumbers(
    lhs_spec=(0, ndim - 1, *range(1, ndim - 1)),
    rhs_spec=(ndim - 1, ndim - 2, *range(ndim - 2)),
    out_spec=(0, ndim - 1, *range(1, ndim - 1)),
  )
  out = lax.conv_general_dilated_p.bind(
    lax.transpose(lhs, lhs_perm),
    lax.transpose(rhs, rhs_perm),
    dimension_numbers=channels_last,
    **params,
  )
  return lax.transpose(out, tuple(int(i) for i in np.argsort(out_perm)))


def _eval(jaxpr, consts, *args):
  """Evaluates ``jaxpr`` with every convolution (also in inlined calls) made channels-last."""
  env: dict[Any, Any] = {}

  def read(v):
    return v.val if isinstance(v, jex_core.Literal) else env[v]

  env.update(zip(jaxpr.constvars, consts))
  env.update(zip(jaxpr.invars, args))
  for eqn in jaxpr.eqns:
    invals = [read(v) for v in eqn.invars]
    if eqn.primitive is lax.conv_general_dilated_p:
      outs = [_canonical_conv(*invals, **eqn.params)]
    elif eqn.primitive.name in _INLINED and 'jaxpr' in eqn.params:
      inner = eqn.params['jaxpr']
      if isinstance(inner, jex_core.ClosedJaxpr):
        outs = _eval(inner.jaxpr, inner.consts, *invals)
      else:
        outs = _eval(inner, (), *invals)
    else:
      # Other higher-order primitives (scan, cond, custom derivatives) are kept as they are.
      with eqn.ctx.manager:
        outs = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
      if not eqn.primitive.multiple_results:
        outs = [outs]
    env.update(zip(eqn.outvars, outs))
  return [read(v) for v in jaxpr.outvars]


def canonicalize_convolutions(fn: Callable[..., Any]) -> Callable[..., Any]:
  """``fn`` with its convolutions re-emitted channels-last, on the CPU backend only.

  Other backends rewrite convolution layouts in every computation themselves, so there ``fn``
  is returned unchanged.
  """
  if jax.default_backend() != 'cpu':
    return fn

  def wrapped(*args):
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)
    outs = _eval(closed.jaxpr, closed.consts, *jax.tree.leaves(args))
    return jax.tree.unflatten(jax.tree.structure(out_shape), outs)

  return wrapped
