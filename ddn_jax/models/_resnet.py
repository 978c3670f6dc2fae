"""The post-activation CIFAR ResNet of RobustBench's ResNet-18 and ResNet-50 entries."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddn_jax.models._wide_resnet import CIFAR10_MEAN, CIFAR10_STD

# depth -> (blocks per stage, bottleneck blocks).
_LAYOUTS = {18: ((2, 2, 2, 2), False), 34: ((3, 4, 6, 3), False), 50: ((3, 4, 6, 3), True)}
# Explicit padding 1, as in PyTorch (SAME pads stride-2 convs asymmetrically).
_conv3x3 = functools.partial(nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False)
_conv1x1 = functools.partial(nn.Conv, kernel_size=(1, 1), padding='VALID', use_bias=False)
_norm = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)


class _Block(nn.Module):
  """conv3x3-BN-ReLU-conv3x3-BN (basic), or conv1x1-BN-ReLU-conv3x3-BN-ReLU-conv1x1 to four
  times the width-BN (bottleneck); plus the shortcut (a 1×1 projection and BN where the shape
  changes), then ReLU."""

  features: int
  strides: int
  bottleneck: bool

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    norm = functools.partial(_norm, use_running_average=not train)
    if self.bottleneck:
      y = nn.relu(norm(name='bn1')(_conv1x1(self.features, name='conv1')(x)))
      y = nn.relu(norm(name='bn2')(_conv3x3(self.features, strides=self.strides, name='conv2')(y)))
      y = norm(name='bn3')(_conv1x1(4 * self.features, name='conv3')(y))
    else:
      y = nn.relu(norm(name='bn1')(_conv3x3(self.features, strides=self.strides, name='conv1')(x)))
      y = norm(name='bn2')(_conv3x3(self.features, name='conv2')(y))
    if x.shape[-1] != y.shape[-1] or self.strides != 1:
      x = _conv1x1(y.shape[-1], strides=self.strides, name='shortcut_0')(x)
      x = norm(name='shortcut_1')(x)
    return nn.relu(x + y)


class ResNet(nn.Module):
  """ResNet-``depth`` for 32×32 images, as RobustBench's CIFAR ``ResNet`` (``resnet.py``).

  conv3x3 64-BN-ReLU, then four stages of post-activation blocks of width 64, 128, 256 and 512
  (strides 1, 2, 2, 2; basic blocks for depths 18 and 34, bottleneck blocks four times as wide
  at their output for 50), then global average pooling and a dense layer. The input is
  standardised with per-channel ``mean`` and ``std`` inside the model, so it takes float NHWC
  images in [0, 1], e.g. (N, 32, 32, 3), and returns logits of shape (N, num_classes); on
  32×32 images the pooling is RobustBench's 4×4 average pooling. RobustBench's
  ``Sehwag2021Proxy_R18`` is a ResNet-18 without normalisation; ``Augustin2020Adversarial``
  and ``Engstrom2019Robustness`` are ResNet-50s.

  Batch norm uses batch statistics and updates ``batch_stats`` when ``train=True`` (apply with
  ``mutable=["batch_stats"]``), and the running averages otherwise. Submodules carry PyTorch's
  names (``layer2_0`` is ``layer2.0``, ``shortcut_1`` is ``shortcut.1``), so `ddn_jax.interop`
  maps the weights by name.

  Attributes:
    depth: 18, 34 or 50.
    num_classes: number of output logits.
    mean: per-channel input mean, in [0, 1] units.
    std: per-channel input standard deviation, in [0, 1] units.

  References:
    He et al., 2016, "Deep Residual Learning for Image Recognition"; Croce et al., 2021,
    "RobustBench".
  """

  depth: int = 18
  num_classes: int = 10
  mean: Sequence[float] = CIFAR10_MEAN
  std: Sequence[float] = CIFAR10_STD

  @property
  def layout(self) -> tuple[tuple[int, ...], bool]:
    """``(blocks per stage, bottleneck)``, e.g. ``((2, 2, 2, 2), False)`` for depth 18."""
    if self.depth not in _LAYOUTS:
      raise ValueError(f'ResNet depth must be one of {sorted(_LAYOUTS)}, got {self.depth}.')
    return _LAYOUTS[self.depth]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    blocks, bottleneck = self.layout
    # In the input's dtype, so that a bfloat16 input keeps the network in bfloat16.
    x = (x - jnp.asarray(self.mean, x.dtype)) / jnp.asarray(self.std, x.dtype)
    x = _conv3x3(64, name='conv1')(x)
    x = nn.relu(_norm(use_running_average=not train, name='bn1')(x))
    for stage, (n, strides) in enumerate(zip(blocks, (1, 2, 2, 2))):
      for block in range(n):
        x = _Block(
          features=64 * 2**stage,
          strides=strides if block == 0 else 1,
          bottleneck=bottleneck,
          name=f'layer{stage + 1}_{block}',
        )(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='linear')(x)
