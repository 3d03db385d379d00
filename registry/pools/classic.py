"""Max and average pooling (torch's own kernels) and the identity shortcut op."""

from __future__ import annotations

from torch import nn

_MAX = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
_AVG = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}


def max_pool(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None):
    """Max pooling: ``y = max_{i in R} x_i`` per channel and window ``R``."""
    return _MAX[dim](kernel_size, stride, padding, ceil_mode=ceil_mode)


def avg_pool(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None):
    """Average pooling: ``y = |R|^-1 sum_{i in R} x_i`` (padding counted, as torch does)."""
    return _AVG[dim](kernel_size, stride, padding, ceil_mode=ceil_mode)


def identity(channels=None, pool_size=2, **_):
    """The no-op shortcut op: models with ``skip="identity"`` are their plain baseline."""
    return nn.Identity()
