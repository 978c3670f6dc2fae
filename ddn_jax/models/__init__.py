"""Flax models of the paper (Linen, and `NnxSmallCNN` in NNX); all take float NHWC images in
[0, 1]."""

from ddn_jax.models._cifar_cnn import CifarCNN
from ddn_jax.models._dm_preact_resnet import DMPreActResNet
from ddn_jax.models._dm_wide_resnet import DMWideResNet
from ddn_jax.models._inception import InceptionV3
from ddn_jax.models._logits import make_logits_fn
from ddn_jax.models._nnx_small_cnn import NnxSmallCNN
from ddn_jax.models._preact_resnet import PreActResNet18
from ddn_jax.models._precision import PRECISIONS, apply_in_precision, check_precision
from ddn_jax.models._resnet import ResNet
from ddn_jax.models._saved import (
  SavedModel,
  build_model,
  held_out_indices,
  load_model,
  save_model_info,
)
from ddn_jax.models._small_cnn import SmallCNN
from ddn_jax.models._wide_resnet import CIFAR10_MEAN, CIFAR10_STD, WideResNet

__all__ = (
  'CIFAR10_MEAN',
  'CIFAR10_STD',
  'PRECISIONS',
  'CifarCNN',
  'DMPreActResNet',
  'DMWideResNet',
  'InceptionV3',
  'NnxSmallCNN',
  'PreActResNet18',
  'ResNet',
  'SavedModel',
  'SmallCNN',
  'WideResNet',
  'apply_in_precision',
  'build_model',
  'check_precision',
  'held_out_indices',
  'load_model',
  'make_logits_fn',
  'save_model_info',
)
