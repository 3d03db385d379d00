"""SoftPool's Triton path (Stergiou et al., ICCV 2021, Eq. 1–2): one forward and one backward
kernel for 1D/2D/3D windows (1D and 2D run as 3D with unit dims).

Forward: each program takes ``BLOCK`` output positions; for each it reads its window twice
(max, then ``exp(x - max)`` sums — the second read hits cache), writes ``y`` and the window's
log-sum-exp ``lse``. Backward: each program takes ``BLOCK`` outputs and adds
``g * exp(x_i - lse) * (1 + x_i - y)`` into ``grad_x`` at the window's taps — a plain store
when windows do not overlap (``kernel <= stride``), an atomic add when they do. Taps in the
padding are masked out (excluded, as ``-inf`` padding is in max pooling). Accumulation is in
float32 (float64 for float64 inputs).

Used on CUDA when Triton imports. On CPU the kernels run under Triton's interpreter when
``TRITON_INTERPRET=1`` was set before ``triton`` was imported (that is how the tests check
them without a GPU).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl


@triton.jit
def _softpool_fwd_kernel(x_ptr, y_ptr, lse_ptr, total, D, H, W, OD, OH, OW,
                         KD: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                         SD: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
                         PD: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                         IS_F64: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < total
    ow = offs % OW
    t = offs // OW
    oh = t % OH
    t = t // OH
    od = t % OD
    base = (t // OD) * D * H * W
    if IS_F64:
        m = tl.full((BLOCK,), float("-inf"), tl.float64)
        den = tl.zeros((BLOCK,), tl.float64)
        num = tl.zeros((BLOCK,), tl.float64)
    else:
        m = tl.full((BLOCK,), float("-inf"), tl.float32)
        den = tl.zeros((BLOCK,), tl.float32)
        num = tl.zeros((BLOCK,), tl.float32)
    for kd in tl.static_range(KD):
        i_d = od * SD - PD + kd
        for kh in tl.static_range(KH):
            i_h = oh * SH - PH + kh
            for kw in tl.static_range(KW):
                i_w = ow * SW - PW + kw
                ok = live & (i_d >= 0) & (i_d < D) & (i_h >= 0) & (i_h < H) \
                    & (i_w >= 0) & (i_w < W)
                v = tl.load(x_ptr + base + (i_d * H + i_h) * W + i_w, mask=ok,
                            other=float("-inf")).to(m.dtype)
                m = tl.maximum(m, v)
    m = tl.where(live, m, 0.0)
    for kd in tl.static_range(KD):
        i_d = od * SD - PD + kd
        for kh in tl.static_range(KH):
            i_h = oh * SH - PH + kh
            for kw in tl.static_range(KW):
                i_w = ow * SW - PW + kw
                ok = live & (i_d >= 0) & (i_d < D) & (i_h >= 0) & (i_h < H) \
                    & (i_w >= 0) & (i_w < W)
                v = tl.load(x_ptr + base + (i_d * H + i_h) * W + i_w, mask=ok,
                            other=0.0).to(m.dtype)
                # clamp: x - m overflows to -inf for extreme inputs (its weight is 0)
                d = tl.maximum(tl.where(ok, v - m, 0.0), -1e38)
                e = tl.where(ok, tl.exp(d), 0.0)
                den += e
                num += e * d
    den = tl.where(live, den, 1.0)
    tl.store(y_ptr + offs, m + num / den, mask=live)
    tl.store(lse_ptr + offs, m + tl.log(den), mask=live)


@triton.jit
def _softpool_bwd_kernel(x_ptr, y_ptr, lse_ptr, gy_ptr, gx_ptr, total, D, H, W, OD, OH, OW,
                         KD: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
                         SD: tl.constexpr, SH: tl.constexpr, SW: tl.constexpr,
                         PD: tl.constexpr, PH: tl.constexpr, PW: tl.constexpr,
                         OVERLAP: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    live = offs < total
    ow = offs % OW
    t = offs // OW
    oh = t % OH
    t = t // OH
    od = t % OD
    base = (t // OD) * D * H * W
    y = tl.load(y_ptr + offs, mask=live, other=0.0)
    lse = tl.load(lse_ptr + offs, mask=live, other=0.0)
    g = tl.load(gy_ptr + offs, mask=live, other=0.0).to(y.dtype)
    for kd in tl.static_range(KD):
        i_d = od * SD - PD + kd
        for kh in tl.static_range(KH):
            i_h = oh * SH - PH + kh
            for kw in tl.static_range(KW):
                i_w = ow * SW - PW + kw
                ok = live & (i_d >= 0) & (i_d < D) & (i_h >= 0) & (i_h < H) \
                    & (i_w >= 0) & (i_w < W)
                idx = base + (i_d * H + i_h) * W + i_w
                v = tl.load(x_ptr + idx, mask=ok, other=0.0).to(y.dtype)
                w = tl.exp(tl.where(ok, v - lse, 0.0))
                # 1 + x - y may overflow where the weight underflowed to 0: select it away
                c = tl.where(w > 0, g * w * (1.0 + v - y), 0.0)
                if OVERLAP:
                    tl.atomic_add(gx_ptr + idx, c, mask=ok)
                else:
                    tl.store(gx_ptr + idx, c, mask=ok)


def _block() -> int:
    return 1024 if os.environ.get("TRITON_INTERPRET") == "1" else 256


def forward(x: torch.Tensor, out, k, s, p):
    """``x`` (planes, D, H, W), any float dtype → ``(y, lse)`` in the compute dtype."""
    x = x.contiguous()
    acc = torch.float64 if x.dtype == torch.float64 else torch.float32
    y = torch.empty((x.shape[0], *out), device=x.device, dtype=acc)
    lse = torch.empty_like(y)
    total = y.numel()
    block = _block()
    grid = (triton.cdiv(total, block),)
    _softpool_fwd_kernel[grid](x, y, lse, total, *x.shape[1:], *out, *k, *s, *p,
                               IS_F64=acc == torch.float64, BLOCK=block)
    return y, lse


def backward(x: torch.Tensor, y, lse, gy, k, s, p):
    """Gradient w.r.t. ``x`` in the compute dtype of ``y``."""
    x, gy = x.contiguous(), gy.contiguous()
    overlap = any(ki > si for ki, si in zip(k, s, strict=True))
    gx = torch.zeros(x.shape, device=x.device, dtype=y.dtype)
    total = y.numel()
    block = _block()
    grid = (triton.cdiv(total, block),)
    _softpool_bwd_kernel[grid](x, y, lse, gy, gx, total, *x.shape[1:], *y.shape[1:],
                               *k, *s, *p, OVERLAP=overlap, BLOCK=block)
    return gx
