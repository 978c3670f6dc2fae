"""Inception-v3, the paper's ImageNet model, laid out as torchvision's so its weights port."""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# Per-channel statistics of the ImageNet training images, in [0, 1] units (torchvision's).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
  return (value, value) if isinstance(value, int) else tuple(value)


class BasicConv2d(nn.Module):
  """Convolution without bias, batch norm (ε = 0.001, as torchvision's), ReLU."""

  features: int
  kernel_size: int | tuple[int, int]
  strides: int = 1
  padding: int | tuple[int, int] = 0

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    ph, pw = _pair(self.padding)
    x = nn.Conv(
      self.features,
      _pair(self.kernel_size),
      strides=self.strides,
      padding=((ph, ph), (pw, pw)),
      use_bias=False,
      name='conv',
    )(x)
    x = nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-3, name='bn')(x)
    return nn.relu(x)


def _avg_pool_3x3(x: jax.Array) -> jax.Array:
  # torchvision's F.avg_pool2d(x, 3, stride=1, padding=1): zero padding counts in the mean.
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=True)


def _max_pool_3x3_s2(x: jax.Array) -> jax.Array:
  return nn.max_pool(x, (3, 3), strides=(2, 2))


class _Branches(nn.Module):
  """A mixed block: named chains of `BasicConv2d`, concatenated along channels.

  ``branches`` holds one ``(chain, pool)`` per output, ``chain`` a tuple of
  ``(name, features, kernel, strides, padding)`` convolutions and ``pool`` ``'avg'`` (3×3
  average pooling before the chain), ``'max'`` (3×3/2 max pooling, empty chain) or None.
  InceptionE's split 1×3 / 3×1 heads are two outputs whose chains share their first
  convolutions by name.
  """

  branches: Sequence[tuple]

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    outputs, shared = [], {}
    for chain, pool in self.branches:
      if pool == 'max':
        outputs.append(_max_pool_3x3_s2(x))
        continue
      y = _avg_pool_3x3(x) if pool == 'avg' else x
      for name, features, kernel, strides, padding in chain:
        if name not in shared:
          shared[name] = BasicConv2d(features, kernel, strides, padding, name=name)(y, train)
        y = shared[name]
      outputs.append(y)
    return jnp.concatenate(outputs, axis=-1)


def _inception_a(pool_features: int) -> tuple:
  return (
    ((('branch1x1', 64, 1, 1, 0),), None),
    ([('branch5x5_1', 48, 1, 1, 0), ('branch5x5_2', 64, 5, 1, 2)], None),
    (
      [
        ('branch3x3dbl_1', 64, 1, 1, 0),
        ('branch3x3dbl_2', 96, 3, 1, 1),
        ('branch3x3dbl_3', 96, 3, 1, 1),
      ],
      None,
    ),
    ([('branch_pool', pool_features, 1, 1, 0)], 'avg'),
  )


_INCEPTION_B = (
  ([('branch3x3', 384, 3, 2, 0)], None),
  (
    [
      ('branch3x3dbl_1', 64, 1, 1, 0),
      ('branch3x3dbl_2', 96, 3, 1, 1),
      ('branch3x3dbl_3', 96, 3, 2, 0),
    ],
    None,
  ),
  ([], 'max'),
)


def _inception_c(c7: int) -> tuple:
  return (
    ([('branch1x1', 192, 1, 1, 0)], None),
    (
      [
        ('branch7x7_1', c7, 1, 1, 0),
        ('branch7x7_2', c7, (1, 7), 1, (0, 3)),
        ('branch7x7_3', 192, (7, 1), 1, (3, 0)),
      ],
      None,
    ),
    (
      [
        ('branch7x7dbl_1', c7, 1, 1, 0),
        ('branch7x7dbl_2', c7, (7, 1), 1, (3, 0)),
        ('branch7x7dbl_3', c7, (1, 7), 1, (0, 3)),
        ('branch7x7dbl_4', c7, (7, 1), 1, (3, 0)),
        ('branch7x7dbl_5', 192, (1, 7), 1, (0, 3)),
      ],
      None,
    ),
    ([('branch_pool', 192, 1, 1, 0)], 'avg'),
  )


_INCEPTION_D = (
  ([('branch3x3_1', 192, 1, 1, 0), ('branch3x3_2', 320, 3, 2, 0)], None),
  (
    [
      ('branch7x7x3_1', 192, 1, 1, 0),
      ('branch7x7x3_2', 192, (1, 7), 1, (0, 3)),
      ('branch7x7x3_3', 192, (7, 1), 1, (3, 0)),
      ('branch7x7x3_4', 192, 3, 2, 0),
    ],
    None,
  ),
  ([], 'max'),
)

_3X3_1 = ('branch3x3_1', 384, 1, 1, 0)
_DBL_1, _DBL_2 = ('branch3x3dbl_1', 448, 1, 1, 0), ('branch3x3dbl_2', 384, 3, 1, 1)
_INCEPTION_E = (
  ([('branch1x1', 320, 1, 1, 0)], None),
  ([_3X3_1, ('branch3x3_2a', 384, (1, 3), 1, (0, 1))], None),
  ([_3X3_1, ('branch3x3_2b', 384, (3, 1), 1, (1, 0))], None),
  ([_DBL_1, _DBL_2, ('branch3x3dbl_3a', 384, (1, 3), 1, (0, 1))], None),
  ([_DBL_1, _DBL_2, ('branch3x3dbl_3b', 384, (3, 1), 1, (1, 0))], None),
  ([('branch_pool', 192, 1, 1, 0)], 'avg'),
)


class InceptionV3(nn.Module):
  """Inception-v3 as torchvision's ``inception_v3`` (without the auxiliary head).

  Takes float NHWC images in [0, 1], e.g. ``(N, 299, 299, 3)``, and returns ``(N, num_classes)``
  logits. The input is standardised inside the model with ImageNet's ``mean``/``std``, as a
  torchvision pipeline does with ``transforms.Normalize``; with ``transform_input`` (as
  torchvision's pretrained weights use) it is then mapped to ``2x - 1`` the way torchvision's
  ``transform_input`` computes it, so both sides round alike. Layer names and shapes follow
  torchvision, so `ddn_jax.interop.from_torch_state_dict` reads its ``state_dict``; the
  auxiliary classifier is a training-time head and is not part of this module.

  Batch norm (ε = 0.001) uses batch statistics and updates ``batch_stats`` when ``train=True``,
  and the running averages otherwise; dropout before the last layer needs a ``'dropout'`` rng
  when ``train=True``.

  Attributes:
    num_classes: number of output logits.
    transform_input: apply torchvision's ``transform_input`` after the standardisation.
    dropout_rate: dropout probability before the classifier during training.
    mean: per-channel input mean, in [0, 1] units.
    std: per-channel input standard deviation, in [0, 1] units.

  References:
    Szegedy et al., 2016, "Rethinking the Inception Architecture for Computer Vision"; Rony et
    al., 2019, Section 5 (ImageNet experiments).
  """

  num_classes: int = 1000
  transform_input: bool = True
  dropout_rate: float = 0.5
  mean: Sequence[float] = IMAGENET_MEAN
  std: Sequence[float] = IMAGENET_STD

  @nn.compact
  def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
    # In the input's dtype, so that a bfloat16 input keeps the network in bfloat16.
    mean, std = jnp.asarray(self.mean, x.dtype), jnp.asarray(self.std, x.dtype)
    x = (x - mean) / std
    if self.transform_input:
      x = x * (std / 0.5) + (mean - 0.5) / 0.5
    x = BasicConv2d(32, 3, strides=2, name='Conv2d_1a_3x3')(x, train)
    x = BasicConv2d(32, 3, name='Conv2d_2a_3x3')(x, train)
    x = BasicConv2d(64, 3, padding=1, name='Conv2d_2b_3x3')(x, train)
    x = _max_pool_3x3_s2(x)
    x = BasicConv2d(80, 1, name='Conv2d_3b_1x1')(x, train)
    x = BasicConv2d(192, 3, name='Conv2d_4a_3x3')(x, train)
    x = _max_pool_3x3_s2(x)
    blocks = [
      ('Mixed_5b', _inception_a(32)),
      ('Mixed_5c', _inception_a(64)),
      ('Mixed_5d', _inception_a(64)),
      ('Mixed_6a', _INCEPTION_B),
      ('Mixed_6b', _inception_c(128)),
      ('Mixed_6c', _inception_c(160)),
      ('Mixed_6d', _inception_c(160)),
      ('Mixed_6e', _inception_c(192)),
      ('Mixed_7a', _INCEPTION_D),
      ('Mixed_7b', _INCEPTION_E),
      ('Mixed_7c', _INCEPTION_E),
    ]
    for name, branches in blocks:
      branches = tuple((tuple(chain), pool) for chain, pool in branches)
      x = _Branches(branches, name=name)(x, train)
    x = jnp.mean(x, axis=(1, 2))
    x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
    return nn.Dense(self.num_classes, name='fc')(x)
