"""DenseNet for CIFAR (Huang, Liu, van der Maaten, Weinberger, *Densely Connected Convolutional
Networks*, CVPR 2017, Sec. 3-4 and Table 2): the baselines of S3Net's Table III.

S3Net's Table III compares against the DenseNet rows *as published by Huang et al.*:
k=12 depth 40 (1.0M), k=12 depth 100 (7.0M), k=24 depth 100 (27.2M). Those are the **plain**
DenseNet (no bottleneck, no compression), not DenseNet-BC (DenseNet-BC k=12 depth 100 is
0.8M in Huang et al. Table 2), so the registered baselines are plain; ``densenet_bc100_k12``
is registered as well for completeness.

Architecture (Huang et al. Sec. 4, CIFAR): 3×3 conv stem with 16 channels (2k with BC), three
dense blocks of ``(depth − 4)/3`` BN-ReLU-3×3 conv layers (``(depth − 4)/6`` bottleneck layers
BN-ReLU-1×1 (4k)-BN-ReLU-3×3 with BC), transitions BN-ReLU-1×1 conv-2×2 average pool
(compression θ = 0.5 with BC), head BN-ReLU-global average-linear. The layer and block code
is shared with S3Net (:mod:`registry.models.s3net`, ``topology="dense"``), so the two differ
only in their wiring. ``pool=`` swaps the transitions' average pool.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from registry.models.s3net import ShortcutNet, cifar_layers


def cifar_densenet(num_classes: int = 100, in_chans: int = 3, growth_rate: int = 12,
                   depth: int = 40, bc: bool = False, pool: Any = "avg",
                   drop_rate: float = 0.0, init_channels: int | None = None) -> nn.Module:
    """DenseNet (``bc=False``) or DenseNet-BC (``bc=True``) for 32×32 inputs
    (Huang et al. 2017, Table 2)."""
    n = cifar_layers(depth, bc)
    c0 = init_channels if init_channels is not None else (2 * growth_rate if bc else 16)
    return ShortcutNet((n, n, n), growth_rate, c0, "dense", bottleneck=bc,
                       compression=0.5 if bc else 1.0, stem="cifar", num_classes=num_classes,
                       in_chans=in_chans, pool=pool, drop_rate=drop_rate)


def _named(k: int, depth: int, bc: bool):
    def factory(num_classes: int = 100, in_chans: int = 3, pool: Any = "avg",
                drop_rate: float = 0.0) -> nn.Module:
        return cifar_densenet(num_classes, in_chans, k, depth, bc, pool, drop_rate)

    kind = "DenseNet-BC" if bc else "DenseNet"
    factory.__name__ = f"densenet{'_bc' if bc else ''}{depth}_k{k}"
    factory.__doc__ = (f"{kind} (k={k}, depth {depth}) for CIFAR, Huang et al. 2017 Table 2; "
                       f"the S3Net Table III baseline. See :func:`cifar_densenet`.")
    return factory


densenet40_k12 = _named(12, 40, False)
densenet100_k12 = _named(12, 100, False)
densenet100_k24 = _named(24, 100, False)
densenet_bc100_k12 = _named(12, 100, True)
densenet22_k9 = _named(9, 22, False)  # S3Net mini-tier baseline (matched to s3net_k16_d22)
