"""Local Importance-based Pooling (LIP) — Gao, Wang, Wu, *LIP: Local Importance-based
Pooling*, ICCV 2019, Sec. 3 (the LIP operator)::

    O_{x', y'} = sum_{(dx, dy) in R} F(I)_{x+dx, y+dy} I_{x+dx, y+dy}
                 / sum_{(dx, dy) in R} F(I)_{x+dx, y+dy},          F(I) = exp(G(I))

with ``G`` a learned logit module. This is the paper's light form of ``G`` (the one it uses
in front of every downsampling of its ResNet variants, Sec. 3.3): a 3×3 conv C→C (no bias),
affine instance normalisation and a bounded soft gate ``G = 12 * sigmoid(.)``, so the
importance ``F = exp(G)`` lies in ``[1, e^12]`` and needs no max subtraction. Padded taps
get importance 0 (excluded). Weights are computed in float32 for half inputs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from registry.pools._windows import geometry

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {1: nn.InstanceNorm1d, 2: nn.InstanceNorm2d, 3: nn.InstanceNorm3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}

#: Upper bound of the logit, ``G = GATE * sigmoid(.)`` (LIP's "soft gate").
GATE = 12.0


class LIP(nn.Module):
    """LIP pooling with the 3×3-conv / instance-norm / soft-gate logit module."""

    def __init__(self, channels: int, kernel_size=2, stride=None, padding=0, ceil_mode=False,
                 dim: int = 2):
        super().__init__()
        if channels is None:
            raise ValueError("lip needs channels=C")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.dim = ceil_mode, dim
        self.logit = nn.Sequential(
            _CONV[dim](channels, channels, 3, padding=1, bias=False),
            _NORM[dim](channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p, _ = geometry(x.shape, self.dim, self.kernel_size, self.stride, self.padding,
                              self.ceil_mode)
        cd = torch.float64 if x.dtype == torch.float64 else torch.float32
        weight = torch.exp(GATE * torch.sigmoid(self.logit(x).to(cd)))
        xc = x.to(cd)
        # the same divisor cancels in the ratio; zero padding gives importance 0
        num = _AVG[self.dim](xc * weight, k, s, p, ceil_mode=self.ceil_mode)
        den = _AVG[self.dim](weight, k, s, p, ceil_mode=self.ceil_mode)
        return (num / den).to(x.dtype)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}, dim={self.dim}")


def lip(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None):
    """Registry factory: ``create_pool("lip", kernel_size=2, channels=C)``."""
    return LIP(channels, kernel_size, stride, padding, ceil_mode, dim)
