"""Mini-tier sets derived from Fashion-MNIST, for the ImageNet and video model families.

Both are built from :func:`registry.datasets.fashion_mnist.fashion_mnist` (same files, same
checks, same class-balanced seeded subsets) and are deterministic: the same arguments give
the same tensors, bit for bit.

* ``fashion_mnist_64`` — each 28×28 item bilinearly resized to 56×56 (antialiased) and
  zero-padded to 64×64 (the proportions of ``fashion_mnist_32``, 28 in 32), repeated over 3
  channels: uint8 ``[N, 3, 64, 64]``. Other sizes: ``size=S`` resizes to ``round(S·28/32)``
  and pads to ``S``. For the ImageNet-family models (7×7/2 stem + pool → 16×16 after the
  stem at 64×64).
* ``fashion_mnist_16`` — each 28×28 item bilinearly *down*-sized to 16×16 (antialiased),
  ``channels`` channels (default 1): uint8 ``[N, C, 16, 16]``. A third of the pixels of
  28×28, so thin CIFAR ResNets cost a third as much per image: the PoolSkip depth curve's
  mini form (many depths × arms × seeds on 2 CPU cores). mean/std measured over the 60k
  resized training images.
* ``moving_fashion`` — short clips of one Fashion-MNIST item drifting across a blank canvas,
  Moving-MNIST style: uint8 ``[N, 3, T, S, S]`` (default ``T = 8``, ``S = 64``). Each clip's
  start position (uniform over the canvas) and velocity (uniform direction, speed 2–5 px per
  frame) are drawn from a generator seeded by ``seed`` and the split; the item bounces off
  the borders. Label = the item's class. For the video models.

The 3 channels are a broadcast view of one (``Tensor.expand``), so a full set costs the memory
of one channel; ``x[idx]`` gives ordinary tensors. mean/std are Fashion-MNIST's, rescaled
analytically for the fraction of the canvas an item covers (approximate).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from registry.datasets.base import DataBundle, DatasetError, Split
from registry.datasets.fashion_mnist import MEAN, STD, fashion_mnist


def _stats(frac: float) -> tuple[float, float]:
    """mean/std of a canvas whose ``frac`` is a Fashion-MNIST image and the rest zeros."""
    m2 = STD**2 + MEAN**2
    mean = MEAN * frac
    return round(mean, 4), round(math.sqrt(max(m2 * frac - mean**2, 1e-8)), 4)


def upscale(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``[N, 1, 28, 28]`` → uint8 ``[N, 1, size, size]``: resize to round(size·28/32),
    zero-pad (centred) to ``size``."""
    inner = round(size * 28 / 32)
    if inner < 28 or inner > size:
        raise DatasetError(f"size must be ≥ 32, got {size}")
    y = F.interpolate(x.float(), size=(inner, inner), mode="bilinear", align_corners=False,
                      antialias=True)
    y = y.round_().clamp_(0, 255).to(torch.uint8)
    lo = (size - inner) // 2
    return F.pad(y, (lo, size - inner - lo, lo, size - inner - lo))


def fashion_mnist_64(root: str | None = None, train_subset: int | None = None,
                     test_subset: int | None = None, seed: int = 0, verify: bool = True,
                     size: int = 64, channels: int = 3) -> DataBundle:
    """Fashion-MNIST at ``size``×``size`` (default 64) over ``channels`` channels."""
    base = fashion_mnist(root, train_subset, test_subset, seed, verify)

    def shape(s: Split) -> Split:
        return Split(upscale(s.x, size).expand(-1, channels, -1, -1), s.y)

    inner = round(size * 28 / 32)
    mean, std = _stats((inner / size) ** 2)
    return DataBundle(
        name=f"fashion_mnist_{size}", num_classes=10, in_chans=channels, input_size=(size, size),
        mean=(mean,) * channels, std=(std,) * channels,
        train=shape(base.train), test=shape(base.test),
        provenance={**base.provenance, "derived": f"bilinear resize 28→{inner}, zero-pad to "
                    f"{size}, {channels} channels", "base": "fashion_mnist"},
    )


MEAN_16, STD_16 = 0.2868, 0.3218  # of the 60k training images after the 28→16 resize


def fashion_mnist_16(root: str | None = None, train_subset: int | None = None,
                     test_subset: int | None = None, seed: int = 0, verify: bool = True,
                     channels: int = 1) -> DataBundle:
    """Fashion-MNIST downsized to 16×16 (antialiased bilinear) over ``channels`` channels."""
    base = fashion_mnist(root, train_subset, test_subset, seed, verify)

    def shape(s: Split) -> Split:
        y = F.interpolate(s.x.float(), size=(16, 16), mode="bilinear", align_corners=False,
                          antialias=True)
        y = y.round_().clamp_(0, 255).to(torch.uint8)
        return Split(y.expand(-1, channels, -1, -1), s.y)

    return DataBundle(
        name="fashion_mnist_16", num_classes=10, in_chans=channels, input_size=(16, 16),
        mean=(MEAN_16,) * channels, std=(STD_16,) * channels,
        train=shape(base.train), test=shape(base.test),
        provenance={**base.provenance, "derived": f"bilinear antialiased resize 28→16, "
                    f"{channels} channel(s)", "base": "fashion_mnist"},
    )


def render_moving(items: torch.Tensor, frames: int, size: int, g: torch.Generator,
                  min_speed: float = 2.0, max_speed: float = 5.0) -> torch.Tensor:
    """uint8 ``[N, 1, 28, 28]`` items → uint8 ``[N, 1, T, size, size]`` clips, each item moving
    in a straight line and bouncing off the canvas borders."""
    n, k = items.shape[0], items.shape[-1]
    span = size - k
    if span < 0:
        raise DatasetError(f"canvas size {size} is smaller than an item ({k})")
    start = torch.rand(n, 2, generator=g) * span
    angle = torch.rand(n, generator=g) * 2 * math.pi
    speed = min_speed + torch.rand(n, generator=g) * (max_speed - min_speed)
    vel = torch.stack([torch.sin(angle), torch.cos(angle)], 1) * speed[:, None]
    t = torch.arange(frames, dtype=torch.float32)
    raw = start[:, None, :] + t[None, :, None] * vel[:, None, :]  # [N, T, 2] unfolded path
    if span == 0:
        pos = torch.zeros_like(raw, dtype=torch.long)
    else:  # reflect into [0, span] (bounce)
        period = 2 * span
        r = torch.remainder(raw, period)
        pos = torch.where(r > span, period - r, r).round().long()
    out = torch.zeros(n, frames, size, size, dtype=torch.uint8)
    ar = torch.arange(k)
    nn_idx = torch.arange(n)[:, None, None]
    src = items[:, 0]
    for f in range(frames):
        rows = (pos[:, f, 0, None] + ar)[:, :, None]  # [N, k, 1]
        cols = (pos[:, f, 1, None] + ar)[:, None, :]  # [N, 1, k]
        out[nn_idx, f, rows, cols] = src
    return out.unsqueeze(1)


def moving_fashion(root: str | None = None, train_subset: int | None = 10_000,
                   test_subset: int | None = 2_000, seed: int = 0, verify: bool = True,
                   frames: int = 8, size: int = 64, channels: int = 3) -> DataBundle:
    """Clips ``[N, channels, frames, size, size]`` of a Fashion-MNIST item drifting across a
    ``size``×``size`` canvas; label = the item's class. Defaults to class-balanced subsets of
    10,000 / 2,000 items (pass ``None`` for all 60,000 / 10,000: ~2 GB at 8×64×64)."""
    if frames < 1:
        raise DatasetError(f"frames must be ≥ 1, got {frames}")
    base = fashion_mnist(root, train_subset, test_subset, seed, verify)

    def clips(s: Split, offset: int) -> Split:
        g = torch.Generator().manual_seed(1_000_003 * (seed + 1) + offset)
        x = render_moving(s.x, frames, size, g)
        return Split(x.expand(-1, channels, -1, -1, -1), s.y)

    mean, std = _stats((28 / size) ** 2)
    return DataBundle(
        name="moving_fashion", num_classes=10, in_chans=channels,
        input_size=(frames, size, size), mean=(mean,) * channels, std=(std,) * channels,
        train=clips(base.train, 0), test=clips(base.test, 1),
        provenance={**base.provenance, "base": "fashion_mnist",
                    "derived": f"{frames} frames, {size}x{size} canvas, linear motion 2-5 px/"
                               f"frame with bounces, seed {seed}"},
    )
