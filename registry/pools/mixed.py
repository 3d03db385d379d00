"""Mixed and gated max-average pooling — Lee, Gallagher, Tu, *Generalizing Pooling Functions in
Convolutional Neural Networks: Mixed, Gated, and Tree*, AISTATS 2016, Sec. 2 (mixed and
gated max-average pooling).

Mixed, one learned scalar ``a`` per layer::

    f_mix(x)  = a * max_R(x) + (1 - a) * avg_R(x)

Gated, one learned gating mask ``w`` (the kernel's shape) per layer, shared by all
channels, so the mix depends on the region's content::

    f_gate(x) = s(w . x_R) * max_R(x) + (1 - s(w . x_R)) * avg_R(x),   s = sigmoid

Parameterisation: the paper learns ``a`` in [0, 1] and clips it after each update; here
``a = sigmoid(theta)`` (``theta = 0`` gives ``a = 0.5``), the smooth form of that
constraint. The gating mask starts at 0 (gate 0.5). ``max``/``avg`` are torch's (``avg``
counts zero padding, like the ``avg`` pool), and ``w . x_R`` sees zero padding.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from registry.pools._windows import as_tuple, geometry, pad_to_output

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class _MaxAvg(nn.Module):
    def __init__(self, kernel_size=2, stride=None, padding=0, ceil_mode=False, dim: int = 2):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.dim = ceil_mode, dim

    def _max_avg(self, x: torch.Tensor):
        k, s, p, out = geometry(x.shape, self.dim, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode)
        mx = _MAX[self.dim](x, k, s, p, ceil_mode=self.ceil_mode)
        av = _AVG[self.dim](x, k, s, p, ceil_mode=self.ceil_mode)
        return mx, av, (k, s, p, out)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}, dim={self.dim}")


class MixedPool(_MaxAvg):
    """``a * max + (1 - a) * avg`` with one learned ``a = sigmoid(theta)`` per layer
    (Lee et al., AISTATS 2016, mixed max-average pooling)."""

    def __init__(self, kernel_size=2, stride=None, padding=0, ceil_mode=False, dim: int = 2):
        super().__init__(kernel_size, stride, padding, ceil_mode, dim)
        self.theta = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mx, av, _ = self._max_avg(x)
        a = torch.sigmoid(self.theta).to(x.dtype)
        return a * mx + (1 - a) * av


class GatedPool(_MaxAvg):
    """``s(w . x_R) * max + (1 - s(w . x_R)) * avg`` with one learned mask ``w`` per layer,
    shared across channels (Lee et al., AISTATS 2016, gated max-average pooling)."""

    def __init__(self, kernel_size=2, stride=None, padding=0, ceil_mode=False, dim: int = 2):
        super().__init__(kernel_size, stride, padding, ceil_mode, dim)
        k = as_tuple(kernel_size, dim, "kernel_size")
        self.mask = nn.Parameter(torch.zeros(1, 1, *k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mx, av, (k, s, p, out) = self._max_avg(x)
        d = self.dim
        planes = pad_to_output(x.reshape(-1, 1, *x.shape[-d:]), d, k, s, p, out)
        logit = _CONV[d](planes, self.mask.to(x.dtype), stride=s)
        gate = torch.sigmoid(logit).reshape(mx.shape)
        return gate * mx + (1 - gate) * av


def mixed(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None):
    """Registry factory: ``create_pool("mixed", kernel_size=2)``."""
    return MixedPool(kernel_size, stride, padding, ceil_mode, dim)


def gated(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None):
    """Registry factory: ``create_pool("gated", kernel_size=2)``."""
    return GatedPool(kernel_size, stride, padding, ceil_mode, dim)
