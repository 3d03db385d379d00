"""VGG16 with BN for CIFAR, plain and with Pool Skip in every conv (Sun et al., AAAI 2025,
Table 1 and the Table 4 ablation).

The architecture is the one the PoolSkip authors trained: their code base
weiaicunzai/pytorch-cifar100 (PoolSkip commit 491d3a5, ``models/vgg.py``, ``vgg16_bn``),
Simonyan & Zisserman 2015 configuration D with BN:

* 13 conv3×3 (padding 1, **with bias**) → BN → ReLU, widths
  64, 64, M, 128, 128, M, 256 ×3, M, 512 ×3, M, 512 ×3, M (M = MaxPool2d(2, 2));
* at 32×32 input the features end at 1×1×512, flattened;
* classifier Linear(512, 4096) → ReLU → Dropout(0.5) → Linear(4096, 4096) → ReLU →
  Dropout(0.5) → Linear(4096, classes).

``skip=`` names a shape-preserving op of ``registry.pools`` placed after every conv, before
its BN (:func:`registry.models._units.conv_unit`); ``pool_size`` is its pool size (the paper
uses 2 for Table 1). The Table 4 arms are ``skip="identity"`` (base), ``"pool_skip_noconv"``
({Pool, Skip}), ``"residual"`` ({Conv, Skip}), ``"pool_conv_noskip"`` ({Pool, Conv}) and
``"poolskip"`` (ours). ``width`` scales every channel count, the classifier's 4096 included
(mini tier). The authors' repository holds no Pool Skip VGG file (its ``vgg16_diff`` module is
not published); the placement follows the paper's text ("implemented in each convolutional
layer") and README ("after the convolutional layer, before ... batch normalization").
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from registry.models._units import conv_unit, scaled

CFG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
         512, 512, 512, "M")


class CifarVGG(nn.Module):
    def __init__(self, cfg: tuple, num_classes: int = 100, in_chans: int = 3,
                 skip: Any = "identity", pool_size: int = 2, width: float = 1.0,
                 hidden: int = 4096, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_chans
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
                continue
            w = scaled(int(v), width)
            layers.append(conv_unit(c, w, 3, padding=1, bias=True, skip=skip,
                                    pool_size=pool_size))
            c = w
        self.features = nn.Sequential(*layers)
        h = scaled(hidden, width)
        self.classifier = nn.Sequential(
            nn.Linear(c, h), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(h, h), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(h, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def cifar_vgg16(num_classes: int = 100, in_chans: int = 3, skip: Any = "identity",
                pool_size: int = 2, width: float = 1.0) -> nn.Module:
    """VGG16-BN for 32×32 inputs (weiaicunzai ``vgg16_bn``); ``skip=`` after every conv."""
    return CifarVGG(CFG_D, num_classes, in_chans, skip, pool_size, width)


def cifar_vgg16_poolskip(num_classes: int = 100, in_chans: int = 3, skip: Any = "poolskip",
                         pool_size: int = 2, width: float = 1.0) -> nn.Module:
    """VGG16-BN with Pool Skip (pool size 2) after every conv, before its BN (Table 1)."""
    return CifarVGG(CFG_D, num_classes, in_chans, skip, pool_size, width)
