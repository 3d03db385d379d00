"""VGG with BatchNorm for 32×32 inputs — Simonyan & Zisserman, *Very Deep Convolutional
Networks for Large-Scale Image Recognition*, ICLR 2015, Table 1 (configurations A/B/D/E =
VGG-11/13/16/19), with BatchNorm after every conv (Ioffe & Szegedy 2015) and the CIFAR head
of the common CIFAR code bases (one linear layer on the 1×1×512 map after the fifth pool).

The five 2×2/2 pools are swappable (``pool=``, any registered downsampling pool), so one
backbone can compare every pooling method in the same positions — the setting of the
third-party VGG16-BN CIFAR-100 pooling comparison that the SoftPool README links
(rentainhe/pytorch-pooling; ``registry/published.toml`` rows
``softpool/third-party-pooling/...``). ``width`` scales every channel count (mini tier).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import registry

#: Table 1 of Simonyan & Zisserman; "M" = a pooling layer.
CONFIGS: dict[int, tuple[int | str, ...]] = {
    11: (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    13: (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"),
    16: (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512,
         "M"),
    19: (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512,
         512, 512, 512, "M"),
}


class CifarVGG(nn.Module):
    """VGG-{11,13,16,19}-BN for 32×32 images with swappable pools."""

    def __init__(self, depth: int = 16, num_classes: int = 100, in_chans: int = 3,
                 width: float = 1.0, pool: Any = "max"):
        super().__init__()
        if depth not in CONFIGS:
            raise ValueError(f"VGG depth must be one of {sorted(CONFIGS)}, got {depth}")
        layers: list[nn.Module] = []
        cin = in_chans
        for v in CONFIGS[depth]:
            if v == "M":
                layers.append(registry.create_pool(pool, kernel_size=2, stride=2, dim=2,
                                                   channels=cin))
                continue
            cout = max(1, int(round(int(v) * width)))
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                       nn.ReLU(inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3)))


def cifar_vgg(depth: int = 16, num_classes: int = 100, in_chans: int = 3, width: float = 1.0,
              pool: Any = "max") -> nn.Module:
    return CifarVGG(depth, num_classes, in_chans, width, pool)


def cifar_vgg16_bn(num_classes: int = 100, in_chans: int = 3, width: float = 1.0,
                   pool: Any = "max") -> nn.Module:
    """VGG16-BN for 32×32 inputs (configuration D) with swappable pools."""
    return CifarVGG(16, num_classes, in_chans, width, pool)
