"""The precision policy: the model in bfloat16, every verdict in float32.

A model's forward and backward passes dominate an attack's cost, and on accelerators they run
several times faster in bfloat16; the attack's own state (perturbation, norms, the best point) and
its decisions need float32. Under a reduced precision:

* the parameters stay float32 (training updates float32 master weights) and are cast to the
  compute dtype inside each call, as are the images; the logits are cast back to float32;
* `make_logits_fn` returns a function whose **value is the float32 model's** and whose
  **gradient is the reduced-precision model's**: every logit an attack reads (whether a point is
  adversarial, which point is the best, the final success check and the reported norms) comes
  from the float32 model, and only the gradient directions come from the fast model. Each
  differentiated call therefore costs one float32 forward on top of the reduced-precision
  forward and backward; an undifferentiated call (evaluation) is the float32 forward alone;
* training (`ddn_jax.training`) computes its forward and backward in the compute dtype.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp

# Precision name -> compute dtype; None computes in the parameters' own float32. No float16: its
# range needs loss scaling, which bfloat16 (float32's exponent range) does not.
PRECISIONS: dict[str, Any] = {'float32': None, 'bfloat16': jnp.bfloat16}


def check_precision(precision: str) -> str:
  """``precision``, checked to be one of `PRECISIONS`."""
  if precision not in PRECISIONS:
    raise ValueError(
      f'precision must be one of {sorted(PRECISIONS)}, got {precision!r}; "bfloat16" computes the '
      'model in bfloat16 with float32 parameters, logits and attack state.'
    )
  return precision


def cast_floats(tree: Any, dtype: Any) -> Any:
  """``tree`` with its floating-point leaves cast to ``dtype`` (integer leaves unchanged)."""
  return jax.tree.map(
    lambda x: x.astype(dtype) if jnp.issubdtype(jnp.result_type(x), jnp.floating) else x, tree
  )


def call_in_precision(fn: Any, precision: str, variables: Any, images: jax.Array) -> Any:
  """``fn(variables, images)`` computed in ``precision``'s dtype: floating-point variables and
  the images cast to it, floating-point outputs back in the images' dtype (float32)."""
  dtype = PRECISIONS[precision]
  if dtype is None:
    return fn(variables, images)
  return cast_floats(fn(cast_floats(variables, dtype), images.astype(dtype)), images.dtype)


def apply_in_precision(
  model: Any, precision: str, variables: Any, images: jax.Array, **kwargs: Any
) -> Any:
  """``model.apply(variables, images, **kwargs)`` computed in ``precision``'s dtype.

  Floating-point outputs (logits, updated batch statistics) come back in the images' dtype
  (float32), so that a training state keeps its dtypes from step to step.
  """
  return call_in_precision(functools.partial(model.apply, **kwargs), precision, variables, images)
