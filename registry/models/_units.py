"""The conv unit shared by the PoolSkip paper's CIFAR networks: conv → skip op → BN → ReLU.

Sun et al. (AAAI 2025, Sec. "Image Classification" and the authors' README) put Pool Skip
"after the convolutional layer, but before the activation function and batch normalization
layer", in *every* conv layer for Table 1. :func:`conv_unit` is that placement once; the
VGG16, MobileNet and GoogleNet of :mod:`registry.models.cifar_vgg`,
:mod:`registry.models.cifar_mobilenet` and :mod:`registry.models.cifar_googlenet` are built
from it, so ``skip="identity"`` is the plain network of the authors' code base
(weiaicunzai/pytorch-cifar100) and any other ``kind="skip"`` op of ``registry.pools``
(``poolskip``, ``residual``, the Table 4 arms) drops into every conv at once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from torch import nn

import registry


def scaled(c: int, width: float) -> int:
    """``c`` channels scaled by ``width`` (at least 1)."""
    return max(1, int(round(c * width)))


def conv_unit(cin: int, cout: int, k: int, *, stride: int = 1, padding: int = 0,
              groups: int = 1, bias: bool = True, skip: Any = "identity", pool_size: int = 2,
              bn_eps: float = 1e-5, relu: bool = True) -> nn.Sequential:
    """``Sequential(conv, skip, bn[, relu])``: the skip op sits between the conv and its BN.

    The children are named ``conv``, ``skip``, ``bn``, ``relu``; with ``skip="identity"``
    the ``skip`` child is a parameter-free ``nn.Identity``, so the parameters (and their
    count) are those of the plain conv → BN → ReLU.
    """
    layers: OrderedDict[str, nn.Module] = OrderedDict({
        "conv": nn.Conv2d(cin, cout, k, stride=stride, padding=padding, groups=groups,
                          bias=bias),
        "skip": registry.create_pool(skip, channels=cout, pool_size=pool_size),
        "bn": nn.BatchNorm2d(cout, eps=bn_eps),
    })
    if relu:
        layers["relu"] = nn.ReLU(inplace=True)
    return nn.Sequential(layers)
