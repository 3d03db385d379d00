"""C3D — Tran, Bourdev, Fergus, Torresani, Paluri, *Learning Spatiotemporal Features with 3D
Convolutional Networks*, ICCV 2015, Sec. 3.3 (Fig. 3): eight 3×3×3 convolutions (stride 1,
padding 1) in five groups, each group followed by a max pool — pool1 1×2×2 (keeps early
temporal detail), pool2–pool5 2×2×2 — then fc6/fc7 and the classifier.

Here the five pools are swappable (``pool=``, any registered downsampling pool, created with
``dim=3`` and the same kernel/stride), so a SoftPool video claim swaps every pooling layer of
the net in the same positions, as the SoftPool paper does for its video CNNs (Stergiou et al.,
ICCV 2021, Sec. 5, 3D SoftPool). Differences from the paper's C3D, for the mini tier:

* ``width`` scales the channel counts 64/128/256/256/512/512/512/512;
* BatchNorm after every conv (C3D predates it; it makes the thin net train in a few epochs);
* fc6/fc7 (4096 units, sized for 16×112×112 clips) are replaced by a global average over the
  last feature map and one linear classifier, so any clip size works;
* pool5 pools space only (1×2×2 instead of 2×2×2), so clips of 8 frames and more work (the
  global average takes whatever time remains: 1 step for 8 frames, 2 for 16).

``c3d_small`` is ``c3d(width=0.125)`` registered at 8×64×64 clips (about 0.2 GFLOPs forward
per clip; the mini form runs it at ``width=0.0625``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import registry

#: (convs per group, channels at width 1) of C3D's five groups (Fig. 3).
GROUPS: tuple[tuple[int, int], ...] = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))


class C3D(nn.Module):
    """C3D with swappable pools, BatchNorm and a global-average head (see module docstring)."""

    def __init__(self, num_classes: int = 101, in_chans: int = 3, width: float = 1.0,
                 pool: Any = "max"):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_chans
        for g, (n_conv, ch) in enumerate(GROUPS):
            cout = max(1, int(round(ch * width)))
            for _ in range(n_conv):
                layers += [nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout),
                           nn.ReLU(inplace=True)]
                cin = cout
            k = (1, 2, 2) if g in (0, len(GROUPS) - 1) else (2, 2, 2)
            layers.append(registry.create_pool(pool, kernel_size=k, stride=k, dim=3,
                                               channels=cout))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean((2, 3, 4)))


def c3d(num_classes: int = 101, in_chans: int = 3, width: float = 1.0,
        pool: Any = "max") -> nn.Module:
    """C3D (Tran et al., ICCV 2015) with swappable pools."""
    return C3D(num_classes, in_chans, width, pool)


def c3d_small(num_classes: int = 10, in_chans: int = 3, width: float = 0.125,
              pool: Any = "max") -> nn.Module:
    """C3D at 1/8 width by default (the SoftPool video mini form sets ``width``)."""
    return C3D(num_classes, in_chans, width, pool)
