"""SoftPool — Stergiou, Poppe, Kalliatakis, *Refining activation downsampling with SoftPool*,
ICCV 2021 (arXiv 2101.00440), Eq. 1–2.

Per channel and kernel region ``R``::

    w_i = exp(x_i) / sum_{j in R} exp(x_j)          (Eq. 1)
    y   = sum_{i in R} w_i * x_i                     (Eq. 2)

and its gradient (derived from Eq. 1–2, summed over every window that contains ``x_i``)::

    dy/dx_i = w_i * (1 + x_i - y)

API
---
``soft_pool1d/2d/3d(x, kernel_size, stride=None, padding=0, ceil_mode=False, *, path=None)``
and the modules :class:`SoftPool1d`, :class:`SoftPool2d`, :class:`SoftPool3d` take torch's
max/avg pooling arguments and give the same output shapes. Any leading dims are allowed
(``(N, C, *spatial)`` or unbatched ``(C, *spatial)``).

Numerics
--------
Every path subtracts the window maximum before exponentiating (``w_i = exp(x_i - m) /
sum exp(x_j - m)``), so results are finite and correct for any finite float32 input (the
original CUDA kernel computes ``exp(x)`` and overflows above ~88) and for float16/bfloat16
over their whole range; those are computed in float32 and cast back. No ``nan_to_num``.

Padding
-------
Padded positions are **excluded** from the window — the same as ``-inf`` padding in max
pooling (weight ``exp(-inf) = 0``): a border window averages only the real inputs it covers.
The same holds for the partial windows that ``ceil_mode`` adds. All three paths follow this.

Paths, and how to record which one ran
--------------------------------------
* ``"triton"`` — Triton kernels for forward and backward (:mod:`._softpool_triton`); used for
  CUDA tensors when Triton is importable.
* ``"fused_cpu"`` — a hand-written C kernel (:mod:`._softpool_cpu`) that never materialises
  the exponentials and vectorises across planes; used for CPU tensors when it compiles
  (needs a C compiler). It reads channels-last inputs (``torch.channels_last``,
  ``channels_last_3d``, or (N, L, C) memory for 1D) in place, with at least 8 channels, and
  returns a channels-last output and gradient for them; any other non-contiguous input is
  copied to contiguous first.
* ``"reference"`` — plain torch ops (window unfolding + a stable softmax); used elsewhere,
  and the yardstick in tests.

All three are a :class:`torch.autograd.Function` with the analytic backward above.
With ``torch.use_deterministic_algorithms(True)``, overlapping windows (kernel > stride) on
CUDA take the reference path, since the Triton backward accumulates them with atomics.
``softpool_path(device, dtype)`` says which path a tensor on ``device`` would take;
``last_path()`` says which path the most recent SoftPool call took; a module's ``.path`` is
the path its last forward took. Force a path with ``path=`` (function/module argument) or
the environment variable ``POOLREPRO_SOFTPOOL_PATH``. The engine should record
``softpool_path(device)`` (or a model's ``module.path`` values after one batch) in run
provenance.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os

import torch
from torch import nn

from registry.pools import _softpool_cpu
from registry.pools._windows import as_planes, geometry, pad_amounts, pool_output_size, to3
from registry.pools._windows import unfold as _unfold

PATHS = ("triton", "fused_cpu", "reference")
__all__ = ["PATHS", "SoftPool1d", "SoftPool2d", "SoftPool3d", "last_path", "pool_output_size",
           "soft_pool1d", "soft_pool2d", "soft_pool3d", "soft_pool_formula", "softpool",
           "softpool_path"]
_ENV = "POOLREPRO_SOFTPOOL_PATH"
_last_path: str | None = None

# ----------------------------------------------------------------------------- path choice


def _triton_usable() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:
        return False
    return True


def softpool_path(device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> str:
    """The path SoftPool takes for a tensor on ``device`` (``"triton"``, ``"fused_cpu"`` or
    ``"reference"``), honouring ``POOLREPRO_SOFTPOOL_PATH``. Record it in run provenance."""
    forced = os.environ.get(_ENV, "").strip().lower()
    if forced:
        if forced not in PATHS:
            raise ValueError(f"{_ENV}={forced!r}: choose one of {PATHS}")
        return forced
    return _default_path(torch.device(device).type, dtype)


@functools.lru_cache(maxsize=64)
def _default_path(device_type: str, dtype: torch.dtype | None) -> str:
    if dtype is not None and not dtype.is_floating_point:
        return "reference"
    if device_type == "cuda" and _triton_usable():
        return "triton"
    if device_type == "cpu" and _softpool_cpu.available():
        return "fused_cpu"
    return "reference"


def last_path() -> str | None:
    """The path the most recent SoftPool call (forward) took, or None before the first."""
    return _last_path


# ----------------------------------------------------------------------------- reference


def _ref_forward(x: torch.Tensor, k, s, p, out):
    """Stable Eq. 1-2 on unfolded windows (``-inf`` at padded taps, weight 0)."""
    win = _unfold(x, k, s, p, out, value=-math.inf)
    m = win.amax(dim=-1, keepdim=True)
    # x - m is -inf at padded taps and can overflow to -inf for extreme inputs; clamped to
    # the lowest finite value its weight is still exactly 0 and e * d stays 0
    d = (win - m).clamp_min(torch.finfo(win.dtype).min)
    e = torch.exp(d)
    den = e.sum(-1)
    y = m.squeeze(-1) + (e * d).sum(-1) / den
    return y, m.squeeze(-1) + torch.log(den)


def _ref_backward(x: torch.Tensor, y, lse, gy, k, s, p):
    out = tuple(y.shape[1:])
    win = _unfold(x, k, s, p, out, value=-math.inf)
    pads = pad_amounts(x.shape[1:], k, s, p, out)
    padded = tuple(n + pads[2 * (2 - i)] + pads[2 * (2 - i) + 1]
                   for i, n in enumerate(x.shape[1:]))
    w = torch.exp(win - lse.unsqueeze(-1))  # 0 at padded taps
    # 1 + x - y is -inf at padded taps and may overflow where w == 0: select, not multiply
    gwin = torch.where(w > 0, gy.unsqueeze(-1) * w * (1 + win - y.unsqueeze(-1)), 0)
    gwin = gwin.view(*gwin.shape[:4], *k)
    gpad = x.new_zeros((x.shape[0], *padded))
    for kd in range(k[0]):
        for kh in range(k[1]):
            for kw in range(k[2]):
                gpad[:, kd:kd + s[0] * (out[0] - 1) + 1:s[0],
                     kh:kh + s[1] * (out[1] - 1) + 1:s[1],
                     kw:kw + s[2] * (out[2] - 1) + 1:s[2]] += gwin[..., kd, kh, kw]
    D, H, W = x.shape[1:]
    return gpad[:, p[0]:p[0] + D, p[1]:p[1] + H, p[2]:p[2] + W]


# ----------------------------------------------------------------------------- dispatch


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _as(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``t`` in ``dtype``, contiguous (no dispatcher round trip when it already is)."""
    if t.dtype != dtype:
        t = t.to(dtype)
    return t if t.is_contiguous() else t.contiguous()


def _forward(path: str, x3: torch.Tensor, k, s, p, out):
    """(planes, D, H, W) input → (y, lse) of shape (planes, OD, OH, OW) (triton/reference)."""
    if path == "triton":
        from registry.pools import _softpool_triton

        return _softpool_triton.forward(x3, out, k, s, p)
    return _ref_forward(_as(x3, _compute_dtype(x3.dtype)), k, s, p, out)


def _backward(path: str, x3, y, lse, gy, k, s, p):
    if path == "triton":
        from registry.pools import _softpool_triton

        return _softpool_triton.backward(x3, y, lse, gy, k, s, p)
    cd = _compute_dtype(x3.dtype)
    return _ref_backward(_as(x3, cd), _as(y, cd), lse, _as(gy, cd), k, s, p)


@dataclasses.dataclass(frozen=True)
class _Call:
    """One SoftPool call's geometry (``k, s, p, out``: 3-tuples, 1D and 2D are 3D with unit
    dims) and path; ``cpu`` is the fused kernel's plan when the path is ``fused_cpu``."""

    dim: int
    k: tuple[int, int, int]
    s: tuple[int, int, int]
    p: tuple[int, int, int]
    out: tuple[int, int, int]
    path: str
    cpu: _softpool_cpu.Plan | None = None


class _SoftPoolFn(torch.autograd.Function):
    """SoftPool with the analytic backward ``w_i (1 + x_i - y)``, on the user's tensor: any
    reshape to and from a kernel's layout happens inside, so it adds no autograd nodes.

    The fused CPU kernel reads the input's memory as it is (contiguous, or channels-last);
    the other paths see (planes, D, H, W). Saved for backward: that kernel input, the output
    and the per-window log-sum-exp ``lse`` (``w_i = exp(x_i - lse)``), in the compute dtype
    (float32 for half inputs).
    """

    @staticmethod
    def forward(ctx, x, call: _Call):
        cd = _compute_dtype(x.dtype)
        if call.cpu is not None:
            # channels-last memory is read in place (``to`` keeps strides); else contiguous
            xk = (x if x.dtype == cd else x.to(cd)) if call.cpu.layout == "channels_last" \
                else _as(x, cd)
            y, lse = _softpool_cpu.forward(xk, call.cpu)
            out = y
        else:
            xk = as_planes(x, call.dim)
            if call.path != "triton":
                xk = xk.contiguous()
            y, lse = _forward(call.path, xk, call.k, call.s, call.p, call.out)
            out = y.reshape(*x.shape[:-call.dim], *call.out[3 - call.dim:])
        ctx.save_for_backward(xk, y, lse)
        ctx.call, ctx.xshape, ctx.xdtype = call, x.shape, x.dtype
        return out if out.dtype == x.dtype else out.to(x.dtype)

    @staticmethod
    def backward(ctx, gy):
        xk, y, lse = ctx.saved_tensors
        c = ctx.call
        if c.cpu is not None:
            gx = _softpool_cpu.backward(xk, y, lse, gy if gy.dtype == y.dtype else
                                        gy.to(y.dtype), c.cpu)
        else:
            gx = _backward(c.path, xk, y, lse, gy.reshape(-1, *c.out), c.k, c.s, c.p)
            gx = gx.reshape(ctx.xshape)
        return (gx if gx.dtype == ctx.xdtype else gx.to(ctx.xdtype)), None


@functools.lru_cache(maxsize=512)
def _plan(shape: tuple[int, ...], dim: int, kernel_size, stride, padding, ceil_mode: bool,
          path: str, cl: bool) -> _Call:
    k, s, p, out = geometry(shape, dim, kernel_size, stride, padding, ceil_mode)
    if path == "triton" and torch.are_deterministic_algorithms_enabled() and \
            any(ki > si for ki, si in zip(k, s, strict=True)):
        path = "reference"  # overlapping windows accumulate with atomics on the GPU
    k3, s3, p3, o3 = to3(k, 1), to3(s, 1), to3(p, 0), to3(out, 1)
    cpu = None
    if path == "fused_cpu":
        cpu = _softpool_cpu.plan(shape, dim, k3, s3, p3, o3,
                                 "channels_last" if cl else "planes")
    return _Call(dim, k3, s3, p3, o3, path, cpu)


def _frozen(v):
    """A pooling argument in hashable form (lists become tuples) for the plan cache."""
    return tuple(v) if isinstance(v, list) else v


def _soft_pool(x: torch.Tensor, dim: int, kernel_size, stride, padding, ceil_mode,
               path: str | None) -> torch.Tensor:
    global _last_path
    if not x.is_floating_point():
        raise TypeError(f"SoftPool needs a floating-point input, got {x.dtype}")
    path = path or softpool_path(x.device, x.dtype)
    if path not in PATHS:
        raise ValueError(f"unknown SoftPool path {path!r}; choose one of {PATHS}")
    if path == "fused_cpu" and (x.device.type != "cpu" or not _softpool_cpu.available()):
        path = "reference"
    if path == "triton" and x.device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise ValueError("the triton SoftPool path needs a CUDA tensor (or TRITON_INTERPRET=1 "
                         "set before triton is imported, for testing on CPU)")
    cl = path == "fused_cpu" and _reads_channels_last(x, dim)
    call = _plan(tuple(x.shape), dim, _frozen(kernel_size), _frozen(stride),
                 _frozen(padding), bool(ceil_mode), path, cl)
    _last_path = call.path
    return _SoftPoolFn.apply(x, call)


def _reads_channels_last(x: torch.Tensor, dim: int) -> bool:
    """Whether the fused kernel reads ``x`` (N, C, *spatial) in place as channels-last memory
    (N, *spatial, C): it must be exactly that layout, with at least the kernel's vector width
    of channels (fewer are better served copied to contiguous planes)."""
    if x.dim() != dim + 2 or x.shape[1] < _softpool_cpu.LANES or x.is_contiguous():
        return False
    return x.permute(0, *range(2, dim + 2), 1).is_contiguous()


def soft_pool1d(x, kernel_size=2, stride=None, padding=0, ceil_mode=False, *, path=None):
    """SoftPool over the last dim (Stergiou et al., ICCV 2021, Eq. 1–2); shapes as
    :func:`torch.nn.functional.max_pool1d`."""
    return _soft_pool(x, 1, kernel_size, stride, padding, ceil_mode, path)


def soft_pool2d(x, kernel_size=2, stride=None, padding=0, ceil_mode=False, *, path=None):
    """SoftPool over the last 2 dims (Stergiou et al., ICCV 2021, Eq. 1–2); shapes as
    :func:`torch.nn.functional.max_pool2d`."""
    return _soft_pool(x, 2, kernel_size, stride, padding, ceil_mode, path)


def soft_pool3d(x, kernel_size=2, stride=None, padding=0, ceil_mode=False, *, path=None):
    """SoftPool over the last 3 dims (Stergiou et al., ICCV 2021, Eq. 1–2); shapes as
    :func:`torch.nn.functional.max_pool3d`."""
    return _soft_pool(x, 3, kernel_size, stride, padding, ceil_mode, path)


def soft_pool_formula(x: torch.Tensor, kernel_size=2, stride=None, padding=0, ceil_mode=False,
                      dim: int = 2) -> torch.Tensor:
    """The plain-torch formula differentiated by autograd (stable, padding excluded): the
    yardstick the kernel benchmark compares against. Not used by the modules."""
    k, s, p, out = geometry(x.shape, dim, kernel_size, stride, padding, ceil_mode)
    k3, s3, p3, o3 = to3(k, 1), to3(s, 1), to3(p, 0), to3(out, 1)
    x3 = as_planes(x, dim)
    y, _ = _ref_forward(x3, k3, s3, p3, o3)
    return y.reshape(*x.shape[:-dim], *out)


_FUNCS = {1: soft_pool1d, 2: soft_pool2d, 3: soft_pool3d}


class _SoftPoolNd(nn.Module):
    dim = 2

    def __init__(self, kernel_size=2, stride=None, padding=0, ceil_mode=False, *,
                 path: str | None = None):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.ceil_mode, self.force_path = ceil_mode, path
        self.path: str | None = None  # the path the last forward took

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = _FUNCS[self.dim](x, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                             path=self.force_path)
        self.path = _last_path
        return y

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}")


class SoftPool1d(_SoftPoolNd):
    """Module form of :func:`soft_pool1d` (Stergiou et al., ICCV 2021, Eq. 1–2)."""

    dim = 1


class SoftPool2d(_SoftPoolNd):
    """Module form of :func:`soft_pool2d` (Stergiou et al., ICCV 2021, Eq. 1–2)."""

    dim = 2


class SoftPool3d(_SoftPoolNd):
    """Module form of :func:`soft_pool3d` (Stergiou et al., ICCV 2021, Eq. 1–2)."""

    dim = 3


_MODULES = {1: SoftPool1d, 2: SoftPool2d, 3: SoftPool3d}


def softpool(kernel_size=2, stride=None, padding=0, ceil_mode=False, *, dim=2, channels=None,
             path=None):
    """Registry factory: ``create_pool("softpool", kernel_size=2, dim=2)``."""
    return _MODULES[dim](kernel_size, stride, padding, ceil_mode, path=path)
