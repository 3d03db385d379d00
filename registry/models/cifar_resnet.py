"""CIFAR ResNets, plain and with PoolSkip (Sun et al., *Beyond Skip Connection: Pooling and
Unpooling Design for Elimination Singularities*, AAAI 2025, arXiv 2409.13154).

Two families share one block code:

* **Wide CIFAR ResNets** ``cifar_resnet{18,34,50,101,152,200,350,420}`` — the PoolSkip authors'
  code base (weiaicunzai/pytorch-cifar100, ``models/resnet.py``; PoolSkip's
  ``models/resnet_poolskip.py``): stem 3×3 conv (64, stride 1, no bias) + BN + ReLU, no max
  pool; four stages of widths 64/128/256/512, strides 1/2/2/2; global average pool; linear.
  BasicBlock (18, 34) or BottleNeck (expansion 4, the rest), blocks per stage
  18 = [2,2,2,2], 34 = [3,4,6,3], 50 = [3,4,6,3], 101 = [3,4,23,3], 152 = [3,8,36,3],
  200 = [3,24,36,3], 350 = [4,36,72,4], 420 = [4,44,87,4] (PoolSkip README / recipe).
* **Thin CIFAR ResNets** ``cifar_resnet_thin(depth, block)`` (He et al., CVPR 2016, Sec. 4.2):
  stem 3×3 conv 16 + BN + ReLU, three stages 16/32/64 (×4 outputs for bottleneck) with
  strides 1/2/2, ``depth = 6n + 2`` (basic) or ``9n + 2`` (bottleneck). Unlike He et al.'s
  option-A (zero-padding) shortcuts, shape-changing shortcuts here are 1×1 conv + BN (option
  B) — the same block code as the wide family, so depth-scaling claims compare like with like.

The residual shortcut (identity, or 1×1 conv + BN when the shape changes) is always kept.
``skip=`` names a shape-preserving op (``registry.create_pool(skip, channels=C,
pool_size=s)``) inserted **after every conv of the residual branch, before its BN**, as the
PoolSkip paper prescribes:

* BasicBlock:  conv3×3 → skip(s) → BN → ReLU → conv3×3 → skip(s) → BN, + shortcut, ReLU
* BottleNeck:  conv1×1 → skip(s) → BN → ReLU → conv3×3(stride) → skip(s) → BN → ReLU →
  conv1×1 → skip(s) → BN, + shortcut, ReLU

with ``s = 2`` for BasicBlock and ``s = 4`` for BottleNeck by default (``pool_size=``).
``skip="identity"`` (the default) is the plain baseline; the ``*_poolskip`` names use
``skip="poolskip"``. ``width`` scales every channel count (mini tier).

Naming: the CIFAR family is ``cifar_resnet*``; plain ``resnet18`` … ``resnet152`` are the
ImageNet (timm) models of :mod:`registry.models.imagenet`. Aliases ``resnet50_poolskip`` /
``ResNet-50-PoolSkip`` etc. point at the CIFAR PoolSkip models (PoolSkip is only defined on
the CIFAR code base).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import registry

WIDE_DEPTHS: dict[int, tuple[str, tuple[int, ...]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
    152: ("bottleneck", (3, 8, 36, 3)),
    200: ("bottleneck", (3, 24, 36, 3)),
    350: ("bottleneck", (4, 36, 72, 4)),
    420: ("bottleneck", (4, 44, 87, 4)),
}
DEFAULT_POOL_SIZE = {"basic": 2, "bottleneck": 4}


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock(nn.Module):
    """conv3×3 → skip → BN → ReLU → conv3×3 → skip → BN, + shortcut, ReLU."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, skip: Any, pool_size: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.skip1 = registry.create_pool(skip, channels=planes, pool_size=pool_size)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.skip2 = registry.create_pool(skip, channels=planes, pool_size=pool_size)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(cin, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.skip1(self.conv1(x))))
        out = self.bn2(self.skip2(self.conv2(out)))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """conv1×1 → skip → BN → ReLU → conv3×3(stride) → skip → BN → ReLU → conv1×1 → skip →
    BN, + shortcut, ReLU (expansion 4, stride on the 3×3 conv as in weiaicunzai's code)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, skip: Any, pool_size: int):
        super().__init__()
        cout = planes * self.expansion
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.skip1 = registry.create_pool(skip, channels=planes, pool_size=pool_size)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.skip2 = registry.create_pool(skip, channels=planes, pool_size=pool_size)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.skip3 = registry.create_pool(skip, channels=cout, pool_size=pool_size)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = _shortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.skip1(self.conv1(x))))
        out = self.relu(self.bn2(self.skip2(self.conv2(out))))
        out = self.bn3(self.skip3(self.conv3(out)))
        return self.relu(out + self.shortcut(x))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class CifarResNet(nn.Module):
    """Stem (3×3 conv, BN, ReLU) → stages → global average → linear."""

    def __init__(self, block: str, layers: tuple[int, ...], widths: tuple[int, ...],
                 strides: tuple[int, ...], stem_width: int, num_classes: int = 100,
                 in_chans: int = 3, skip: Any = "identity", pool_size: int | None = None):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {sorted(BLOCKS)}, not {block!r}")
        cls = BLOCKS[block]
        s = DEFAULT_POOL_SIZE[block] if pool_size is None else int(pool_size)
        self.stem = nn.Sequential(nn.Conv2d(in_chans, stem_width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True))
        c = stem_width
        stages = []
        for n, w, st in zip(layers, widths, strides, strict=True):
            blocks = []
            for i in range(n):
                blocks.append(cls(c, w, st if i == 0 else 1, skip, s))
                c = w * cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(c, num_classes)
        self.num_features = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(x.mean((2, 3)))


def _w(c: int, width: float) -> int:
    return max(1, int(round(c * width)))


def cifar_resnet(depth: int = 18, num_classes: int = 100, in_chans: int = 3,
                 skip: Any = "identity", pool_size: int | None = None,
                 width: float = 1.0) -> nn.Module:
    """The weiaicunzai/PoolSkip CIFAR ResNet of the given depth (18 … 420, see
    :data:`WIDE_DEPTHS`). ``skip="poolskip"`` gives the PoolSkip variant (Sun et al. 2025)."""
    if depth not in WIDE_DEPTHS:
        raise ValueError(f"cifar_resnet depth must be one of {sorted(WIDE_DEPTHS)}, not {depth}")
    block, layers = WIDE_DEPTHS[depth]
    widths = tuple(_w(c, width) for c in (64, 128, 256, 512))
    return CifarResNet(block, layers, widths, (1, 2, 2, 2), _w(64, width), num_classes,
                       in_chans, skip, pool_size)


def cifar_resnet_thin(depth: int = 56, num_classes: int = 10, in_chans: int = 3,
                      block: str = "basic", skip: Any = "identity",
                      pool_size: int | None = None, width: float = 1.0) -> nn.Module:
    """He et al.'s thin CIFAR ResNet: 16/32/64 channels, ``depth = 6n+2`` (basic) or
    ``9n+2`` (bottleneck), with the PoolSkip-capable blocks of :func:`cifar_resnet`."""
    per = {"basic": 6, "bottleneck": 9}
    if block not in per:
        raise ValueError(f"block must be 'basic' or 'bottleneck', not {block!r}")
    n, r = divmod(depth - 2, per[block])
    if r or n < 1:
        raise ValueError(f"depth {depth} is not {per[block]}n+2 for block={block!r}")
    widths = tuple(_w(c, width) for c in (16, 32, 64))
    return CifarResNet(block, (n, n, n), widths, (1, 2, 2), _w(16, width), num_classes,
                       in_chans, skip, pool_size)


def _wide(depth: int, poolskip: bool):
    def factory(num_classes: int = 100, in_chans: int = 3, skip: Any = None,
                pool_size: int | None = None, width: float = 1.0) -> nn.Module:
        s = skip if skip is not None else ("poolskip" if poolskip else "identity")
        return cifar_resnet(depth, num_classes, in_chans, s, pool_size, width)

    suffix = "_poolskip" if poolskip else ""
    factory.__name__ = f"cifar_resnet{depth}{suffix}"
    what = " with PoolSkip after every residual-branch conv" if poolskip else ""
    factory.__doc__ = (
        f"CIFAR ResNet-{depth}{what}"
        f" (Sun et al., AAAI 2025; weiaicunzai/pytorch-cifar100 code base). "
        f"See :func:`cifar_resnet`.")
    return factory


def _thin(depth: int, block: str, poolskip: bool):
    def factory(num_classes: int = 10, in_chans: int = 3, skip: Any = None,
                pool_size: int | None = None, width: float = 1.0) -> nn.Module:
        s = skip if skip is not None else ("poolskip" if poolskip else "identity")
        return cifar_resnet_thin(depth, num_classes, in_chans, block, s, pool_size, width)

    suffix = "_poolskip" if poolskip else ""
    factory.__name__ = f"cifar_resnet{depth}{suffix}"
    factory.__doc__ = (f"Thin CIFAR ResNet-{depth} ({block} blocks, He et al. 2016 Sec. 4.2)"
                       f"{' with PoolSkip' if poolskip else ''}; see :func:`cifar_resnet_thin`.")
    return factory


# wide family (PoolSkip paper)
cifar_resnet18 = _wide(18, False)
cifar_resnet34 = _wide(34, False)
cifar_resnet50 = _wide(50, False)
cifar_resnet101 = _wide(101, False)
cifar_resnet152 = _wide(152, False)
cifar_resnet200 = _wide(200, False)
cifar_resnet350 = _wide(350, False)
cifar_resnet420 = _wide(420, False)
cifar_resnet18_poolskip = _wide(18, True)
cifar_resnet34_poolskip = _wide(34, True)
cifar_resnet50_poolskip = _wide(50, True)
cifar_resnet101_poolskip = _wide(101, True)
cifar_resnet152_poolskip = _wide(152, True)
cifar_resnet200_poolskip = _wide(200, True)
cifar_resnet350_poolskip = _wide(350, True)
cifar_resnet420_poolskip = _wide(420, True)

# thin family (depth scaling at CPU scale)
cifar_resnet20 = _thin(20, "basic", False)
cifar_resnet56 = _thin(56, "basic", False)
cifar_resnet110 = _thin(110, "basic", False)
cifar_resnet164 = _thin(164, "bottleneck", False)
cifar_resnet20_poolskip = _thin(20, "basic", True)
cifar_resnet56_poolskip = _thin(56, "basic", True)
cifar_resnet110_poolskip = _thin(110, "basic", True)
cifar_resnet164_poolskip = _thin(164, "bottleneck", True)
