"""PyTorch twins of the Flax models in `ddn_jax.models`; imports torch, so only interop loads it.

The module and parameter names follow the common PyTorch definitions of these networks (the
TRADES/DDN ``SmallCNN`` layout, Zagoruyko's ``WideResNet``, RobustBench's ``ResNet``,
``PreActResNet``, ``DMWideResNet`` and ``DMPreActResNet``, and torchvision's ``Inception3``), so their checkpoints
load as is.
All take float NCHW images in [0, 1].
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn


def flat_spatial(height: int, width: int) -> tuple[int, int]:
  """Spatial size before the first dense layer of `SmallCNN`/`CifarCNN`: 2×(2 convs, pool)."""
  for _ in range(2):
    height, width = (height - 4) // 2, (width - 4) // 2
  return height, width


class ConvNet(nn.Module):
  """`SmallCNN` (widths 32, 64, 200) or `CifarCNN` (64, 128, 256) with PyTorch layouts."""

  def __init__(
    self,
    conv_widths: tuple[int, int],
    dense_width: int,
    *,
    num_channels: int,
    input_size: tuple[int, int],
    num_classes: int = 10,
    dropout_rate: float = 0.5,
  ):
    super().__init__()
    (c1, c2), (h, w) = conv_widths, flat_spatial(*input_size)
    self.feature_extractor = nn.Sequential(
      OrderedDict(
        conv1=nn.Conv2d(num_channels, c1, 3),
        relu1=nn.ReLU(),
        conv2=nn.Conv2d(c1, c1, 3),
        relu2=nn.ReLU(),
        maxpool1=nn.MaxPool2d(2, 2),
        conv3=nn.Conv2d(c1, c2, 3),
        relu3=nn.ReLU(),
        conv4=nn.Conv2d(c2, c2, 3),
        relu4=nn.ReLU(),
        maxpool2=nn.MaxPool2d(2, 2),
      )
    )
    self.classifier = nn.Sequential(
      OrderedDict(
        fc1=nn.Linear(c2 * h * w, dense_width),
        relu1=nn.ReLU(),
        drop=nn.Dropout(dropout_rate),
        fc2=nn.Linear(dense_width, dense_width),
        relu2=nn.ReLU(),
        fc3=nn.Linear(dense_width, num_classes),
      )
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.classifier(self.feature_extractor(x).flatten(1))


class _Block(nn.Module):
  """Pre-activation block; the projection shortcut sees the activated input, as in Flax."""

  def __init__(self, in_planes: int, planes: int, stride: int, dropout_rate: float):
    super().__init__()
    self.bn1 = nn.BatchNorm2d(in_planes)
    self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.drop = nn.Dropout(dropout_rate)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
    self.convShortcut = (  # The reference's name, so that its checkpoints load.
      nn.Conv2d(in_planes, planes, 1, stride, bias=False)
      if in_planes != planes or stride != 1
      else None
    )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    activated = torch.relu(self.bn1(x))
    y = self.conv2(self.drop(torch.relu(self.bn2(self.conv1(activated)))))
    return y + (x if self.convShortcut is None else self.convShortcut(activated))


class _Group(nn.Module):
  def __init__(self, blocks: Sequence[_Block]):
    super().__init__()
    self.layer = nn.Sequential(*blocks)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.layer(x)


class WideResNet(nn.Module):
  """WRN-``depth``-``width`` matching `ddn_jax.models.WideResNet` (input standardised inside)."""

  def __init__(
    self,
    depth: int,
    width: int,
    *,
    num_channels: int,
    num_classes: int = 10,
    dropout_rate: float = 0.0,
    mean: Sequence[float],
    std: Sequence[float],
  ):
    super().__init__()
    n = (depth - 4) // 6
    widths = [16, 16 * width, 32 * width, 64 * width]
    # Not persistent: they are hyperparameters of the Flax module, not variables.
    self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
    self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
    self.conv1 = nn.Conv2d(num_channels, 16, 3, padding=1, bias=False)
    for group, stride in enumerate((1, 2, 2)):
      blocks = [
        _Block(widths[group] if b == 0 else widths[group + 1], widths[group + 1], s, dropout_rate)
        for b, s in enumerate([stride] + [1] * (n - 1))
      ]
      setattr(self, f'block{group + 1}', _Group(blocks))
    self.bn1 = nn.BatchNorm2d(widths[3])
    self.fc = nn.Linear(widths[3], num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.conv1((x - self.mean) / self.std)
    x = self.block3(self.block2(self.block1(x)))
    return self.fc(torch.relu(self.bn1(x)).mean(dim=(2, 3)))


class _PreActBlock(nn.Module):
  """RobustBench's ``PreActBlock`` (raw-input shortcut) or ``PreActBlockV2`` (activated)."""

  def __init__(self, in_planes: int, planes: int, stride: int, activated_shortcut: bool):
    super().__init__()
    self.activated_shortcut = activated_shortcut
    self.bn1 = nn.BatchNorm2d(in_planes)
    self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, padding=1, bias=False)
    self.bn2 = nn.BatchNorm2d(planes)
    self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
    if stride != 1 or in_planes != planes:
      self.shortcut = nn.Sequential(nn.Conv2d(in_planes, planes, 1, stride, bias=False))

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    activated = torch.relu(self.bn1(x))
    y = self.conv2(torch.relu(self.bn2(self.conv1(activated))))
    if not hasattr(self, 'shortcut'):
      return y + x
    return y + self.shortcut(activated if self.activated_shortcut else x)


class PreActResNet18(nn.Module):
  """`ddn_jax.models.PreActResNet18` with RobustBench's names (input standardised inside)."""

  def __init__(
    self,
    *,
    num_channels: int,
    num_classes: int = 10,
    mean: Sequence[float],
    std: Sequence[float],
    activated_shortcut: bool = True,
    final_norm: bool = True,
  ):
    super().__init__()
    self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
    self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
    self.conv1 = nn.Conv2d(num_channels, 64, 3, padding=1, bias=False)
    in_planes = 64
    for stage, stride in enumerate((1, 2, 2, 2)):
      planes = 64 * 2**stage
      blocks = [
        _PreActBlock(in_planes if b == 0 else planes, planes, s, activated_shortcut)
        for b, s in enumerate((stride, 1))
      ]
      setattr(self, f'layer{stage + 1}', nn.Sequential(*blocks))
      in_planes = planes
    self.bn = nn.BatchNorm2d(512) if final_norm else None
    self.linear = nn.Linear(512, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.conv1((x - self.mean) / self.std)
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    if self.bn is not None:
      x = torch.relu(self.bn(x))
    return self.linear(x.mean(dim=(2, 3)))


class _ResNetBlock(nn.Module):
  """RobustBench's ``BasicBlock`` or ``Bottleneck`` (its output four times ``planes`` wide)."""

  def __init__(self, in_planes: int, planes: int, stride: int, bottleneck: bool):
    super().__init__()
    out_planes = 4 * planes if bottleneck else planes
    if bottleneck:
      self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
      self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=1, bias=False)
      self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(out_planes)
    else:
      self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, padding=1, bias=False)
      self.conv2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(planes)
    self.bn2 = nn.BatchNorm2d(planes)
    self.shortcut = nn.Sequential()
    if stride != 1 or in_planes != out_planes:
      self.shortcut = nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes)
      )

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = torch.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    if hasattr(self, 'conv3'):
      y = self.bn3(self.conv3(torch.relu(y)))
    return torch.relu(y + self.shortcut(x))


class ResNet(nn.Module):
  """`ddn_jax.models.ResNet` with RobustBench's names (input standardised inside)."""

  def __init__(
    self,
    blocks: Sequence[int],
    bottleneck: bool,
    *,
    num_channels: int,
    num_classes: int = 10,
    mean: Sequence[float],
    std: Sequence[float],
  ):
    super().__init__()
    self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
    self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
    self.conv1 = nn.Conv2d(num_channels, 64, 3, padding=1, bias=False)
    self.bn1 = nn.BatchNorm2d(64)
    in_planes = 64
    for stage, (n, stride) in enumerate(zip(blocks, (1, 2, 2, 2))):
      planes = 64 * 2**stage
      layer = []
      for s in [stride] + [1] * (n - 1):
        layer.append(_ResNetBlock(in_planes, planes, s, bottleneck))
        in_planes = 4 * planes if bottleneck else planes
      setattr(self, f'layer{stage + 1}', nn.Sequential(*layer))
    self.linear = nn.Linear(in_planes, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = torch.relu(self.bn1(self.conv1((x - self.mean) / self.std)))
    x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
    return self.linear(x.mean(dim=(2, 3)))


def _dm_conv3x3(in_planes: int, planes: int, stride: int) -> nn.Conv2d:
  return nn.Conv2d(in_planes, planes, 3, stride, padding=0, bias=False)


def _dm_pad(x: torch.Tensor, stride: int) -> torch.Tensor:
  """DeepMind's padding before a 3×3 convolution: TensorFlow's SAME (after only, at stride 2)."""
  return nn.functional.pad(x, (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1))


class _DMBlock(nn.Module):
  """RobustBench's ``dm_wide_resnet._Block`` with Swish."""

  def __init__(self, in_planes: int, planes: int, stride: int):
    super().__init__()
    self.stride = stride
    self.batchnorm_0 = nn.BatchNorm2d(in_planes)
    self.conv_0 = _dm_conv3x3(in_planes, planes, stride)
    self.batchnorm_1 = nn.BatchNorm2d(planes)
    self.conv_1 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
    if in_planes != planes:
      self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    activated = nn.functional.silu(self.batchnorm_0(x))
    y = self.conv_0(_dm_pad(activated, self.stride))
    y = self.conv_1(nn.functional.silu(self.batchnorm_1(y)))
    return y + (self.shortcut(activated) if hasattr(self, 'shortcut') else x)


class _DMGroup(nn.Module):
  """RobustBench's ``_BlockGroup``: the blocks under ``block``."""

  def __init__(self, blocks: list[nn.Module]):
    super().__init__()
    self.block = nn.Sequential(*blocks)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.block(x)


class DMWideResNet(nn.Module):
  """`ddn_jax.models.DMWideResNet` with RobustBench's names (input standardised inside)."""

  def __init__(
    self,
    depth: int,
    width: int,
    *,
    num_channels: int,
    num_classes: int = 10,
    mean: Sequence[float],
    std: Sequence[float],
  ):
    super().__init__()
    n = (depth - 4) // 6
    widths = [16, 16 * width, 32 * width, 64 * width]
    self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
    self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
    self.init_conv = nn.Conv2d(num_channels, 16, 3, padding=1, bias=False)
    self.layer = nn.Sequential(
      *(
        _DMGroup(
          [
            _DMBlock(widths[group] if b == 0 else widths[group + 1], widths[group + 1], s)
            for b, s in enumerate([stride] + [1] * (n - 1))
          ]
        )
        for group, stride in enumerate((1, 2, 2))
      )
    )
    self.batchnorm = nn.BatchNorm2d(widths[3])
    self.logits = nn.Linear(widths[3], num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.layer(self.init_conv((x - self.mean) / self.std))
    return self.logits(nn.functional.silu(self.batchnorm(x)).mean(dim=(2, 3)))


class _DMPreActBlock(nn.Module):
  """RobustBench's ``dm_wide_resnet._PreActBlock`` with Swish."""

  def __init__(self, in_planes: int, planes: int, stride: int):
    super().__init__()
    self.stride = stride
    self.batchnorm_0 = nn.BatchNorm2d(in_planes)
    self.conv_2d_1 = _dm_conv3x3(in_planes, planes, stride)
    self.batchnorm_1 = nn.BatchNorm2d(planes)
    self.conv_2d_2 = nn.Conv2d(planes, planes, 3, 1, padding=1, bias=False)
    if stride != 1 or in_planes != planes:
      self.shortcut = _dm_conv3x3(in_planes, planes, stride)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    y = self.conv_2d_1(_dm_pad(nn.functional.silu(self.batchnorm_0(x)), self.stride))
    y = self.conv_2d_2(nn.functional.silu(self.batchnorm_1(y)))
    return y + (self.shortcut(_dm_pad(x, self.stride)) if hasattr(self, 'shortcut') else x)


class DMPreActResNet(nn.Module):
  """`ddn_jax.models.DMPreActResNet` with RobustBench's names (input standardised inside)."""

  def __init__(
    self,
    blocks: Sequence[int],
    *,
    num_channels: int,
    num_classes: int = 10,
    mean: Sequence[float],
    std: Sequence[float],
  ):
    super().__init__()
    self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
    self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
    self.conv_2d = nn.Conv2d(num_channels, 64, 3, padding=1, bias=False)
    in_planes = 64
    for stage, (n, stride) in enumerate(zip(blocks, (1, 2, 2, 2))):
      planes = 64 * 2**stage
      layer = [
        _DMPreActBlock(in_planes if b == 0 else planes, planes, s)
        for b, s in enumerate([stride] + [1] * (n - 1))
      ]
      setattr(self, f'layer_{stage}', nn.Sequential(*layer))
      in_planes = planes
    self.batchnorm = nn.BatchNorm2d(512)
    self.logits = nn.Linear(512, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.conv_2d((x - self.mean) / self.std)
    x = self.layer_3(self.layer_2(self.layer_1(self.layer_0(x))))
    return self.logits(nn.functional.silu(self.batchnorm(x)).mean(dim=(2, 3)))


class BasicConv2d(nn.Module):
  """torchvision's Inception conv unit: conv without bias, batch norm (ε = 0.001), ReLU."""

  def __init__(self, in_channels: int, out_channels: int, **kwargs):
    super().__init__()
    self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
    self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.relu(self.bn(self.conv(x)))


class InceptionA(nn.Module):
  def __init__(self, in_channels: int, pool_features: int):
    super().__init__()
    self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
    self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
    self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.cat(
      [
        self.branch1x1(x),
        self.branch5x5_2(self.branch5x5_1(x)),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        self.branch_pool(nn.functional.avg_pool2d(x, kernel_size=3, stride=1, padding=1)),
      ],
      1,
    )


class InceptionB(nn.Module):
  def __init__(self, in_channels: int):
    super().__init__()
    self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
    self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    return torch.cat(
      [
        self.branch3x3(x),
        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
        nn.functional.max_pool2d(x, kernel_size=3, stride=2),
      ],
      1,
    )


class InceptionC(nn.Module):
  def __init__(self, in_channels: int, channels_7x7: int):
    super().__init__()
    c7 = channels_7x7
    self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
    self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    dbl = x
    for k in range(1, 6):
      dbl = getattr(self, f'branch7x7dbl_{k}')(dbl)
    return torch.cat(
      [
        self.branch1x1(x),
        self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
        dbl,
        self.branch_pool(nn.functional.avg_pool2d(x, kernel_size=3, stride=1, padding=1)),
      ],
      1,
    )


class InceptionD(nn.Module):
  def __init__(self, in_channels: int):
    super().__init__()
    self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
    self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
    self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
    self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
    self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
    return torch.cat(
      [
        self.branch3x3_2(self.branch3x3_1(x)),
        b7,
        nn.functional.max_pool2d(x, kernel_size=3, stride=2),
      ],
      1,
    )


class InceptionE(nn.Module):
  def __init__(self, in_channels: int):
    super().__init__()
    self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
    self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
    self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
    self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
    self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
    self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
    self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    b3 = self.branch3x3_1(x)
    dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
    return torch.cat(
      [
        self.branch1x1(x),
        self.branch3x3_2a(b3),
        self.branch3x3_2b(b3),
        self.branch3x3dbl_3a(dbl),
        self.branch3x3dbl_3b(dbl),
        self.branch_pool(nn.functional.avg_pool2d(x, kernel_size=3, stride=1, padding=1)),
      ],
      1,
    )


class InceptionAux(nn.Module):
  """torchvision's training-time auxiliary head; only its parameter names and shapes matter."""

  def __init__(self, in_channels: int, num_classes: int):
    super().__init__()
    self.conv0 = BasicConv2d(in_channels, 128, kernel_size=1)
    self.conv1 = BasicConv2d(128, 768, kernel_size=5)
    self.fc = nn.Linear(768, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = self.conv1(self.conv0(nn.functional.avg_pool2d(x, kernel_size=5, stride=3)))
    return self.fc(nn.functional.adaptive_avg_pool2d(x, (1, 1)).flatten(1))


class Inception3(nn.Module):
  """torchvision's ``Inception3`` in inference mode, taking float NCHW images in [0, 1].

  The same parameter names and shapes as ``torchvision.models.inception_v3``, so its
  ``state_dict`` loads as is (with ``aux_logits=True``, or ``strict=False`` for the
  ``AuxLogits`` keys); the input is standardised with ImageNet's statistics inside, then mapped
  by ``transform_input`` as torchvision does. The auxiliary head is never run.
  """

  def __init__(
    self,
    *,
    num_classes: int = 1000,
    aux_logits: bool = False,
    transform_input: bool = True,
    dropout_rate: float = 0.5,
    mean: Sequence[float],
    std: Sequence[float],
  ):
    super().__init__()
    self.transform_input = transform_input
    self.statistics = tuple(zip(mean, std))  # Python floats, as torchvision's constants.
    self.register_buffer('mean', torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
    self.register_buffer('std', torch.tensor(std).view(1, -1, 1, 1), persistent=False)
    self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
    self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
    self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
    self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
    self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
    self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
    self.Mixed_5b = InceptionA(192, pool_features=32)
    self.Mixed_5c = InceptionA(256, pool_features=64)
    self.Mixed_5d = InceptionA(288, pool_features=64)
    self.Mixed_6a = InceptionB(288)
    self.Mixed_6b = InceptionC(768, channels_7x7=128)
    self.Mixed_6c = InceptionC(768, channels_7x7=160)
    self.Mixed_6d = InceptionC(768, channels_7x7=160)
    self.Mixed_6e = InceptionC(768, channels_7x7=192)
    self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
    self.Mixed_7a = InceptionD(768)
    self.Mixed_7b = InceptionE(1280)
    self.Mixed_7c = InceptionE(2048)
    self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
    self.dropout = nn.Dropout(p=dropout_rate)
    self.fc = nn.Linear(2048, num_classes)

  def forward(self, x: torch.Tensor) -> torch.Tensor:
    x = (x - self.mean) / self.std
    if self.transform_input:  # torchvision's _transform_input, channel by channel.
      x = torch.cat(
        [x[:, c : c + 1] * (s / 0.5) + (m - 0.5) / 0.5 for c, (m, s) in enumerate(self.statistics)],
        1,
      )
    for name in ('Conv2d_1a_3x3', 'Conv2d_2a_3x3', 'Conv2d_2b_3x3', 'maxpool1', 'Conv2d_3b_1x1'):
      x = getattr(self, name)(x)
    x = self.maxpool2(self.Conv2d_4a_3x3(x))
    for block in ('5b', '5c', '5d', '6a', '6b', '6c', '6d', '6e', '7a', '7b', '7c'):
      x = getattr(self, f'Mixed_{block}')(x)
    return self.fc(self.dropout(self.avgpool(x).flatten(1)))
