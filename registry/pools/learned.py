"""Learned downsampling that replaces a pooling layer.

* Strided convolution — Springenberg, Dosovitskiy, Brox, Riedmiller, *Striving for
  Simplicity: The All Convolutional Net*, ICLR 2015 workshop, Sec. 2 (pooling as a strided
  convolution): the p-norm pooling ``s_{i,j,u} = (sum_{h,w} |f_{g(h,w,i,j,u)}|^p)^(1/p)``
  is replaced by a convolution with the same window and stride,
  ``c_{i,j,o} = sum_{h,w,u} theta_{h,w,u,o} * f_{g(h,w,i,j,u)}`` (All-CNN-C: a 3×3
  stride-2 conv, C→C, in place of each 3×3 stride-2 max pool). Here the conv takes the
  pool's ``kernel_size``/``stride``/``padding`` (zero padding) and gives the pool's output
  shape, ``ceil_mode`` included; it has a bias and no activation — the model adds the ReLU
  that every All-CNN conv layer has.
* Pixel-unshuffle + 1×1 conv — space-to-depth (Shi et al., *Real-Time Single Image and Video
  Super-Resolution Using an Efficient Sub-Pixel CNN*, CVPR 2016, Sec. 2.2, the inverse of the
  periodic shuffle ``PS``): each ``stride^d`` block becomes ``C * stride^d`` channels, then a
  1×1 conv maps them back to ``C``. The block is the stride (non-overlapping windows);
  ``kernel_size``, ``padding`` and ``ceil_mode`` only set the output size (zero padding on
  the left and, for ``ceil_mode``, the right), which follows torch's pooling arithmetic.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from registry.pools._windows import as_tuple, geometry, pad_to_output

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


class StridedConvPool(nn.Module):
    """A learned ``kernel_size`` conv with the pool's stride, C→C (All-CNN, ICLR 2015)."""

    def __init__(self, channels: int, kernel_size=2, stride=None, padding=0, ceil_mode=False,
                 dim: int = 2, bias: bool = True):
        super().__init__()
        if channels is None:
            raise ValueError("strided_conv needs channels=C")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.dim = ceil_mode, dim
        k = as_tuple(kernel_size, dim, "kernel_size")
        s = k if stride is None else as_tuple(stride, dim, "stride")
        self.conv = _CONV[dim](channels, channels, k, stride=s, padding=0, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s, p, out = geometry(x.shape, self.dim, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode)
        return self.conv(pad_to_output(x, self.dim, k, s, p, out))


class PixelUnshufflePool(nn.Module):
    """Space-to-depth by the stride, then a 1×1 conv ``C * stride^d -> C``."""

    def __init__(self, channels: int, kernel_size=2, stride=None, padding=0, ceil_mode=False,
                 dim: int = 2, bias: bool = True):
        super().__init__()
        if channels is None:
            raise ValueError("pixel_unshuffle needs channels=C")
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.dim = ceil_mode, dim
        k = as_tuple(kernel_size, dim, "kernel_size")
        self.block = k if stride is None else as_tuple(stride, dim, "stride")
        self.proj = _CONV[dim](channels * math.prod(self.block), channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d, r = self.dim, self.block
        _, _, p, out = geometry(x.shape, d, self.kernel_size, self.stride, self.padding,
                                self.ceil_mode)
        x = pad_to_output(x, d, r, r, p, out)  # exactly out * r along each dim
        lead = x.shape[:-d - 1]
        c = x.shape[-d - 1]
        split = [c]
        for o, ri in zip(out, r, strict=True):
            split += [o, ri]
        x = x.reshape(-1, *split)
        # (B, C, O1, r1, O2, r2, ...) -> (B, C, r1, r2, ..., O1, O2, ...)
        perm = [0, 1] + [3 + 2 * i for i in range(d)] + [2 + 2 * i for i in range(d)]
        x = x.permute(perm).reshape(-1, c * math.prod(r), *out)
        return self.proj(x).reshape(*lead, -1, *out)


def strided_conv(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None,
                 bias=True):
    """Registry factory: ``create_pool("strided_conv", kernel_size=3, stride=2, padding=1,
    channels=C)``; ``stride=None`` means ``stride = kernel_size``, as for the pools."""
    return StridedConvPool(channels, kernel_size, stride, padding, ceil_mode, dim, bias)


def pixel_unshuffle(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2,
                    channels=None, bias=True):
    """Registry factory: ``create_pool("pixel_unshuffle", kernel_size=2, channels=C)``."""
    return PixelUnshufflePool(channels, kernel_size, stride, padding, ceil_mode, dim, bias)
