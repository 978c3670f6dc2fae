"""`SmallCNN` in Flax NNX, the API Flax recommends to new users."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx


class NnxSmallCNN(nnx.Module):
  """The Carlini & Wagner MNIST network of `SmallCNN`, as an ``nnx.Module``.

  The same layers, initialisers and outputs as the Linen `SmallCNN`: images ``(N, 28, 28, 1)``
  in [0, 1] to logits ``(N, num_classes)``. Dropout follows the first dense layer and is active
  in ``train()`` mode (call ``model.eval()`` to turn it off); `make_logits_fn` evaluates the model
  in eval mode whatever its mode.

  Args:
    num_classes: number of output logits.
    dropout_rate: dropout probability during training.
    in_features: input channels.
    image_size: input height and width.
    rngs: ``nnx.Rngs`` for the initial weights and the dropout.

  References:
    Carlini & Wagner, 2017, "Towards Evaluating the Robustness of Neural Networks", Table 1.
  """

  def __init__(
    self,
    num_classes: int = 10,
    dropout_rate: float = 0.5,
    *,
    in_features: int = 1,
    image_size: int = 28,
    rngs: nnx.Rngs,
  ):
    conv = lambda i, o: nnx.Conv(i, o, (3, 3), padding='VALID', rngs=rngs)
    self.convs = nnx.List([conv(in_features, 32), conv(32, 32), conv(32, 64), conv(64, 64)])
    side = ((image_size - 4) // 2 - 4) // 2
    self.dense = nnx.List([
      nnx.Linear(side * side * 64, 200, rngs=rngs),
      nnx.Linear(200, 200, rngs=rngs),
      nnx.Linear(200, num_classes, rngs=rngs),
    ])  # fmt: skip
    self.dropout = nnx.Dropout(dropout_rate, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    for i, conv in enumerate(self.convs):
      x = nnx.relu(conv(x))
      if i % 2:
        x = nnx.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    x = self.dropout(nnx.relu(self.dense[0](x)))
    x = nnx.relu(self.dense[1](x))
    return self.dense[2](x)

  def load_linen(self, variables: Mapping[str, Any]) -> NnxSmallCNN:
    """Copies a Linen `SmallCNN`'s ``{'params': ...}`` into this model (in place); returns it."""
    params = variables['params']
    layers = [*self.convs, *self.dense]
    names = [f'Conv_{i}' for i in range(4)] + [f'Dense_{i}' for i in range(3)]
    if set(params) != set(names):
      raise ValueError(
        f'expected the parameters of a Linen SmallCNN ({names}), got {sorted(params)}'
      )
    for layer, name in zip(layers, names):
      for field in ('kernel', 'bias'):
        variable, value = getattr(layer, field), jnp.asarray(params[name][field])
        if value.shape != variable[...].shape:
          raise ValueError(
            f'{name}.{field} has shape {value.shape}, this model expects '
            f'{variable[...].shape}: build it with the same num_classes.'
          )
        variable[...] = value
    return self
