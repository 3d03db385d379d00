"""Lp (power-average) pooling.

Sermanet, Chintala, LeCun, *Convolutional neural networks applied to house numbers digit
classification*, ICPR 2012, Sec. 2; Bruna, Szlam, LeCun, *Signal recovery from pooling
representations*, ICML 2014 (the "power-average" pooling in SoftPool's comparison,
Stergiou et al. ICCV 2021, Sec. 2)::

    y = ( sum_{i in R} |x_i|^p )^(1/p)

``p = 1`` is sum pooling of magnitudes, ``p -> inf`` tends to max-magnitude pooling.
Padded positions contribute 0 (they add nothing to the sum). Unlike torch's ``lp_pool``,
this takes ``padding`` and ``ceil_mode`` and uses ``|x|`` (so odd ``p`` is defined for
negative inputs); the sum is floored at ``eps`` before the root so the gradient stays finite
on all-zero windows (e.g. after a ReLU). Computed in float32 for half inputs.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from registry.pools._windows import geometry

_AVG = {2: F.avg_pool2d, 3: F.avg_pool3d}


def lp_pool(x: torch.Tensor, p: float = 2.0, kernel_size=2, stride=None, padding=0,
            ceil_mode=False, dim: int = 2, eps: float = 1e-12) -> torch.Tensor:
    """``(sum_R |x|^p)^(1/p)`` per window; shapes as torch's max pooling."""
    k, s, pad, _ = geometry(x.shape, dim, kernel_size, stride, padding, ceil_mode)
    cd = torch.float64 if x.dtype == torch.float64 else torch.float32
    xp = x.to(cd).abs().pow(p)
    if dim == 1:  # avg_pool1d has no divisor_override: run it as a 1×k 2D pool
        xp, k, s, pad = xp.unsqueeze(-2), (1, *k), (1, *s), (0, *pad)
    # divisor_override=1 turns the average into a plain window sum (zeros at padding)
    total = _AVG[max(dim, 2)](xp, k, s, pad, ceil_mode=ceil_mode, count_include_pad=True,
                              divisor_override=1)
    if dim == 1:
        total = total.squeeze(-2)
    return total.clamp_min(eps).pow(1.0 / p).to(x.dtype)


class LpPool(nn.Module):
    """Module form of :func:`lp_pool` (Sermanet et al. 2012; Bruna et al. 2014)."""

    def __init__(self, p: float = 2.0, kernel_size=2, stride=None, padding=0, ceil_mode=False,
                 dim: int = 2):
        super().__init__()
        if p <= 0:
            raise ValueError(f"Lp pooling needs p > 0, got {p}")
        self.p, self.kernel_size, self.stride = float(p), kernel_size, stride
        self.padding, self.ceil_mode, self.dim = padding, ceil_mode, dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lp_pool(x, self.p, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                       self.dim)

    def extra_repr(self) -> str:
        return (f"p={self.p}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}, dim={self.dim}")


def lp(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None,
       p: float = 2.0):
    """Registry factory: ``create_pool("lp", kernel_size=2, p=3)`` (default ``p = 2``)."""
    return LpPool(p, kernel_size, stride, padding, ceil_mode, dim)
