"""Window geometry shared by the pooling families: torch's output-size arithmetic, argument
normalisation, and unfolding a tensor into its pooling windows.

Every family works on an ``(planes, D, H, W)`` view of its input (1D and 2D become 3D with
unit dims), so one code path serves ``dim`` 1, 2 and 3.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F


def as_tuple(v, dim: int, name: str) -> tuple[int, ...]:
    """``v`` (int, 1-tuple or ``dim``-tuple) → a ``dim``-tuple of ints."""
    if isinstance(v, Sequence) and not isinstance(v, str):
        t = tuple(int(a) for a in v)
        if len(t) == 1:
            t = t * dim
    else:
        t = (int(v),) * dim
    if len(t) != dim:
        raise ValueError(f"{name} must be an int or a {dim}-tuple, got {v!r}")
    return t


def pool_output_size(size: int, k: int, s: int, p: int, ceil_mode: bool) -> int:
    """torch's pooling output length (``pooling_output_shape`` in ATen, dilation 1)."""
    o = (size + 2 * p - k + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= size + p:  # the last window must start inside the input
        o -= 1
    return o


def geometry(shape: Sequence[int], dim: int, kernel_size, stride=None, padding=0,
             ceil_mode=False):
    """Normalised ``(k, s, p, out)`` tuples for an input of ``shape``; validates like torch
    (padding at most half the kernel, output at least 1)."""
    k = as_tuple(kernel_size, dim, "kernel_size")
    empty = stride is None or (isinstance(stride, Sequence) and len(stride) == 0)
    s = k if empty else as_tuple(stride, dim, "stride")
    p = as_tuple(padding, dim, "padding")
    if dim not in (1, 2, 3):
        raise ValueError(f"dim must be 1, 2 or 3, got {dim}")
    if len(shape) not in (dim + 1, dim + 2):
        raise ValueError(f"a {dim}D pool expects a {dim + 1}D or {dim + 2}D input, "
                         f"got shape {tuple(shape)}")
    if any(a <= 0 for a in k + s):
        raise ValueError(f"kernel_size and stride must be positive, got {k} and {s}")
    if any(pi < 0 or 2 * pi > ki for pi, ki in zip(p, k, strict=True)):
        raise ValueError(f"pad should be at most half of the kernel size, got padding={p} "
                         f"for kernel_size={k}")
    size = tuple(shape[-dim:])
    out = tuple(pool_output_size(n, ki, si, pi, ceil_mode)
                for n, ki, si, pi in zip(size, k, s, p, strict=True))
    if any(o <= 0 for o in out):
        raise ValueError(f"output size is too small: input {size}, kernel {k}, stride {s}, "
                         f"padding {p} give {out}")
    return k, s, p, out


def to3(t: Sequence[int], fill: int) -> tuple[int, int, int]:
    """Left-fill a 1/2/3-tuple to length 3 (unit kernel/stride, zero padding)."""
    return (fill,) * (3 - len(t)) + tuple(t)  # type: ignore[return-value]


def as_planes(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``(*lead, *spatial)`` → ``(planes, D, H, W)`` (a view where possible)."""
    return x.reshape(-1, *to3(tuple(x.shape[-dim:]), 1))


def pad_amounts(size: Sequence[int], k, s, p, out) -> list[int]:
    """``F.pad`` amounts (last dim first) that give every window of ``out`` its full extent:
    ``p`` on the left, on the right whatever the last window still needs (ceil mode)."""
    pads: list[int] = []
    for n, ki, si, pi, o in zip(reversed(size), reversed(k), reversed(s), reversed(p),
                                reversed(out), strict=True):
        pads += [pi, max(0, (o - 1) * si + ki - n - pi)]
    return pads


def unfold(x3: torch.Tensor, k, s, p, out, value: float = 0.0) -> torch.Tensor:
    """``x3`` (planes, D, H, W) → windows (planes, OD, OH, OW, KD*KH*KW) (a copy), with
    ``value`` at taps that fall in padding. ``k, s, p, out`` are 3-tuples."""
    pads = pad_amounts(x3.shape[1:], k, s, p, out)
    xp = F.pad(x3, pads, value=value) if any(pads) else x3
    w = xp
    for d in range(3):
        w = w.unfold(1 + d, k[d], s[d])
    w = w[:, :out[0], :out[1], :out[2]]
    return w.reshape(*w.shape[:4], -1)


def pad_to_output(x: torch.Tensor, dim: int, k, s, p, out, value: float = 0.0) -> torch.Tensor:
    """Pad ``x`` so that a plain ``kernel k, stride s, padding 0`` op (a conv) yields ``out``:
    ``p`` on the left, and on the right what the last window needs (cropping any excess)."""
    pads = pad_amounts(x.shape[-dim:], k, s, p, out)
    x = F.pad(x, pads, value=value) if any(pads) else x
    for d in range(dim):
        need = (out[d] - 1) * s[d] + k[d]
        x = x.narrow(x.dim() - dim + d, 0, need)
    return x
