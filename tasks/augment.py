"""Batched tensor augmentation on the training device (airbench style).

Works on a whole uint8 batch ``[B, C, H, W]`` (or video ``[B, C, T, H, W]``) at once, so the
augmentation of a recipe costs a few tensor ops per step instead of a per-image Python loop:

* random crop with zero padding (``RandomCrop(size, padding=p)``): pad, then gather a
  per-sample window;
* horizontal flip with probability 1/2 (``RandomHorizontalFlip``);
* random rotation by U(−deg, deg) degrees (``RandomRotation(deg)``, as PoolSkip's recipe).

Each uses the given generator, so a seeded run sees the same augmentations on resume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentSpec:
    crop_padding: int = 0
    flip: bool = False
    rotate_deg: float = 0.0

    @classmethod
    def from_params(cls, params: dict) -> AugmentSpec:
        aug = params.get("augment", {})
        if isinstance(aug, (list, tuple)):  # ["crop", "flip"] shorthand
            aug = {"crop_padding": 4 if "crop" in aug else 0, "flip": "flip" in aug}
        if not isinstance(aug, dict):
            raise ValueError(f"params.augment must be a table or a list, got {aug!r}")
        unknown = set(aug) - {"crop_padding", "flip", "rotate_deg"}
        if unknown:
            raise ValueError(f"params.augment has unknown keys {sorted(unknown)}; "
                             f"use crop_padding, flip, rotate_deg")
        return cls(int(aug.get("crop_padding", 0)), bool(aug.get("flip", False)),
                   float(aug.get("rotate_deg", 0.0)))

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.flip or self.rotate_deg)


def random_crop(x: torch.Tensor, padding: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad the last two dims by ``padding`` and take a random same-size window per sample."""
    if padding <= 0:
        return x
    b, h, w = x.shape[0], x.shape[-2], x.shape[-1]
    xp = F.pad(x, (padding, padding, padding, padding))
    dy = torch.randint(0, 2 * padding + 1, (b,), generator=g, device=g.device).to(x.device)
    dx = torch.randint(0, 2 * padding + 1, (b,), generator=g, device=g.device).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None])  # [B, H]
    cols = (dx[:, None] + torch.arange(w, device=x.device)[None])  # [B, W]
    lead = x.shape[1:-2]
    flat = xp.reshape(b, -1, h + 2 * padding, w + 2 * padding)
    idx_r = rows[:, None, :, None].expand(b, flat.shape[1], h, w + 2 * padding)
    out = flat.gather(2, idx_r)
    idx_c = cols[:, None, None, :].expand(b, flat.shape[1], h, w)
    out = out.gather(3, idx_c)
    return out.reshape(b, *lead, h, w)


def random_flip(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    mask = torch.rand(x.shape[0], generator=g, device=g.device).to(x.device) < 0.5
    shape = (-1,) + (1,) * (x.dim() - 1)
    return torch.where(mask.view(shape), x.flip(-1), x)


def random_rotate(x: torch.Tensor, deg: float, g: torch.Generator) -> torch.Tensor:
    """Rotate each image by its own angle in U(−deg, deg), bilinear, zero fill (float input)."""
    if deg <= 0:
        return x
    b = x.shape[0]
    ang = (torch.rand(b, generator=g, device=g.device).to(x.device) * 2 - 1) * math.radians(deg)
    cos, sin = ang.cos(), ang.sin()
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    flat = x.reshape(b, -1, x.shape[-2], x.shape[-1])
    grid = F.affine_grid(theta.to(flat.dtype), list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(x.shape)


def normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (or float in 0..255) → float, scaled to [0, 1] and standardised per channel."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    m = torch.tensor(mean, device=x.device, dtype=torch.float32).view(shape)
    s = torch.tensor(std, device=x.device, dtype=torch.float32).view(shape)
    return (x.float() / 255.0 - m) / s


def augment_batch(x_uint8: torch.Tensor, spec: AugmentSpec, g: torch.Generator,
                  mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """The training transform of a batch: crop, flip, normalise, rotate (in that order)."""
    x = x_uint8
    if spec.crop_padding:
        x = random_crop(x, spec.crop_padding, g)
    if spec.flip:
        x = random_flip(x, g)
    x = normalize(x, mean, std)
    if spec.rotate_deg:
        x = random_rotate(x, spec.rotate_deg, g)
    return x
