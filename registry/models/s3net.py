"""S3Net: the sparse shortcut topology (Fan, Wang, Guo, Zhu, Yan, Wang, Yu, *On a Sparse
Shortcut Topology of Artificial Neural Networks*, arXiv 1811.09003, IEEE TAI 2022).

The topology (paper Fig. 1, repo ``topology.png``): inside a block every layer takes **only the
previous layer's output** (the first takes the block input), and **every** earlier feature map
is connected to the block's output only — the block output concatenates the block input with
the outputs of all its layers. Compare DenseNet, where layer ``l`` reads the concatenation of
all earlier maps. Both have the same output width ``C_in + L·k``; S3Net's layers are much
narrower (``k`` inputs instead of ``C_in + (l-1)·k``), hence far fewer parameters.

Two forms, as the authors' code builds them (repo FengleiFan/SparseShortcutTopology, read for
facts only, HEAD d225988 / 325e2cb):

* **CIFAR** (``generalizability experiment/cifar100/s3model.py`` + ``train_S3Net.py``):
  stem = 3×3 conv (3 → ``init_channels``, default 24 — the script's default for every ``k``)
  + BN + ReLU; 3 blocks of ``(depth − 4) / 3`` layers (depth 40 → 12, hard-coded in the
  script; depth 70 → 22), each layer BN-ReLU-3×3 conv (k filters, no bias); transitions
  BN-ReLU-1×1 conv (**no compression**: C → C) - 2×2 average pool; head BN-ReLU-global average
  - linear. The script concatenates ``[h_L, x, h_1, …, h_{L−1}]``; we concatenate
  ``[x, h_1, …, h_L]`` — the same set of maps in another channel order, so the function class
  and the parameter count are identical.
* **ImageNet / TinyImageNet** (``ImageNet/S3Net.py``,
  ``TinyImageNet/SparseShortcutTopologyModels.py``):
  torchvision's DenseNet-BC skeleton (7×7/2 stem conv, BN, ReLU, 3×3/2 max pool; bottleneck
  layers BN-ReLU-1×1 conv (4k)-BN-ReLU-3×3 conv (k); transitions halve the channels; final
  BN-ReLU-global average-linear) with the sparse block wiring. ``s3net_new1`` = k 96, blocks
  (5, 5, 5, 5), 64 stem channels = Table V "S3Net k=96 depth 45"; TinyImageNet's
  ``s3net_new`` = k 108, blocks (6, 6, 6), 64 stem channels = Table IV "S3Net B k=108 d=41".

``pool=`` swaps the transitions' 2×2 average pool (any registered pool, e.g. ``"softpool"``);
the ImageNet form's stem max pool is swapped with ``stem_pool=``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import registry


class Layer(nn.Module):
    """One composite layer ``H``: BN-ReLU-3×3 conv (k), optionally preceded by the
    BN-ReLU-1×1 conv (``bn_size``·k) bottleneck (DenseNet-B / the ImageNet S3Net)."""

    def __init__(self, cin: int, growth: int, bottleneck: bool, bn_size: int = 4,
                 drop_rate: float = 0.0):
        super().__init__()
        mods: list[nn.Module] = []
        c = cin
        if bottleneck:
            mods += [nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                     nn.Conv2d(c, bn_size * growth, 1, bias=False)]
            c = bn_size * growth
        mods += [nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                 nn.Conv2d(c, growth, 3, padding=1, bias=False)]
        if drop_rate > 0:
            mods.append(nn.Dropout(drop_rate))
        self.body = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Block(nn.Module):
    """``num_layers`` layers wired ``"sparse"`` (S3Net) or ``"dense"`` (DenseNet).

    sparse: ``h_l = H_l(h_{l−1})``, ``h_0 = x``; output ``[x, h_1, …, h_L]``.
    dense:  ``h_l = H_l([x, h_1, …, h_{l−1}])``; output ``[x, h_1, …, h_L]``.
    """

    def __init__(self, num_layers: int, cin: int, growth: int, topology: str,
                 bottleneck: bool, bn_size: int = 4, drop_rate: float = 0.0):
        super().__init__()
        if topology not in ("sparse", "dense"):
            raise ValueError(f"topology must be 'sparse' or 'dense', not {topology!r}")
        self.topology = topology
        layers = []
        for i in range(num_layers):
            if topology == "dense":
                c = cin + i * growth
            else:
                c = cin if i == 0 else growth
            layers.append(Layer(c, growth, bottleneck, bn_size, drop_rate))
        self.layers = nn.ModuleList(layers)
        self.out_channels = cin + num_layers * growth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        h = x
        for layer in self.layers:
            h = layer(torch.cat(feats, 1) if self.topology == "dense" else h)
            feats.append(h)
        return torch.cat(feats, 1)


class Transition(nn.Sequential):
    """BN-ReLU-1×1 conv (cin → cout) - 2×2 pool (average by default)."""

    def __init__(self, cin: int, cout: int, pool: Any = "avg"):
        super().__init__(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False),
            registry.create_pool(pool, kernel_size=2, stride=2, padding=0, dim=2, channels=cout),
        )


class ShortcutNet(nn.Module):
    """The shared skeleton of S3Net and DenseNet (CIFAR or ImageNet stem).

    Args:
        block_config: layers per block.
        growth_rate: k.
        init_channels: stem output channels.
        topology: ``"sparse"`` (S3Net) or ``"dense"`` (DenseNet).
        bottleneck: 1×1 (4k) bottleneck before each 3×3 conv.
        compression: transition output = ``floor(compression · C)``.
        stem: ``"cifar"`` (3×3 conv), ``"cifar_bn"`` (3×3 conv + BN + ReLU, the S3Net CIFAR
            code) or ``"imagenet"`` (7×7/2 conv + BN + ReLU + 3×3/2 max pool).
    """

    def __init__(self, block_config: tuple[int, ...], growth_rate: int, init_channels: int,
                 topology: str, bottleneck: bool, compression: float, stem: str,
                 num_classes: int = 100, in_chans: int = 3, pool: Any = "avg",
                 stem_pool: Any = "max", drop_rate: float = 0.0, bn_size: int = 4):
        super().__init__()
        c = init_channels
        if stem == "imagenet":
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, c, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                registry.create_pool(stem_pool, kernel_size=3, stride=2, padding=1, dim=2,
                                     channels=c),
            )
        elif stem == "cifar_bn":
            self.stem = nn.Sequential(nn.Conv2d(in_chans, c, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        elif stem == "cifar":
            self.stem = nn.Sequential(nn.Conv2d(in_chans, c, 3, padding=1, bias=False))
        else:
            raise ValueError(f"unknown stem {stem!r}")
        stages: list[nn.Module] = []
        for i, n in enumerate(block_config):
            block = Block(n, c, growth_rate, topology, bottleneck, bn_size, drop_rate)
            stages.append(block)
            c = block.out_channels
            if i != len(block_config) - 1:
                cout = int(c * compression)
                stages.append(Transition(c, cout, pool))
                c = cout
        self.features = nn.Sequential(*stages)
        self.norm = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.head = nn.Linear(c, num_classes)
        self.num_features = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.features(self.stem(x)))
        return self.head(x.mean((2, 3)))


def cifar_layers(depth: int, bottleneck: bool) -> int:
    """Layers per block of a 3-block CIFAR net: ``(depth − 4) / 3`` (halved with bottleneck,
    whose layers hold two convs), DenseNet paper Sec. 4 convention."""
    n, r = divmod(depth - 4, 6 if bottleneck else 3)
    if r or n < 1:
        raise ValueError(f"depth {depth} is not 3·n + 4 (6·n + 4 with bottleneck)")
    return n


def s3net_cifar(num_classes: int = 100, in_chans: int = 3, growth_rate: int = 12,
                depth: int = 40, init_channels: int = 24, pool: Any = "avg",
                drop_rate: float = 0.0) -> nn.Module:
    """S3Net for CIFAR (Fan et al., Table III; authors' ``s3model.py``): 3 sparse blocks of
    ``(depth − 4)/3`` BN-ReLU-3×3 conv layers, no compression, 24 stem channels."""
    n = cifar_layers(depth, False)
    return ShortcutNet((n, n, n), growth_rate, init_channels, "sparse", bottleneck=False,
                       compression=1.0, stem="cifar_bn", num_classes=num_classes,
                       in_chans=in_chans, pool=pool, drop_rate=drop_rate)


def s3net_imagenet(num_classes: int = 1000, in_chans: int = 3, growth_rate: int = 96,
                   block_config: tuple[int, ...] = (5, 5, 5, 5), init_channels: int = 64,
                   pool: Any = "avg", stem_pool: Any = "max",
                   drop_rate: float = 0.0) -> nn.Module:
    """S3Net with the ImageNet DenseNet-BC skeleton (Fan et al., Tables IV-V; authors'
    ``ImageNet/S3Net.py``): bottleneck layers, compression 0.5, 7×7/2 stem + max pool."""
    return ShortcutNet(tuple(block_config), growth_rate, init_channels, "sparse",
                       bottleneck=True, compression=0.5, stem="imagenet",
                       num_classes=num_classes, in_chans=in_chans, pool=pool,
                       stem_pool=stem_pool, drop_rate=drop_rate)


def _cifar_named(k: int, depth: int):
    def factory(num_classes: int = 100, in_chans: int = 3, pool: Any = "avg",
                init_channels: int = 24, drop_rate: float = 0.0) -> nn.Module:
        return s3net_cifar(num_classes, in_chans, k, depth, init_channels, pool, drop_rate)

    factory.__name__ = f"s3net_k{k}_d{depth}"
    factory.__doc__ = (f"S3Net k={k}, depth {depth} on CIFAR (Fan et al., Table III); "
                       f"see :func:`s3net_cifar`.")
    return factory


s3net_k12_d40 = _cifar_named(12, 40)
s3net_k24_d40 = _cifar_named(24, 40)
s3net_k40_d40 = _cifar_named(40, 40)
s3net_k64_d40 = _cifar_named(64, 40)
s3net_k64_d70 = _cifar_named(64, 70)
# mini-tier arms (depth 22 = 6 layers per block), parameter-matched to densenet22_k9 and the
# thin ResNet-20 at width 0.75 (tasks.toml, s3net matched-parameter and saliency claims)
s3net_k16_d22 = _cifar_named(16, 22)
s3net_k9_d22 = _cifar_named(9, 22)


def s3net_k96_d45(num_classes: int = 1000, in_chans: int = 3, pool: Any = "avg",
                  stem_pool: Any = "max") -> nn.Module:
    """ImageNet S3Net k=96, depth 45 (Fan et al., Table V, 9.2M): the authors'
    ``s3net_new1`` = k 96, blocks (5, 5, 5, 5), 64 stem channels.
    Depth = stem conv + 4·5·2 layer convs + 3 transition convs + classifier = 45."""
    return s3net_imagenet(num_classes, in_chans, 96, (5, 5, 5, 5), 64, pool, stem_pool)


def s3net_tiny_k96_d41(num_classes: int = 200, in_chans: int = 3, pool: Any = "avg",
                       stem_pool: Any = "max") -> nn.Module:
    """TinyImageNet "S3Net k=96 d=41" (Fan et al., Table IV, 5.0M). **The authors' code for
    this row is absent**: the repo's TinyImageNet code defines only ``s3net_new`` (k 108,
    blocks (6, 6, 6) = the table's "S3Net B ... d=41"). Built from the paper's description
    as that same skeleton with k = 96. It has 7.7M parameters (8.5M with the authors'
    1000-class head), not 5.0M; bottleneck width 2k instead of 4k would give 5.08M, but
    nothing in the paper or code says so (claim ``s3net/params/tiny_k96_d41``)."""
    return s3net_imagenet(num_classes, in_chans, 96, (6, 6, 6), 64, pool, stem_pool)


def s3net_tiny_k108_d41(num_classes: int = 200, in_chans: int = 3, pool: Any = "avg",
                        stem_pool: Any = "max") -> nn.Module:
    """TinyImageNet "S3Net B" k=108 (Fan et al., Table IV, d=41, 10.6M): the authors'
    ``s3net_new`` = k 108, blocks (6, 6, 6), 64 stem channels. The authors' script builds it
    with torchvision's default 1000-class head (``s3net_new()`` with no ``num_classes``);
    pass ``num_classes=1000`` to get that exact network."""
    return s3net_imagenet(num_classes, in_chans, 108, (6, 6, 6), 64, pool, stem_pool)
