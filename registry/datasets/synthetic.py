"""Seeded synthetic classification data for the smoke tier.

Each class has a random smooth template; an item is its class template, randomly shifted,
plus noise. Learnable in a few steps by any CNN, so a smoke run's loss visibly falls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from registry.datasets.base import DataBundle, Split


def _make(n: int, templates: torch.Tensor, g: torch.Generator, noise: float) -> Split:
    num_classes = templates.shape[0]
    y = torch.arange(n) % num_classes
    y = y[torch.randperm(n, generator=g)]
    x = templates[y]
    shift = torch.randint(-2, 3, (2,), generator=g).tolist()
    x = torch.roll(x, shifts=shift, dims=(-2, -1))
    x = x + noise * torch.randn(x.shape, generator=g)
    x = (x.clamp(-2.5, 2.5) + 2.5) / 5.0 * 255.0
    return Split(x.round().to(torch.uint8), y.to(torch.int64))


def synthetic(
    root: str | None = None,
    num_classes: int = 10,
    channels: int = 3,
    size: int = 32,
    frames: int = 0,
    train_size: int = 512,
    test_size: int = 256,
    noise: float = 0.6,
    seed: int = 0,
    train_subset: int | None = None,
    test_subset: int | None = None,
) -> DataBundle:
    """``frames > 0`` makes video items ``[C, T, H, W]``. ``seed`` fixes the data itself
    (not the run), so every run of a claim sees the same synthetic set."""
    g = torch.Generator().manual_seed(10_000 + seed)
    shape = (num_classes, channels) + ((frames,) if frames else ()) + (size // 4, size // 4)
    coarse = torch.randn(shape, generator=g)
    mode = "trilinear" if frames else "bilinear"
    full = (frames, size, size) if frames else (size, size)
    templates = F.interpolate(coarse, size=full, mode=mode, align_corners=False) * 1.5
    train = _make(train_subset or train_size, templates, g, noise)
    test = _make(test_subset or test_size, templates, g, noise)
    return DataBundle(
        name="synthetic", num_classes=num_classes, in_chans=channels,
        input_size=full, mean=(0.5,) * channels, std=(0.25,) * channels,
        train=train, test=test,
        provenance={"generator": "class templates + shift + noise", "data_seed": seed},
    )
