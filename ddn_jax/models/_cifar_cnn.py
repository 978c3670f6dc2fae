"""The Carlini & Wagner CIFAR-10 network, used by the paper's attack tables."""

from __future__ import annotations

import flax.linen as nn
import jax


class CifarCNN(nn.Module):
  """Four 3x3 valid convolutions, two max-pools and three dense layers.

  conv 64 - conv 64 - maxpool 2 - conv 128 - conv 128 - maxpool 2 -
  dense 256 - dropout - dense 256 - dense ``num_classes``, with ReLUs.

  Inputs are float NHWC images in [0, 1], e.g. (N, 32, 32, 3); outputs are
  logits of shape (N, num_classes). Dropout needs a ``"dropout"`` rng when
  ``train=True``.

  Attributes:
    num_classes: number of output logits.
    dropout_rate: dropout probability during training.

  References:
    Carlini & Wagner, 2017, "Towards Evaluating the Robustness of Neural
    Networks", Table 1.
  """

  num_classes: int = 10
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for features in (64, 64, None, 128, 128, None):
      if features is None:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      else:
        x = nn.relu(nn.Conv(features, (3, 3), padding='VALID')(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(256)(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.relu(nn.Dense(256)(x))
    return nn.Dense(self.num_classes)(x)
