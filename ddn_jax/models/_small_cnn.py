"""The Carlini & Wagner MNIST network, used by the paper for MNIST."""

from __future__ import annotations

import flax.linen as nn
import jax


class SmallCNN(nn.Module):
  """Four 3x3 valid convolutions, two max-pools and three dense layers.

  conv 32 - conv 32 - maxpool 2 - conv 64 - conv 64 - maxpool 2 - dense 200 -
  dropout - dense 200 - dense ``num_classes``, with ReLUs. As in the C&W and
  DDN reference code, dropout follows only the first dense layer.

  Inputs are float NHWC images in [0, 1], e.g. (N, 28, 28, 1); outputs are
  logits of shape (N, num_classes). Dropout needs a ``"dropout"`` rng when
  ``train=True``.

  Attributes:
    num_classes: number of output logits.
    dropout_rate: dropout probability during training.

  References:
    Carlini & Wagner, 2017, "Towards Evaluating the Robustness of Neural
    Networks", Table 1; Rony et al., 2019, Section 4.
  """

  num_classes: int = 10
  dropout_rate: float = 0.5

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    for features in (32, 32, None, 64, 64, None):
      if features is None:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
      else:
        x = nn.relu(nn.Conv(features, (3, 3), padding='VALID')(x))
    x = x.reshape(x.shape[0], -1)
    x = nn.relu(nn.Dense(200)(x))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    x = nn.relu(nn.Dense(200)(x))
    return nn.Dense(self.num_classes)(x)
