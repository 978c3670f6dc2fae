"""Flax models of the paper; all take float NHWC images in [0, 1]."""

from ddn_jax.models._cifar_cnn import CifarCNN
from ddn_jax.models._logits import make_logits_fn
from ddn_jax.models._small_cnn import SmallCNN
from ddn_jax.models._wide_resnet import CIFAR10_MEAN
from ddn_jax.models._wide_resnet import CIFAR10_STD
from ddn_jax.models._wide_resnet import WideResNet

__all__ = (
  'CIFAR10_MEAN',
  'CIFAR10_STD',
  'CifarCNN',
  'SmallCNN',
  'WideResNet',
  'make_logits_fn',
)
