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
* ``cluttered_fashion`` — one Fashion-MNIST item (resized to 20×20) at a random position on
  a 32×32 canvas cluttered with fragments of other items, plus each item's object mask
  (:func:`render_cluttered`): the ground truth of S3Net's saliency-map claim
  (``tasks/saliency.py``).
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
from dataclasses import dataclass

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


@dataclass
class MaskedSplit(Split):
    """A split that also carries each item's object mask (bool ``[N, H, W]``)."""

    mask: torch.Tensor | None = None


def render_cluttered(items: torch.Tensor, size: int, item_size: int, n_clutter: int,
                     clutter_size: int, g: torch.Generator
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 ``[N, 1, 28, 28]`` items → (uint8 canvases ``[N, 1, size, size]``, bool object
    masks ``[N, size, size]``).

    Cluttered-MNIST style (Mnih, Heess, Graves, Kavukcuoglu, *Recurrent Models of Visual
    Attention*, NeurIPS 2014, Sec. 4.1): each item, resized to ``item_size`` (bilinear,
    antialiased), lands at a uniformly random position; ``n_clutter`` fragments
    (``clutter_size`` squares cropped at random from *other* random items of the same set)
    land at uniformly random positions first, and the item is composited over them with a
    pixel-wise maximum. The mask is the item's own silhouette (its pixels > 0 after resizing).
    """
    n = items.shape[0]
    if not 0 < item_size <= size or not 0 < clutter_size <= 28:
        raise DatasetError(f"need 0 < item_size ≤ size and 0 < clutter_size ≤ 28, got "
                           f"item_size={item_size}, size={size}, clutter_size={clutter_size}")
    small = F.interpolate(items.float(), size=(item_size, item_size), mode="bilinear",
                          align_corners=False, antialias=True).round_().clamp_(0, 255)
    small = small.to(torch.uint8)[:, 0]
    canvas = torch.zeros(n, size, size, dtype=torch.uint8)
    src = items[:, 0]
    for _ in range(n_clutter):
        donor = torch.randint(0, n, (n,), generator=g)
        cy, cx = (torch.randint(0, 28 - clutter_size + 1, (2, n), generator=g))
        py, px = (torch.randint(0, size - clutter_size + 1, (2, n), generator=g))
        ar = torch.arange(clutter_size)
        frag = src[donor[:, None, None], (cy[:, None] + ar)[:, :, None],
                   (cx[:, None] + ar)[:, None, :]]
        rows, cols = (py[:, None] + ar)[:, :, None], (px[:, None] + ar)[:, None, :]
        idx = torch.arange(n)[:, None, None]
        canvas[idx, rows, cols] = torch.maximum(canvas[idx, rows, cols], frag)
    py, px = torch.randint(0, size - item_size + 1, (2, n), generator=g)
    ar = torch.arange(item_size)
    rows, cols = (py[:, None] + ar)[:, :, None], (px[:, None] + ar)[:, None, :]
    idx = torch.arange(n)[:, None, None]
    canvas[idx, rows, cols] = torch.maximum(canvas[idx, rows, cols], small)
    mask = torch.zeros(n, size, size, dtype=torch.bool)
    mask[idx, rows, cols] = small > 0
    return canvas.unsqueeze(1), mask


def cluttered_fashion(root: str | None = None, train_subset: int | None = 10_000,
                      test_subset: int | None = 2_000, seed: int = 0, verify: bool = True,
                      size: int = 32, item_size: int = 20, n_clutter: int = 4,
                      clutter_size: int = 8, channels: int = 3) -> DataBundle:
    """Fashion-MNIST items at random positions on a cluttered ``size``×``size`` canvas, with
    each item's object mask (``test.mask``; ``train.mask`` too), for saliency-map
    localisation scores (:mod:`tasks.saliency`). Label = the item's class. Defaults to
    class-balanced subsets of 10,000 / 2,000 items."""
    base = fashion_mnist(root, train_subset, test_subset, seed, verify)

    def make(s: Split, offset: int) -> MaskedSplit:
        g = torch.Generator().manual_seed(2_000_003 * (seed + 1) + offset)
        x, mask = render_cluttered(s.x, size, item_size, n_clutter, clutter_size, g)
        return MaskedSplit(x.expand(-1, channels, -1, -1), s.y, mask=mask)

    train, test = make(base.train, 0), make(base.test, 1)
    m = train.x[:, 0].float() / 255
    mean, std = round(float(m.mean()), 4), round(float(m.std()), 4)
    return DataBundle(
        name="cluttered_fashion", num_classes=10, in_chans=channels, input_size=(size, size),
        mean=(mean,) * channels, std=(std,) * channels, train=train, test=test,
        provenance={**base.provenance, "base": "fashion_mnist",
                    "derived": f"item resized to {item_size} at a random position on a "
                               f"{size}x{size} canvas with {n_clutter} {clutter_size}x"
                               f"{clutter_size} fragments of other items, seed {seed}",
                    "object_fraction": round(float(test.mask.float().mean()), 4)},
    )
