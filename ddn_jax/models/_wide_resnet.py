"""Wide residual networks, the paper's CIFAR-10 adversarial-training model."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# Per-channel statistics of the CIFAR-10 training images, in [0, 1] units.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

# Explicit padding 1, as in the PyTorch reference (SAME pads stride-2 convs
# asymmetrically, which would shift the features and break weight porting).
_conv3x3 = functools.partial(nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False)


class _Block(nn.Module):
  """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3."""

  features: int
  strides: int
  dropout_rate: float

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    norm = functools.partial(
      nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5
    )
    activated = nn.relu(norm()(x))
    y = _conv3x3(self.features, strides=self.strides)(activated)
    y = nn.relu(norm()(y))
    y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
    y = _conv3x3(self.features)(y)
    if x.shape[-1] != self.features or self.strides != 1:
      # The projection shortcut sees the pre-activated input.
      x = nn.Conv(self.features, (1, 1), strides=self.strides, use_bias=False)(activated)
    return x + y


class WideResNet(nn.Module):
  """WRN-``depth``-``width``, e.g. ``WideResNet(28, 10)`` (36.5M parameters).

  conv3x3 16, then three groups of ``(depth - 4) // 6`` pre-activation
  blocks of width ``16 * width``, ``32 * width`` and ``64 * width`` (strides
  1, 2, 2), then BN-ReLU, global average pooling and a dense layer. The
  input is standardised with per-channel ``mean`` and ``std`` inside the
  model, so it takes float NHWC images in [0, 1], e.g. (N, 32, 32, 3), and
  returns logits of shape (N, num_classes).

  Batch norm uses batch statistics and updates ``batch_stats`` when
  ``train=True`` (apply with ``mutable=["batch_stats"]``), and the running
  averages otherwise. Dropout needs a ``"dropout"`` rng when ``train=True``
  and ``dropout_rate > 0``.

  Attributes:
    depth: total depth, ``6 * n + 4``.
    width: widening factor.
    dropout_rate: dropout probability inside each block during training.
    num_classes: number of output logits.
    mean: per-channel input mean, in [0, 1] units.
    std: per-channel input standard deviation, in [0, 1] units.

  References:
    Zagoruyko & Komodakis, 2016, "Wide Residual Networks"; Rony et al.,
    2019, Section 6.
  """

  depth: int = 28
  width: int = 10
  dropout_rate: float = 0.0
  num_classes: int = 10
  mean: Sequence[float] = CIFAR10_MEAN
  std: Sequence[float] = CIFAR10_STD

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if (self.depth - 4) % 6:
      raise ValueError(f'WideResNet depth must be 6n + 4, got {self.depth}.')
    blocks_per_group = (self.depth - 4) // 6
    # In the input's dtype, so that a bfloat16 input keeps the network in bfloat16.
    x = (x - jnp.asarray(self.mean, x.dtype)) / jnp.asarray(self.std, x.dtype)
    x = _conv3x3(16)(x)
    for group, strides in enumerate((1, 2, 2)):
      for block in range(blocks_per_group):
        x = _Block(
          features=16 * 2**group * self.width,
          strides=strides if block == 0 else 1,
          dropout_rate=self.dropout_rate,
        )(x, train)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x)
    x = jnp.mean(nn.relu(x), axis=(1, 2))
    return nn.Dense(self.num_classes)(x)
