"""Micro models (< 50k parameters) for smoke runs and tests.

They exercise the same plumbing as the paper models (a swappable ``pool=`` and ``skip=``)
at a size that trains in seconds on a CPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import registry


class TestCNN(nn.Module):
    """conv-BN-ReLU ×3 with a pool after the first two and a global-average head."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 16,
                 pool: Any = "max", dim: int = 2):
        super().__init__()
        conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]
        bn = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [conv(cin, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU(inplace=True)]

        w = width
        self.features = nn.Sequential(
            *block(in_chans, w),
            registry.create_pool(pool, kernel_size=2, stride=2, dim=dim, channels=w),
            *block(w, 2 * w),
            registry.create_pool(pool, kernel_size=2, stride=2, dim=dim, channels=2 * w),
            *block(2 * w, 2 * w),
        )
        self.head = nn.Linear(2 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(x.flatten(2).mean(-1))


class _MicroBlock(nn.Module):
    def __init__(self, c: int, skip: Any):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.skip1 = registry.create_pool(skip, channels=c, pool_size=2)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.skip2 = registry.create_pool(skip, channels=c, pool_size=2)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.skip1(self.conv1(x))))
        out = self.bn2(self.skip2(self.conv2(out)))
        return torch.relu(out + x)


class TestResNet(nn.Module):
    """Stem + two residual blocks whose convs are followed by a swappable shortcut op."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 16,
                 skip: Any = "identity"):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, width, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.blocks = nn.Sequential(_MicroBlock(width, skip), _MicroBlock(width, skip))
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean((2, 3)))


class TestVideo(nn.Module):
    """3D micro CNN for ``[N, C, T, H, W]`` clips: conv-BN-ReLU, a spatial (1,2,2) pool,
    conv-BN-ReLU, a spatio-temporal (2,2,2) pool, conv-BN-ReLU, global average, linear.
    Both pools are swappable (``pool=``, created with ``dim=3``)."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 8,
                 pool: Any = "max"):
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout),
                    nn.ReLU(inplace=True)]

        w = width
        self.features = nn.Sequential(
            *block(in_chans, w),
            registry.create_pool(pool, kernel_size=(1, 2, 2), stride=(1, 2, 2), dim=3,
                                 channels=w),
            *block(w, 2 * w),
            registry.create_pool(pool, kernel_size=2, stride=2, dim=3, channels=2 * w),
            *block(2 * w, 4 * w),
        )
        self.head = nn.Linear(4 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.head(x.flatten(2).mean(-1))


def test_cnn(num_classes: int = 10, in_chans: int = 3, width: int = 16, pool: Any = "max",
             dim: int = 2) -> nn.Module:
    return TestCNN(num_classes, in_chans, width, pool, dim)


def test_resnet(num_classes: int = 10, in_chans: int = 3, width: int = 16,
                skip: Any = "identity") -> nn.Module:
    return TestResNet(num_classes, in_chans, width, skip)


def test_video(num_classes: int = 10, in_chans: int = 3, width: int = 8,
               pool: Any = "max") -> nn.Module:
    return TestVideo(num_classes, in_chans, width, pool)


# keep pytest from collecting the factories above as tests
test_cnn.__test__ = False  # type: ignore[attr-defined]
test_resnet.__test__ = False  # type: ignore[attr-defined]
TestCNN.__test__ = False  # type: ignore[attr-defined]
TestResNet.__test__ = False  # type: ignore[attr-defined]
test_video.__test__ = False  # type: ignore[attr-defined]
TestVideo.__test__ = False  # type: ignore[attr-defined]
