"""PoolSkip, its ablation arms and the plain residual shortcut op (shape-preserving
``kind="skip"`` ops).

PoolSkip — Sun, Pan, Jin, Terry, Bian, Xu, *Beyond Skip Connection: Pooling and Unpooling
Design for Elimination Singularities*, AAAI 2025 (arXiv 2409.13154), Sec. "Pool Skip" and the
authors' ``pool_skip.py``::

    PoolSkip(x) = x + Conv3x3( MaxUnpool_s( MaxPool_s(x) ) )

``MaxPool_s`` has kernel = stride = ``s`` and returns the arg-max indices; ``MaxUnpool_s``
scatters each window maximum back to where it came from (zeros elsewhere), so the unpooled map
has the input's size; the 3×3 conv (stride 1, padding 1, bias, C→C) then mixes it, and the
identity path is added. The paper places the op after a conv and before BN/activation; that
placement is the model's job, this module only computes the formula.

Table 4 of the paper ablates the three parts — *Pool* (MaxPool + MaxUnpool), *Conv* (the
3×3 conv) and *Skip* (the identity path) — on VGG16; each arm is an op here, so a model takes
it through ``skip=`` like PoolSkip itself:

=====================  ==========================================  =====================
Table 4 column          op                                          registry name
=====================  ==========================================  =====================
VGG16 (base)            ``x``                                       ``identity``
+{Pool, Skip}           ``x + MaxUnpool(MaxPool(x))``               ``pool_skip_noconv``
+{Conv, Skip}           ``x + Conv3x3(x)``                          ``residual``
+{Pool, Conv}           ``Conv3x3(MaxUnpool(MaxPool(x)))``          ``pool_conv_noskip``
+{Ours}                 ``x + Conv3x3(MaxUnpool(MaxPool(x)))``      ``poolskip``
=====================  ==========================================  =====================

Odd spatial sizes: the authors' code assumes sizes divisible by ``s``. Here the max pool runs
with ``ceil_mode=True`` so the partial windows at the right/bottom border also keep their
maximum, and the unpool is given the input size explicitly — the output always has the input's
shape, and every input position belongs to exactly one window.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_UNPOOL = {1: F.max_unpool1d, 2: F.max_unpool2d, 3: F.max_unpool3d}


def max_unpooled(x: torch.Tensor, s: int, dim: int = 2) -> torch.Tensor:
    """``MaxUnpool_s(MaxPool_s(x))``: each window's maximum where it was, zeros elsewhere
    (ceil mode: partial border windows keep their maximum too); same shape as ``x``."""
    pooled, idx = _POOL[dim](x, s, s, ceil_mode=True, return_indices=True)
    return _UNPOOL[dim](pooled, idx, s, s, output_size=x.shape[-dim:])


class PoolSkip(nn.Module):
    """``y = x + Conv3x3(MaxUnpool_s(MaxPool_s(x)))`` (Sun et al., AAAI 2025).

    Args:
        channels: C, input = output channels of the 3×3 conv.
        pool_size: ``s``, kernel and stride of the max pool (the paper uses 2 and 4).
        dim: spatial dimensionality (2 in the paper; 1 and 3 use the same construction).
    """

    is_skip_op = True  # analyses (tasks/singularity.py) tell its conv from the network's

    def __init__(self, channels: int, pool_size: int = 2, dim: int = 2):
        super().__init__()
        if dim not in _CONV:
            raise ValueError(f"PoolSkip supports dim 1, 2 or 3, not {dim}")
        if int(pool_size) < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        self.channels, self.pool_size, self.dim = int(channels), int(pool_size), dim
        self.conv = _CONV[dim](self.channels, self.channels, 3, stride=1, padding=1, bias=True)

    def unpooled(self, x: torch.Tensor) -> torch.Tensor:
        """``MaxUnpool_s(MaxPool_s(x))``: window maxima in place, zeros elsewhere."""
        return max_unpooled(x, self.pool_size, self.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(self.unpooled(x))

    def extra_repr(self) -> str:
        return f"channels={self.channels}, pool_size={self.pool_size}, dim={self.dim}"


class ResidualConv(nn.Module):
    """The standard residual form ``y = x + Conv3x3(x)`` (He et al., CVPR 2016, Eq. 1 with
    F = one 3×3 conv, C→C, bias).

    It is PoolSkip without the max-pool/unpool pair, i.e. the ablation that tells the effect
    of the pooling from that of an extra residual conv; ``pool_size`` is accepted and ignored.
    """

    is_skip_op = True

    def __init__(self, channels: int, pool_size: int = 2, dim: int = 2):
        super().__init__()
        self.channels, self.dim = int(channels), dim
        self.conv = _CONV[dim](self.channels, self.channels, 3, stride=1, padding=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class PoolNoConv(nn.Module):
    """Table 4's +{Pool, Skip} arm: ``y = x + MaxUnpool_s(MaxPool_s(x))`` (PoolSkip without
    its 3×3 conv; no parameters)."""

    is_skip_op = True

    def __init__(self, channels: int | None = None, pool_size: int = 2, dim: int = 2):
        super().__init__()
        if dim not in _POOL:
            raise ValueError(f"pool_skip_noconv supports dim 1, 2 or 3, not {dim}")
        self.pool_size, self.dim = int(pool_size), dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + max_unpooled(x, self.pool_size, self.dim)

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}, dim={self.dim}"


class PoolConvNoSkip(PoolSkip):
    """Table 4's +{Pool, Conv} arm: ``y = Conv3x3(MaxUnpool_s(MaxPool_s(x)))`` (PoolSkip
    without its identity path: only the window maxima reach the next layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.unpooled(x))


def pool_skip(channels: int, pool_size: int = 2, dim: int = 2, **_) -> PoolSkip:
    """Registry factory for :class:`PoolSkip` (``create_pool("poolskip", channels=C)``)."""
    if channels is None:
        raise ValueError("poolskip needs channels=C")
    return PoolSkip(channels, pool_size, dim)


def residual(channels: int, pool_size: int = 2, dim: int = 2, **_) -> ResidualConv:
    """Registry factory for :class:`ResidualConv` (``create_pool("residual", channels=C)``)."""
    if channels is None:
        raise ValueError("residual needs channels=C")
    return ResidualConv(channels, pool_size, dim)


def pool_skip_noconv(channels: int | None = None, pool_size: int = 2, dim: int = 2,
                     **_) -> PoolNoConv:
    """Registry factory for :class:`PoolNoConv` (Table 4, +{Pool, Skip})."""
    return PoolNoConv(channels, pool_size, dim)


def pool_conv_noskip(channels: int, pool_size: int = 2, dim: int = 2, **_) -> PoolConvNoSkip:
    """Registry factory for :class:`PoolConvNoSkip` (Table 4, +{Pool, Conv})."""
    if channels is None:
        raise ValueError("pool_conv_noskip needs channels=C")
    return PoolConvNoSkip(channels, pool_size, dim)
