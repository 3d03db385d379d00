"""MobileNet (v1) for CIFAR, plain and with Pool Skip in every conv (Sun et al., AAAI 2025,
Table 1).

The architecture is the one the PoolSkip authors trained: their code base
weiaicunzai/pytorch-cifar100 (PoolSkip commit 491d3a5, ``models/mobilenet.py``), Howard et
al. 2017 adapted to 32×32:

* stem: conv3×3 3→32 (no bias) → BN → ReLU, then a depthwise-separable block 32→64;
* depthwise-separable block = depthwise conv3×3 (groups = C, **no bias**, stride s) → BN →
  ReLU, then pointwise conv1×1 (**with bias**) → BN → ReLU;
* blocks 64→128 (s2), 128→128, 128→256 (s2), 256→256, 256→512 (s2), 5 × 512→512,
  512→1024 (s2), 1024→1024; global average pool; Linear(1024, classes).

``width`` is the width multiplier α; channel counts are ``int(c·α)`` as in the original.
``skip=`` names a shape-preserving op of ``registry.pools`` placed after **every** conv
(stem, depthwise and pointwise), before its BN (:func:`registry.models._units.conv_unit`).
The Pool Skip op holds a full C→C 3×3 conv (the authors' ``pool_skip.py``), also after a
depthwise conv, so the Pool Skip MobileNet has many more parameters than the plain one. The
authors' repository holds no Pool Skip MobileNet file; the placement follows the paper's text
("implemented in each convolutional layer") and README.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from registry.models._units import conv_unit

#: (in, out, stride) of the depthwise-separable blocks after the stem's own block
BLOCKS = ((64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
          (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1),
          (512, 1024, 2), (1024, 1024, 1))


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, skip: Any, pool_size: int):
        super().__init__()
        self.depthwise = conv_unit(cin, cin, 3, stride=stride, padding=1, groups=cin,
                                   bias=False, skip=skip, pool_size=pool_size)
        self.pointwise = conv_unit(cin, cout, 1, bias=True, skip=skip, pool_size=pool_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class CifarMobileNet(nn.Module):
    def __init__(self, num_classes: int = 100, in_chans: int = 3, skip: Any = "identity",
                 pool_size: int = 2, width: float = 1.0):
        super().__init__()

        def a(c: int) -> int:
            return max(1, int(c * width))

        self.stem = nn.Sequential(
            conv_unit(in_chans, a(32), 3, padding=1, bias=False, skip=skip,
                      pool_size=pool_size),
            DepthwiseSeparable(a(32), a(64), 1, skip, pool_size))
        self.blocks = nn.Sequential(*[DepthwiseSeparable(a(i), a(o), s, skip, pool_size)
                                      for i, o, s in BLOCKS])
        self.fc = nn.Linear(a(1024), num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(x.mean((2, 3)))


def cifar_mobilenet(num_classes: int = 100, in_chans: int = 3, skip: Any = "identity",
                    pool_size: int = 2, width: float = 1.0) -> nn.Module:
    """MobileNet for 32×32 inputs (weiaicunzai ``mobilenet``); ``skip=`` after every conv."""
    return CifarMobileNet(num_classes, in_chans, skip, pool_size, width)


def cifar_mobilenet_poolskip(num_classes: int = 100, in_chans: int = 3,
                             skip: Any = "poolskip", pool_size: int = 2,
                             width: float = 1.0) -> nn.Module:
    """MobileNet with Pool Skip (pool size 2) after every conv, before its BN (Table 1)."""
    return CifarMobileNet(num_classes, in_chans, skip, pool_size, width)
