"""PreActResNet-18, the architecture of several RobustBench CIFAR-10 entries."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ddn_jax.models._wide_resnet import CIFAR10_MEAN, CIFAR10_STD

# Explicit padding 1, as in PyTorch (SAME pads stride-2 convs asymmetrically).
_conv3x3 = functools.partial(nn.Conv, kernel_size=(3, 3), padding=((1, 1), (1, 1)), use_bias=False)
_norm = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)


class _PreActBlock(nn.Module):
  """BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus a shortcut (a 1×1 projection where the shape changes)."""

  features: int
  strides: int
  activated_shortcut: bool

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    activated = nn.relu(_norm(use_running_average=not train, name='bn1')(x))
    y = _conv3x3(self.features, strides=self.strides, name='conv1')(activated)
    y = nn.relu(_norm(use_running_average=not train, name='bn2')(y))
    y = _conv3x3(self.features, name='conv2')(y)
    if x.shape[-1] != self.features or self.strides != 1:
      x = nn.Conv(self.features, (1, 1), strides=self.strides, use_bias=False, name='shortcut')(
        activated if self.activated_shortcut else x
      )
    return x + y


class PreActResNet18(nn.Module):
  """Pre-activation ResNet-18 for 32×32 images, as RobustBench's ``PreActResNet``.

  conv3x3 64, then four stages of two pre-activation blocks of width 64, 128, 256 and 512
  (strides 1, 2, 2, 2), then (with ``final_norm``) BN-ReLU, global average pooling and a dense
  layer. The input is standardised with per-channel ``mean`` and ``std`` inside the model, so
  it takes float NHWC images in [0, 1], e.g. (N, 32, 32, 3), and returns logits of shape
  (N, num_classes); on 32×32 images the pooling is RobustBench's 4×4 average pooling. The
  defaults are the variant of RobustBench's L2 entry ``Rice2020Overfitting`` (its
  ``PreActBlockV2`` with ``bn_before_fc=True``); its Linf entry ``Wong2020Fast`` is
  ``activated_shortcut=False, final_norm=False``.

  Batch norm uses batch statistics and updates ``batch_stats`` when ``train=True`` (apply with
  ``mutable=["batch_stats"]``), and the running averages otherwise. Submodules carry PyTorch's
  names (``layer2_0`` is ``layer2.0``), so `ddn_jax.interop` maps the weights by name.

  Attributes:
    num_classes: number of output logits.
    mean: per-channel input mean, in [0, 1] units.
    std: per-channel input standard deviation, in [0, 1] units.
    activated_shortcut: the projection shortcuts see the block's activated input (BN-ReLU), as
      in He et al.; False: its raw input, as RobustBench's ``PreActBlock``.
    final_norm: BN-ReLU before the pooling, as in He et al.; False: none.

  References:
    He et al., 2016, "Identity Mappings in Deep Residual Networks"; Rice et al., 2020,
    "Overfitting in adversarially robust deep learning"; Croce et al., 2021, "RobustBench".
  """

  num_classes: int = 10
  mean: Sequence[float] = CIFAR10_MEAN
  std: Sequence[float] = CIFAR10_STD
  activated_shortcut: bool = True
  final_norm: bool = True

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    # In the input's dtype, so that a bfloat16 input keeps the network in bfloat16.
    x = (x - jnp.asarray(self.mean, x.dtype)) / jnp.asarray(self.std, x.dtype)
    x = _conv3x3(64, name='conv1')(x)
    for stage, strides in enumerate((1, 2, 2, 2)):
      for block in range(2):
        x = _PreActBlock(
          features=64 * 2**stage,
          strides=strides if block == 0 else 1,
          activated_shortcut=self.activated_shortcut,
          name=f'layer{stage + 1}_{block}',
        )(x, train)
    if self.final_norm:
      x = nn.relu(_norm(use_running_average=not train, name='bn')(x))
    x = jnp.mean(x, axis=(1, 2))
    return nn.Dense(self.num_classes, name='linear')(x)
