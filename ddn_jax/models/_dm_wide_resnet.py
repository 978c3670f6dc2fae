"""DeepMind's WideResNet with Swish, the architecture of the top RobustBench CIFAR-10 entries."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddn_jax.models._wide_resnet import CIFAR10_MEAN

# DeepMind's CIFAR-10 standard deviation (their 0.2471 where `CIFAR10_STD` has 0.2470).
DM_CIFAR10_STD = (0.2471, 0.2435, 0.2616)
# PyTorch's BatchNorm2d defaults: its momentum 0.1 is Flax's 0.9.
dm_norm = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)
# DeepMind's explicit padding, TensorFlow's SAME on even sizes: 1 on each side at stride 1, and
# at stride 2 one row and column after the input only (PyTorch's padding=1 would shift the grid).
DM_PADDING = {1: ((1, 1), (1, 1)), 2: ((0, 1), (0, 1))}


def dm_conv3x3(features: int, strides: int, name: str) -> nn.Conv:
  """DeepMind's bias-free 3×3 convolution with its padding at ``strides``."""
  if strides not in DM_PADDING:
    raise ValueError(f'Unsupported stride {strides}: expected 1 or 2.')
  return nn.Conv(
    features, (3, 3), strides=strides, padding=DM_PADDING[strides], use_bias=False, name=name
  )


class _Block(nn.Module):
  """BN-Swish-conv3x3-BN-Swish-conv3x3; where the width changes, a 1×1 projection of the
  activated input is the shortcut."""

  features: int
  strides: int

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    activated = nn.swish(dm_norm(use_running_average=not train, name='batchnorm_0')(x))
    y = dm_conv3x3(self.features, self.strides, name='conv_0')(activated)
    y = nn.swish(dm_norm(use_running_average=not train, name='batchnorm_1')(y))
    y = dm_conv3x3(self.features, 1, name='conv_1')(y)
    # DeepMind's test: the width, not the stride (in the network the two change together).
    if x.shape[-1] != self.features:
      shortcut = nn.Conv(
        self.features, (1, 1), self.strides, padding='VALID', use_bias=False, name='shortcut'
      )
      x = shortcut(activated)
    return x + y


class DMWideResNet(nn.Module):
  """DeepMind's WRN-``depth``-``width`` with Swish, as RobustBench's ``DMWideResNet``.

  conv3x3 16, then three groups of ``(depth - 4) // 6`` pre-activation blocks of width
  ``16 * width``, ``32 * width`` and ``64 * width`` (strides 1, 2, 2), then BN-Swish, global
  average pooling and a dense layer. It differs from `WideResNet` in its activation (Swish,
  ``x * sigmoid(x)``: RobustBench's ``Swish`` and ``nn.SiLU`` alike), its strided convolutions'
  padding (one row and column after the input, TensorFlow's SAME) and its identity shortcuts
  (the raw input wherever the width is unchanged). The input is standardised with per-channel
  ``mean`` and ``std`` inside the model, so it takes float NHWC images in [0, 1], e.g.
  (N, 32, 32, 3), and returns logits of shape (N, num_classes); on 32×32 images the pooling is
  RobustBench's 8×8 average pooling. RobustBench's entries Gowal2020Uncovering,
  Rebuffi2021Fixing and Wang2023Better are WRN-70-16 and WRN-28-10.

  Batch norm uses batch statistics and updates ``batch_stats`` when ``train=True`` (apply with
  ``mutable=["batch_stats"]``), and the running averages otherwise. Submodules carry PyTorch's
  names (``layer_1_0`` is ``layer.1.block.0``), so `ddn_jax.interop` maps the weights by name.

  Attributes:
    depth: total depth, ``6 * n + 4``.
    width: widening factor.
    num_classes: number of output logits.
    mean: per-channel input mean, in [0, 1] units.
    std: per-channel input standard deviation, in [0, 1] units (DeepMind's CIFAR-10 values).

  References:
    Gowal et al., 2020, "Uncovering the Limits of Adversarial Training against Norm-Bounded
    Adversarial Examples"; Rebuffi et al., 2021, "Fixing Data Augmentation to Improve
    Adversarial Robustness"; Croce et al., 2021, "RobustBench".
  """

  depth: int = 28
  width: int = 10
  num_classes: int = 10
  mean: Sequence[float] = CIFAR10_MEAN
  std: Sequence[float] = DM_CIFAR10_STD

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    if (self.depth - 4) % 6:
      raise ValueError(f'DMWideResNet depth must be 6n + 4, got {self.depth}.')
    blocks_per_group = (self.depth - 4) // 6
    # In the input's dtype, so that a bfloat16 input keeps the network in bfloat16.
    x = (x - jnp.asarray(self.mean, x.dtype)) / jnp.asarray(self.std, x.dtype)
    x = dm_conv3x3(16, 1, name='init_conv')(x)
    for group, strides in enumerate((1, 2, 2)):
      for block in range(blocks_per_group):
        x = _Block(
          features=16 * 2**group * self.width,
          strides=strides if block == 0 else 1,
          name=f'layer_{group}_{block}',
        )(x, train)
    x = nn.swish(dm_norm(use_running_average=not train, name='batchnorm')(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='logits')(x)
