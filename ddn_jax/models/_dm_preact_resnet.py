"""DeepMind's pre-activation ResNet with Swish, the architecture of RobustBench's ResNet-18
entries Rebuffi2021Fixing_R18 and Rade2021Helper_R18."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddn_jax.models._dm_wide_resnet import DM_CIFAR10_STD, dm_conv3x3, dm_norm
from ddn_jax.models._wide_resnet import CIFAR10_MEAN

_BLOCKS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class _PreActBlock(nn.Module):
  """BN-Swish-conv3x3-BN-Swish-conv3x3; where the shape changes, a strided 3×3 convolution of
  the raw input is the shortcut."""

  features: int
  strides: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    activated = nn.swish(dm_norm(use_running_average=not train, name='batchnorm_0')(x))
    y = dm_conv3x3(self.features, self.strides, name='conv_2d_1')(activated)
    y = nn.swish(dm_norm(use_running_average=not train, name='batchnorm_1')(y))
    y = dm_conv3x3(self.features, 1, name='conv_2d_2')(y)
    if x.shape[-1] != self.features or self.strides != 1:
      x = dm_conv3x3(self.features, self.strides, name='shortcut')(x)
    return x + y


class DMPreActResNet(nn.Module):
  """DeepMind's pre-activation ResNet-``depth`` with Swish, as RobustBench's ``DMPreActResNet``.

  conv3x3 64, then four stages of pre-activation blocks (2, 2, 2, 2 for depth 18; 3, 4, 6, 3
  for 34) of width 64, 128, 256 and 512 (strides 1, 2, 2, 2), then BN-Swish, global average
  pooling and a dense layer. It differs from `PreActResNet18` in its activation (Swish), its
  strided convolutions' padding (one row and column after the input, TensorFlow's SAME) and
  its projection shortcuts (3×3 convolutions of the block's raw input). The input is
  standardised with per-channel ``mean`` and ``std`` inside the model, so it takes float NHWC
  images in [0, 1], e.g. (N, 32, 32, 3), and returns logits of shape (N, num_classes); on
  32×32 images the pooling is RobustBench's 4×4 average pooling.

  Batch norm uses batch statistics and updates ``batch_stats`` when ``train=True`` (apply with
  ``mutable=["batch_stats"]``), and the running averages otherwise. Submodules carry PyTorch's
  names (``layer_1_0`` is ``layer_1.0``), so `ddn_jax.interop` maps the weights by name.

  Attributes:
    depth: 18 or 34.
    num_classes: number of output logits.
    mean: per-channel input mean, in [0, 1] units.
    std: per-channel input standard deviation, in [0, 1] units (DeepMind's CIFAR-10 values).

  References:
    He et al., 2016, "Identity Mappings in Deep Residual Networks"; Rebuffi et al., 2021,
    "Fixing Data Augmentation to Improve Adversarial Robustness"; Croce et al., 2021,
    "RobustBench".
  """

  depth: int = 18
  num_classes: int = 10
  mean: Sequence[float] = CIFAR10_MEAN
  std: Sequence[float] = DM_CIFAR10_STD

  @property
  def blocks_per_stage(self) -> tuple[int, ...]:
    """The number of blocks in each of the four stages, e.g. ``(2, 2, 2, 2)`` for depth 18."""
    if self.depth not in _BLOCKS:
      raise ValueError(f'DMPreActResNet depth must be one of {sorted(_BLOCKS)}, got {self.depth}.')
    return _BLOCKS[self.depth]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    # In the input's dtype, so that a bfloat16 input keeps the network in bfloat16.
    x = (x - jnp.asarray(self.mean, x.dtype)) / jnp.asarray(self.std, x.dtype)
    x = dm_conv3x3(64, 1, name='conv_2d')(x)
    for stage, (blocks, strides) in enumerate(zip(self.blocks_per_stage, (1, 2, 2, 2))):
      for block in range(blocks):
        x = _PreActBlock(
          features=64 * 2**stage,
          strides=strides if block == 0 else 1,
          name=f'layer_{stage}_{block}',
        )(x, train)
    x = nn.swish(dm_norm(use_running_average=not train, name='batchnorm')(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='logits')(x)
