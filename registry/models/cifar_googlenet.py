"""GoogLeNet for CIFAR, plain and with Pool Skip in every conv (Sun et al., AAAI 2025,
Table 1).

The architecture is the one the PoolSkip authors trained: their code base
weiaicunzai/pytorch-cifar100 (PoolSkip commit 491d3a5, ``models/googlenet.py``), Szegedy et
al. 2015 adapted to 32×32:

* prelayer: conv3×3 3→64, 64→64, 64→192 (no bias), each → BN → ReLU;
* MaxPool(3, 2, pad 1) → inception a3, b3 → MaxPool → a4 … e4 → MaxPool → a5, b5 → global
  average → Dropout2d(0.4) → Linear(1024, classes);
* inception (c, n1, n3r, n3, n5r, n5, pp): four branches concatenated — 1×1 (n1);
  1×1 (n3r) → 3×3 (n3); 1×1 (n5r) → 3×3 (n5) → 3×3 (n5) (two stacked 3×3 in place of the
  5×5); MaxPool(3, 1, pad 1) → 1×1 (pp); every conv **with bias** → BN → ReLU.

One quirk of the original is kept: the middle BN of the "5×5" branch is written
``nn.BatchNorm2d(n5x5, n5x5)``, which passes ``n5x5`` as BN's *eps* (32 … 128 instead of
1e-5). It changes no parameter count but does change the function, so the trained network is
the authors' (``bn_eps_quirk=False`` gives the textbook eps).

``skip=`` names a shape-preserving op of ``registry.pools`` placed after **every** conv
(prelayer and all inception convs), before its BN (:func:`registry.models._units.conv_unit`);
``width`` scales every channel count (mini tier). The authors' repository holds no Pool Skip
GoogLeNet file; the placement follows the paper's text ("implemented in each convolutional
layer") and README.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from registry.models._units import conv_unit, scaled

#: (name, n1x1, n3x3_reduce, n3x3, n5x5_reduce, n5x5, pool_proj), in network order
INCEPTIONS = (
    ("a3", 64, 96, 128, 16, 32, 32), ("b3", 128, 128, 192, 32, 96, 64),
    ("a4", 192, 96, 208, 16, 48, 64), ("b4", 160, 112, 224, 24, 64, 64),
    ("c4", 128, 128, 256, 24, 64, 64), ("d4", 112, 144, 288, 32, 64, 64),
    ("e4", 256, 160, 320, 32, 128, 128),
    ("a5", 256, 160, 320, 32, 128, 128), ("b5", 384, 192, 384, 48, 128, 128),
)
POOL_AFTER = ("prelayer", "b3", "e4")  # MaxPool(3, stride 2, pad 1) after these


class Inception(nn.Module):
    def __init__(self, cin: int, n1: int, n3r: int, n3: int, n5r: int, n5: int, pp: int,
                 skip: Any, pool_size: int, bn_eps_quirk: bool):
        super().__init__()

        def unit(i: int, o: int, k: int, **kw: Any) -> nn.Sequential:
            return conv_unit(i, o, k, padding=k // 2, bias=True, skip=skip,
                             pool_size=pool_size, **kw)

        self.b1 = unit(cin, n1, 1)
        self.b2 = nn.Sequential(unit(cin, n3r, 1), unit(n3r, n3, 3))
        self.b3 = nn.Sequential(unit(cin, n5r, 1),
                                unit(n5r, n5, 3, bn_eps=float(n5) if bn_eps_quirk else 1e-5),
                                unit(n5, n5, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), unit(cin, pp, 1))
        self.out_channels = n1 + n3 + n5 + pp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


class CifarGoogLeNet(nn.Module):
    def __init__(self, num_classes: int = 100, in_chans: int = 3, skip: Any = "identity",
                 pool_size: int = 2, width: float = 1.0, bn_eps_quirk: bool = True):
        super().__init__()

        def w(c: int) -> int:
            return scaled(c, width)

        def pre(i: int, o: int) -> nn.Sequential:
            return conv_unit(i, o, 3, padding=1, bias=False, skip=skip, pool_size=pool_size)

        self.prelayer = nn.Sequential(pre(in_chans, w(64)), pre(w(64), w(64)),
                                      pre(w(64), w(192)))
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        c = w(192)
        for name, *chans in INCEPTIONS:
            block = Inception(c, *(w(x) for x in chans), skip, pool_size, bn_eps_quirk)
            self.add_module(name, block)
            c = block.out_channels
        self.dropout = nn.Dropout2d(p=0.4)
        self.linear = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.prelayer(x))
        for name, *_ in INCEPTIONS:
            x = getattr(self, name)(x)
            if name in POOL_AFTER:
                x = self.maxpool(x)
        x = self.dropout(x.mean((2, 3), keepdim=True))
        return self.linear(torch.flatten(x, 1))


def cifar_googlenet(num_classes: int = 100, in_chans: int = 3, skip: Any = "identity",
                    pool_size: int = 2, width: float = 1.0,
                    bn_eps_quirk: bool = True) -> nn.Module:
    """GoogLeNet for 32×32 inputs (weiaicunzai ``googlenet``); ``skip=`` after every conv."""
    return CifarGoogLeNet(num_classes, in_chans, skip, pool_size, width, bn_eps_quirk)


def cifar_googlenet_poolskip(num_classes: int = 100, in_chans: int = 3,
                             skip: Any = "poolskip", pool_size: int = 2, width: float = 1.0,
                             bn_eps_quirk: bool = True) -> nn.Module:
    """GoogLeNet with Pool Skip (pool size 2) after every conv, before its BN (Table 1)."""
    return CifarGoogLeNet(num_classes, in_chans, skip, pool_size, width, bn_eps_quirk)
