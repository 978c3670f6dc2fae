"""PyTorch twins of the Flax models in `ddn_jax.models`; imports torch, so only interop loads it.

The module and parameter names follow the common PyTorch definitions of these networks (the
TRADES/DDN ``SmallCNN`` layout and Zagoruyko's ``WideResNet``), so their checkpoints load as is.
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
