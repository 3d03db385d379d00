"""SoftPool's fused CPU path: a small hand-written C kernel, compiled on first use, called
through :mod:`ctypes` (no torch headers, so it builds in about two seconds).

Why C and not ``torch.compile``: inductor's code for the strided window reads reached only
~1.7× of ``avg_pool2d`` on a 2-core CPU and cost ~20 s of compile time per shape.

Layout: the kernel vectorises *across planes* (one plane = one (sample, channel) pair): a
32-byte vector holds the same window position of 8 float32 (4 float64) planes, so every
window shape, stride, padding and plane size runs at full vector width, with no loop over a
short row. Two input layouts are accepted:

* ``"planes"`` — contiguous ``(planes, D, H, W)`` (NCHW; 1D and 2D are 3D with unit dims):
  each block of 8 planes is transposed into a per-thread scratch buffer (8×8 AVX tiles),
  pooled there and transposed back;
* ``"channels_last"`` — contiguous ``(N, D, H, W, C)`` (a channels-last tensor's memory):
  8 neighbouring channels already sit next to each other, so the kernel works in place; only
  a last partial block of ``C % 8`` channels goes through scratch.

Numerics (Stergiou et al., ICCV 2021, Eq. 1–2, with the window maximum ``m`` subtracted)::

    forward:  y = m + sum(e d) / sum(e),  lse = m + log(sum(e)),  d = x - m,  e = exp(d)
    backward: gx_i += g_w exp(x_i - lse_w) (1 + x_i - y_w)   for every window w holding i

Overlapping windows (kernel > stride, e.g. 3×3 stride 2) would take every input's
exponential once per window holding it (2.25× for 3×3/2, 9× for 3×3/1). When all inputs of
a block's planes lie within 40 of their plane's maximum ``c`` (checked per block; NaN and inf
fail the check), the kernel instead subtracts the shared shift ``c``: ``e = exp(x - c)`` once
per input, window sums of ``e`` and ``e (x - c)``, and a backward that scatters
``a_w = g_w exp(c - lse_w)`` to the taps (``gx_i = e_i Σ_w a_w (1 + x_i - y_w)``). That is
the same stable formula up to rounding (no window maximum is more than 40 below ``c``, so
nothing that matters underflows); other blocks take the per-window-maximum path above.

Padded window positions are *excluded* (the window is clipped to the input), exactly like
``-inf`` padding in max pooling. ``exp`` is evaluated only at arguments ``<= 0`` by a
branch-free Cody-Waite/Cephes-style routine on whole vectors; arguments below the underflow
limit give exactly 0; ``x - m`` that overflows to ``-inf`` is clamped to the lowest finite
value (weight 0).

Parallelism: an OpenMP loop over plane blocks with ``torch.get_num_threads()`` threads. The
library links ``libgomp.so.1``, which the loader resolves to the copy torch already loaded,
so it shares torch's OpenMP thread pool (two runtimes would spin against each other on a
small CPU). Without ``-fopenmp`` support it builds single-threaded.

Build cache: ``$POOLREPRO_CACHE`` or ``~/.cache/poolrepro``, keyed by a hash of the source,
the flags and the CPU model. If no C compiler works, :func:`available` is False and SoftPool
uses its reference path.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import hashlib
import math
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

C_PRELUDE = r"""
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

typedef int64_t i64;
/* 32-byte vectors (GCC vector extensions): 8 floats or 4 doubles, one lane per plane */
typedef float vf __attribute__((vector_size(32)));
typedef int32_t vfi __attribute__((vector_size(32)));
typedef double vd __attribute__((vector_size(32)));
typedef int64_t vdi __attribute__((vector_size(32)));

/* select a where m is set, else b; max(a, b) = a > b ? a : b (b when either is NaN, so a NaN
   in b propagates) */
#ifdef __AVX__
static inline vf sel_vf(vfi m, vf a, vf b) {
    return (vf)_mm256_blendv_ps((__m256)b, (__m256)a, (__m256)m);
}
static inline vd sel_vd(vdi m, vd a, vd b) {
    return (vd)_mm256_blendv_pd((__m256d)b, (__m256d)a, (__m256d)m);
}
static inline vf max_vf(vf a, vf b) { return (vf)_mm256_max_ps((__m256)a, (__m256)b); }
static inline vd max_vd(vd a, vd b) { return (vd)_mm256_max_pd((__m256d)a, (__m256d)b); }
static inline vf min_vf(vf a, vf b) { return (vf)_mm256_min_ps((__m256)a, (__m256)b); }
static inline vd min_vd(vd a, vd b) { return (vd)_mm256_min_pd((__m256d)a, (__m256d)b); }
#else
static inline vf sel_vf(vfi m, vf a, vf b) { return (vf)((m & (vfi)a) | (~m & (vfi)b)); }
static inline vd sel_vd(vdi m, vd a, vd b) { return (vd)((m & (vdi)a) | (~m & (vdi)b)); }
static inline vf max_vf(vf a, vf b) { return sel_vf(a > b, a, b); }
static inline vd max_vd(vd a, vd b) { return sel_vd(a > b, a, b); }
static inline vf min_vf(vf a, vf b) { return sel_vf(a < b, a, b); }
static inline vd min_vd(vd a, vd b) { return sel_vd(a < b, a, b); }
#endif

/* exp(t) for t <= 0, float: n = round(t log2 e) by adding 1.5*2^23 + 127 (whose low mantissa
   bits then hold n + 127, the biased exponent of 2^n), r = t - n ln2 (two-part ln2), a
   degree-7 polynomial for e^r on |r| <= ln2/2 (Cephes expf coefficients), times 2^n built in
   the exponent bits. t below -87 (2^n would be subnormal) gives exactly 0. */
static inline vf exp_neg_vf(vf t) {
    const vf lo = (vf){0} - 87.0f;
    vfi under = t < lo;
    vf tc = max_vf(lo, t); /* NaN stays NaN */
    vf z = tc * 1.44269504088896341f + 12583039.0f;
    vf n = z - 12583039.0f;
    vf r = tc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    vf p = (vf){0} + 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    vf scale = (vf)((vfi)z << 23);
    return (vf)(~under & (vfi)(p * scale));
}

/* exp(t) for t <= 0, double: Cephes' rational form e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2)),
   2^n through the 1.5*2^52 rounding constant. t below -708 gives exactly 0. */
static inline vd exp_neg_vd(vd t) {
    const vd lo = (vd){0} - 708.0;
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    vdi under = t < lo;
    vd tc = max_vd(lo, t);
    vd z = tc * 1.4426950408889634074 + magic;
    vd n = z - magic;
    vd r = tc - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    vd rr = r * r;
    vd px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
                 + 9.99999999999999999910e-1);
    vd qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
             + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0;
    vd e = 1.0 + 2.0 * px / (qx - px);
    vdi bits = (((vdi)z - (vdi)((vd){0} + magic)) + 1023) << 52;
    return (vd)(~under & (vdi)(e * (vd)bits));
}

/* log(x) for positive normal x (window sums), float: x = 2^e f with f in [sqrt(1/2), sqrt(2)),
   log f by Cephes' logf polynomial. */
static inline vf log_pos_vf(vf x) {
    vfi b = (vfi)x;
    vfi e = ((b >> 23) & 0xff) - 127;
    vf f = (vf)((b & 0x7fffff) | 0x3f800000);
    vfi big = f > 1.41421356237f;
    f = sel_vf(big, f * 0.5f, f);
    vf ef = __builtin_convertvector(e - big, vf); /* big is -1 where true */
    f = f - 1.0f;
    vf z = f * f;
    vf y = (vf){0} + 7.0376836292e-2f;
    y = y * f - 1.1514610310e-1f;
    y = y * f + 1.1676998740e-1f;
    y = y * f - 1.2420140846e-1f;
    y = y * f + 1.4249322787e-1f;
    y = y * f - 1.6668057665e-1f;
    y = y * f + 2.0000714765e-1f;
    y = y * f - 2.4999993993e-1f;
    y = y * f + 3.3333331174e-1f;
    y = y * f * z;
    y += -2.12194440e-4f * ef;
    y += -0.5f * z;
    return f + y + 0.693359375f * ef;
}

static inline vd log_pos_vd(vd x) {
    vd r;
    for (int l = 0; l < 4; l++) r[l] = __builtin_log(x[l]);
    return r;
}

/* Copy an 8x8 float tile: dst[j * ds + i] = src[i * ss + j]. */
static inline void transpose8_f32(const float *src, i64 ss, float *dst, i64 ds) {
#ifdef __AVX__
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ss);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ss), r3 = _mm256_loadu_ps(src + 3 * ss);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ss), r5 = _mm256_loadu_ps(src + 5 * ss);
    __m256 r6 = _mm256_loadu_ps(src + 6 * ss), r7 = _mm256_loadu_ps(src + 7 * ss);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + ds, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * ds, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * ds, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * ds, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * ds, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * ds, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * ds, _mm256_permute2f128_ps(u3, u7, 0x31));
#else
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++) dst[j * ds + i] = src[i * ss + j];
#endif
}
"""

# One kernel set, instantiated for float and double by textual substitution of the
# names in _TYPES (T, VT, NL, ...) and of the _SUF suffix.
_KERNELS = r"""
static inline VT ld_SUF(const T *p) { VT v; memcpy(&v, p, sizeof v); return v; }
static inline void st_SUF(T *p, VT v) { memcpy(p, &v, sizeof v); }

/* Lanes <- strided source: dst[q * NL + l] = src[q * qs + l * ls] for l < nl, 0 beyond. */
static void gather_SUF(const T *restrict src, i64 qs, i64 ls, i64 n, int nl, T *restrict dst) {
    i64 q = 0;
    if (NL == 8 && sizeof(T) == 4 && nl == 8 && qs == 1)
        for (; q + 8 <= n; q += 8)
            transpose8_f32((const float *)src + q, ls, (float *)dst + q * 8, 8);
    for (; q < n; q++)
        for (int l = 0; l < NL; l++) dst[q * NL + l] = l < nl ? src[q * qs + l * ls] : 0;
}

/* Lanes -> strided destination (the first nl lanes). */
static void scatter_SUF(const T *restrict src, i64 n, int nl, T *restrict dst, i64 qs, i64 ls) {
    i64 q = 0;
    if (NL == 8 && sizeof(T) == 4 && nl == 8 && qs == 1)
        for (; q + 8 <= n; q += 8)
            transpose8_f32((const float *)src + q * 8, 8, (float *)dst + q, ls);
    for (; q < n; q++)
        for (int l = 0; l < nl; l++) dst[q * qs + l * ls] = src[q * NL + l];
}

/* Window geometry of one call. A window is "interior" when it lies wholly inside the input;
   its taps are then at fixed offsets (tap[]) from its first position. Border windows are
   clipped to the input (padded taps are excluded). */
typedef struct {
    i64 D, H, W, OD, OH, OW, KD, KH, KW, SD, SH, SW, PD, PH, PW;
    i64 lo[3], hi[3]; /* interior output range per dim (d, h, w) */
    i64 ntap;
    int disjoint;     /* no input position lies in two windows (kernel <= stride) */
    i64 P;            /* input positions of a plane */
} geo_SUF;

static geo_SUF geo_make_SUF(const i64 *g) {
    geo_SUF G;
    G.D = g[0], G.H = g[1], G.W = g[2], G.OD = g[3], G.OH = g[4], G.OW = g[5];
    G.KD = g[6], G.KH = g[7], G.KW = g[8], G.SD = g[9], G.SH = g[10], G.SW = g[11];
    G.PD = g[12], G.PH = g[13], G.PW = g[14];
    for (int d = 0; d < 3; d++) {
        i64 n = g[d], o = g[3 + d], k = g[6 + d], s = g[9 + d], p = g[12 + d];
        i64 a = (p + s - 1) / s, b = n + p - k < 0 ? 0 : (n + p - k) / s + 1;
        G.lo[d] = a < o ? a : o;
        G.hi[d] = b < G.lo[d] ? G.lo[d] : (b > o ? o : b);
    }
    G.ntap = G.KD * G.KH * G.KW;
    G.disjoint = G.KD <= G.SD && G.KH <= G.SH && G.KW <= G.SW;
    G.P = G.D * G.H * G.W;
    return G;
}

/* Offsets (in elements, positions xs apart) of the taps of border window (od, oh, ow),
   clipped to the input; returns their count. */
static i64 clip_taps_SUF(const geo_SUF *G, i64 od, i64 oh, i64 ow, i64 xs, i64 *buf) {
    i64 d0 = od * G->SD - G->PD, h0 = oh * G->SH - G->PH, w0 = ow * G->SW - G->PW;
    i64 dlo = d0 < 0 ? 0 : d0, dhi = d0 + G->KD > G->D ? G->D : d0 + G->KD;
    i64 hlo = h0 < 0 ? 0 : h0, hhi = h0 + G->KH > G->H ? G->H : h0 + G->KH;
    i64 wlo = w0 < 0 ? 0 : w0, whi = w0 + G->KW > G->W ? G->W : w0 + G->KW;
    i64 n = 0;
    for (i64 id = dlo; id < dhi; id++)
        for (i64 ih = hlo; ih < hhi; ih++)
            for (i64 iw = wlo; iw < whi; iw++) buf[n++] = ((id * G->H + ih) * G->W + iw) * xs;
    return n;
}

/* Offsets of the taps of an interior window from its first position. */
static void full_taps_SUF(const geo_SUF *G, i64 xs, i64 *tap) {
    i64 n = 0;
    for (i64 a = 0; a < G->KD; a++)
        for (i64 b = 0; b < G->KH; b++)
            for (i64 c = 0; c < G->KW; c++) tap[n++] = ((a * G->H + b) * G->W + c) * xs;
}

/* One window, forward: y = m + sum(e d) / sum(e), lse = m + log(sum(e)), d = x - m,
   e = exp(d), m = the window max. n is a literal at the hot call sites, so the tap loops
   unroll. */
static inline __attribute__((always_inline)) void
fwd_win_SUF(const T *restrict x, const i64 *restrict tap, i64 n, T *y, T *lse) {
    const VT lo = (VT){0} - TMAX;
    VT m = lo;
    for (i64 t = 0; t < n; t++) m = MAXV(m, ld_SUF(x + tap[t]));
    VT s = (VT){0}, u = (VT){0};
    for (i64 t = 0; t < n; t++) {
        /* x - m overflows to -inf for extreme inputs: clamp (its weight is 0) */
        VT d = MAXV(lo, ld_SUF(x + tap[t]) - m);
        VT e = EXPV(d);
        s += e;
        u += e * d;
    }
    st_SUF(y, m + u / s);
    st_SUF(lse, m + LOGV(s));
}

/* One window, backward: gx_i (+)= g exp(x_i - lse) (1 + x_i - y) at each tap (acc: add to
   what is there, for overlapping windows; else store). */
static inline __attribute__((always_inline)) void
bwd_win_SUF(const T *restrict x, T *restrict gx, const i64 *restrict tap, i64 n, VT gv, VT lv,
            VT c1, int acc) {
    const VT zero = (VT){0};
    for (i64 t = 0; t < n; t++) {
        VT v = ld_SUF(x + tap[t]);
        VT w = EXPV(v - lv); /* exp(-inf) = 0 */
        /* 1 + x - y may overflow where w == 0: select, not multiply */
        VT c = SELV(w > zero, gv * w * (c1 + v), zero);
        if (acc) c += ld_SUF(gx + tap[t]);
        st_SUF(gx + tap[t], c);
    }
}

/* Loop over the outputs of a block; BODY sees the window's taps (tap[0..n), offsets from
   x + base) and the output index o. */
#define FOR_WINDOWS_SUF(...)                                                               \
    i64 o = 0;                                                                             \
    for (i64 od = 0; od < G->OD; od++)                                                     \
        for (i64 oh = 0; oh < G->OH; oh++) {                                               \
            int rin = od >= G->lo[0] && od < G->hi[0] && oh >= G->lo[1] && oh < G->hi[1];   \
            i64 a = rin ? G->lo[2] : G->OW, b = rin ? G->hi[2] : G->OW;                     \
            i64 row = ((od * G->SD - G->PD) * G->H + oh * G->SH - G->PH) * G->W - G->PW;    \
            for (i64 ow = 0; ow < G->OW; ow++, o++) {                                      \
                const i64 *tap = full;                                                     \
                i64 n = G->ntap, base = (row + ow * G->SW) * xs;                           \
                if (ow < a || ow >= b) {                                                   \
                    n = clip_taps_SUF(G, od, oh, ow, xs, clip);                            \
                    tap = clip, base = 0;                                                  \
                }                                                                          \
                __VA_ARGS__                                                                \
            }                                                                              \
        }

/* Forward on one block of NL planes in lanes layout: input position q at x + q * xs (lanes
   contiguous), output o at y + o * ys and lse + o * ys. buf: 2 * ntap i64 of scratch. */
static void fwd_block_SUF(const T *x, i64 xs, T *y, T *lse, i64 ys, const geo_SUF *G,
                          i64 *buf) {
    i64 *full = buf, *clip = buf + G->ntap;
    full_taps_SUF(G, xs, full);
    FOR_WINDOWS_SUF(
        const T *xb = x + base;
        T *yo = y + o * ys, *lo = lse + o * ys;
        switch (n) { /* the common window sizes get unrolled copies */
        case 2: fwd_win_SUF(xb, tap, 2, yo, lo); break;
        case 3: fwd_win_SUF(xb, tap, 3, yo, lo); break;
        case 4: fwd_win_SUF(xb, tap, 4, yo, lo); break;
        case 8: fwd_win_SUF(xb, tap, 8, yo, lo); break;
        case 9: fwd_win_SUF(xb, tap, 9, yo, lo); break;
        default: fwd_win_SUF(xb, tap, n, yo, lo);
        }
    )
}

/* Backward on one block: gx_i = sum over windows w holding i of g_w exp(x_i - lse_w)
   (1 + x_i - y_w). Overlapping windows accumulate (gx must hold zeros on entry); disjoint
   ones store (gx must hold zeros at positions no window covers). */
static void bwd_block_SUF(const T *x, const T *y, const T *lse, const T *gy, i64 ys, T *gx,
                          i64 xs, const geo_SUF *G, i64 *buf) {
    i64 *full = buf, *clip = buf + G->ntap;
    full_taps_SUF(G, xs, full);
    const int acc = !G->disjoint;
    FOR_WINDOWS_SUF(
        VT gv = ld_SUF(gy + o * ys), lv = ld_SUF(lse + o * ys);
        VT c1 = (T)1 - ld_SUF(y + o * ys);
        const T *xb = x + base;
        T *gb = gx + base;
        if (acc) {
            switch (n) {
            case 4: bwd_win_SUF(xb, gb, tap, 4, gv, lv, c1, 1); break;
            case 9: bwd_win_SUF(xb, gb, tap, 9, gv, lv, c1, 1); break;
            default: bwd_win_SUF(xb, gb, tap, n, gv, lv, c1, 1);
            }
        } else {
            switch (n) {
            case 2: bwd_win_SUF(xb, gb, tap, 2, gv, lv, c1, 0); break;
            case 4: bwd_win_SUF(xb, gb, tap, 4, gv, lv, c1, 0); break;
            case 8: bwd_win_SUF(xb, gb, tap, 8, gv, lv, c1, 0); break;
            default: bwd_win_SUF(xb, gb, tap, n, gv, lv, c1, 0);
            }
        }
    )
}

/* Shared shift, for overlapping windows. When every input of each lane (plane) lies within
   SHIFT of the lane's maximum c (checked; NaN and inf fail), exp(x - c) is taken once per
   input instead of once per window tap, and a window's sums are sums of those:
   y = c + sum(e d) / sum(e), lse = c + log(sum(e)), d = x - c, e = exp(d). Exact up to
   rounding: every window max is within SHIFT of c, so no term that matters underflows.
   Otherwise the caller takes the per-window-max path. */
static int shared_shift_SUF(const T *x, i64 xs, i64 P, VT *c) {
    VT hi = (VT){0} - TMAX, lo = (VT){0} + TMAX;
    VI bad = (VI){0};
    for (i64 q = 0; q < P; q++) {
        VT v = ld_SUF(x + q * xs);
        hi = MAXV(hi, v);
        lo = MINV(lo, v);
        bad |= v != v;
    }
    VI ok = (hi - lo <= SHIFT) & ~bad;
    *c = hi;
    for (int l = 0; l < NL; l++)
        if (!ok[l]) return 0;
    return 1;
}

/* Sums of one window over the interleaved (e, e d) scratch (pairs NL apart). */
static inline __attribute__((always_inline)) void
sum_win_SUF(const T *restrict e, const i64 *restrict tap, i64 n, VT *s, VT *u) {
    VT a = (VT){0}, b = (VT){0};
    for (i64 t = 0; t < n; t++) {
        a += ld_SUF(e + tap[t]);
        b += ld_SUF(e + tap[t] + NL);
    }
    *s = a, *u = b;
}

/* Forward with a shared shift c. E: 2 * P * NL scratch (e and e d of each position). */
static void fwd_block_shared_SUF(const T *x, i64 xin, T *y, T *lse, i64 ys, const geo_SUF *G,
                                 i64 *buf, T *E, VT c) {
    for (i64 q = 0; q < G->P; q++) {
        VT d = ld_SUF(x + q * xin) - c;
        VT e = EXPV(d);
        st_SUF(E + 2 * q * NL, e);
        st_SUF(E + (2 * q + 1) * NL, e * d);
    }
    const i64 xs = 2 * NL;
    i64 *full = buf, *clip = buf + G->ntap;
    full_taps_SUF(G, xs, full);
    FOR_WINDOWS_SUF(
        VT s, u;
        const T *eb = E + base;
        switch (n) {
        case 4: sum_win_SUF(eb, tap, 4, &s, &u); break;
        case 6: sum_win_SUF(eb, tap, 6, &s, &u); break;
        case 9: sum_win_SUF(eb, tap, 9, &s, &u); break;
        default: sum_win_SUF(eb, tap, n, &s, &u);
        }
        st_SUF(y + o * ys, c + u / s);
        st_SUF(lse + o * ys, c + LOGV(s));
    )
}

/* Backward with the shared shift c of the forward: w_i = exp(x_i - lse_w) = e_i a_w / g_w with
   a_w = g_w exp(c - lse_w), so gx_i = e_i ((1 + d_i) A_i - B_i), A_i = sum of a_w and
   B_i = sum of a_w (y_w - c) over the windows w holding i (scattered into the (A, B) scratch,
   2 * P * NL). Every position of gx is written. */
static void bwd_block_shared_SUF(const T *x, const T *y, const T *lse, const T *gy, i64 ys,
                                 T *gx, i64 xin, const geo_SUF *G, i64 *buf, T *A, VT c) {
    for (i64 q = 0; q < 2 * G->P; q++) st_SUF(A + q * NL, (VT){0});
    const i64 xs = 2 * NL;
    i64 *full = buf, *clip = buf + G->ntap;
    full_taps_SUF(G, xs, full);
    FOR_WINDOWS_SUF(
        VT a = ld_SUF(gy + o * ys) / EXPV(ld_SUF(lse + o * ys) - c);
        VT b = a * (ld_SUF(y + o * ys) - c);
        T *ab = A + base;
        for (i64 t = 0; t < n; t++) {
            st_SUF(ab + tap[t], ld_SUF(ab + tap[t]) + a);
            st_SUF(ab + tap[t] + NL, ld_SUF(ab + tap[t] + NL) + b);
        }
    )
    for (i64 q = 0; q < G->P; q++) {
        VT d = ld_SUF(x + q * xin) - c;
        VT e = EXPV(d);
        st_SUF(gx + q * xin, e * (((T)1 + d) * ld_SUF(A + 2 * q * NL) -
                                  ld_SUF(A + (2 * q + 1) * NL)));
    }
}

/* Whether every input position lies in some window (then disjoint windows need no zeroed
   gradient buffer). */
static int covers_all_SUF(const geo_SUF *G) {
    const i64 n[3] = {G->D, G->H, G->W}, o[3] = {G->OD, G->OH, G->OW};
    const i64 k[3] = {G->KD, G->KH, G->KW}, s[3] = {G->SD, G->SH, G->SW};
    const i64 p[3] = {G->PD, G->PH, G->PW};
    for (int d = 0; d < 3; d++)
        if (k[d] < s[d] || (o[d] - 1) * s[d] + k[d] - p[d] < n[d]) return 0;
    return 1;
}

/* Blocks of NL planes. Layout cl == 0: x is (nbatch * C planes, P positions) contiguous
   (C == 1); each block is transposed into lanes scratch and back. cl == 1 (channels last): x
   is (nbatch, P, C) contiguous; a block of NL channels is used in place (a last, partial one
   goes through scratch). */
typedef struct { i64 P, PO, C, planes, cb, nblk; int cl; } plan_SUF;

typedef struct {
    i64 in, out;           /* offset of the block's first element in x / gx and in y, lse, gy */
    i64 qs, ls_in, ls_out; /* element stride between positions, between lanes in x / y */
    int nl;                /* live lanes (planes) in this block */
} block_SUF;

static plan_SUF plan_make_SUF(i64 nbatch, i64 C, int cl, const i64 *g) {
    plan_SUF p;
    p.P = g[0] * g[1] * g[2];
    p.PO = g[3] * g[4] * g[5];
    p.C = C;
    p.planes = nbatch * C;
    p.cl = cl;
    p.cb = (C + NL - 1) / NL;
    p.nblk = cl ? nbatch * p.cb : (nbatch * C + NL - 1) / NL;
    return p;
}

static block_SUF block_at_SUF(const plan_SUF *p, i64 b) {
    block_SUF k;
    if (p->cl) {
        i64 n = b / p->cb, c0 = (b % p->cb) * NL;
        k.nl = p->C - c0 < NL ? (int)(p->C - c0) : NL;
        k.in = n * p->P * p->C + c0, k.out = n * p->PO * p->C + c0;
        k.qs = p->C, k.ls_in = 1, k.ls_out = 1;
    } else {
        i64 p0 = b * NL;
        k.nl = p->planes - p0 < NL ? (int)(p->planes - p0) : NL;
        k.in = p0 * p->P, k.out = p0 * p->PO;
        k.qs = 1, k.ls_in = p->P, k.ls_out = p->PO;
    }
    return k;
}

void softpool_fwd_SUF(const T *x, T *y, T *lse, i64 nbatch, i64 C, int cl, int nthreads,
                      const i64 *g) {
    const plan_SUF pl = plan_make_SUF(nbatch, C, cl, g);
    const geo_SUF G = geo_make_SUF(g);
    const i64 P = pl.P, PO = pl.PO;
    #pragma omp parallel num_threads(nthreads)
    {
    i64 *taps = malloc(sizeof(i64) * 2 * G.ntap);
    T *xs = NULL, *ys = NULL, *ls = NULL, *E = NULL; /* this thread's scratch, on first need */
    #pragma omp for schedule(static)
    for (i64 b = 0; b < pl.nblk; b++) {
        block_SUF k = block_at_SUF(&pl, b);
        const T *xb = x + k.in;
        T *yb = y + k.out, *lb = lse + k.out;
        int direct = cl && k.nl == NL; /* channels last, a full block: in place */
        if (!direct) {
            if (!xs) {
                xs = malloc(sizeof(T) * NL * (P + 2 * PO));
                ys = xs + NL * P, ls = ys + NL * PO;
            }
            gather_SUF(xb, k.qs, k.ls_in, P, k.nl, xs);
        }
        const T *xk = direct ? xb : xs;
        T *yk = direct ? yb : ys, *lk = direct ? lb : ls;
        const i64 xst = direct ? C : NL;
        VT c;
        if (!G.disjoint && shared_shift_SUF(xk, xst, P, &c)) {
            if (!E) E = malloc(sizeof(T) * 2 * NL * P);
            fwd_block_shared_SUF(xk, xst, yk, lk, xst, &G, taps, E, c);
        } else {
            fwd_block_SUF(xk, xst, yk, lk, xst, &G, taps);
        }
        if (!direct) {
            scatter_SUF(ys, PO, k.nl, yb, k.qs, k.ls_out);
            scatter_SUF(ls, PO, k.nl, lb, k.qs, k.ls_out);
        }
    }
    free(xs);
    free(E);
    free(taps);
    }
}

void softpool_bwd_SUF(const T *x, const T *y, const T *lse, const T *gy, T *gx, i64 nbatch,
                      i64 C, int cl, int nthreads, const i64 *g) {
    const plan_SUF pl = plan_make_SUF(nbatch, C, cl, g);
    const geo_SUF G = geo_make_SUF(g);
    const i64 P = pl.P, PO = pl.PO;
    const int zero_first = !(G.disjoint && covers_all_SUF(&G));
    #pragma omp parallel num_threads(nthreads)
    {
    i64 *taps = malloc(sizeof(i64) * 2 * G.ntap);
    T *xs = NULL, *gs = NULL, *ys = NULL, *ls = NULL, *gys = NULL, *A = NULL;
    #pragma omp for schedule(static)
    for (i64 b = 0; b < pl.nblk; b++) {
        block_SUF k = block_at_SUF(&pl, b);
        const T *xb = x + k.in, *yb = y + k.out, *lb = lse + k.out, *gyb = gy + k.out;
        T *gxb = gx + k.in;
        int direct = cl && k.nl == NL;
        if (!direct) {
            if (!xs) {
                xs = malloc(sizeof(T) * NL * (2 * P + 3 * PO));
                gs = xs + NL * P, ys = gs + NL * P, ls = ys + NL * PO, gys = ls + NL * PO;
            }
            gather_SUF(xb, k.qs, k.ls_in, P, k.nl, xs);
            gather_SUF(yb, k.qs, k.ls_out, PO, k.nl, ys);
            gather_SUF(lb, k.qs, k.ls_out, PO, k.nl, ls);
            gather_SUF(gyb, k.qs, k.ls_out, PO, k.nl, gys);
        }
        const T *xk = direct ? xb : xs, *yk = direct ? yb : ys, *lk = direct ? lb : ls;
        const T *gk = direct ? gyb : gys;
        T *gxk = direct ? gxb : gs;
        const i64 st = direct ? C : NL;
        VT c;
        if (!G.disjoint && shared_shift_SUF(xk, st, P, &c)) { /* the forward's choice too */
            if (!A) A = malloc(sizeof(T) * 2 * NL * P);
            bwd_block_shared_SUF(xk, yk, lk, gk, st, gxk, st, &G, taps, A, c);
        } else {
            if (zero_first)
                for (i64 q = 0; q < P; q++) st_SUF(gxk + q * st, (VT){0});
            bwd_block_SUF(xk, yk, lk, gk, st, gxk, st, &G, taps);
        }
        if (!direct) scatter_SUF(gs, P, k.nl, gxb, k.qs, k.ls_in);
    }
    free(xs);
    free(A);
    free(taps);
    }
}
"""
_TYPES = {
    "f32": {"T": "float", "VT": "vf", "NL": "8", "EXPV": "exp_neg_vf", "LOGV": "log_pos_vf",
            "MAXV": "max_vf", "MINV": "min_vf", "SELV": "sel_vf", "VI": "vfi",
            "TMAX": "3.402823466e+38f", "SHIFT": "40.0f"},
    "f64": {"T": "double", "VT": "vd", "NL": "4", "EXPV": "exp_neg_vd", "LOGV": "log_pos_vd",
            "MAXV": "max_vd", "MINV": "min_vd", "SELV": "sel_vd", "VI": "vdi",
            "TMAX": "1.7976931348623157e+308", "SHIFT": "40.0"},
}



def _instantiate(suffix: str) -> str:
    src = re.sub(r"_SUF\b", f"_{suffix}", _KERNELS)
    for name, val in _TYPES[suffix].items():
        src = re.sub(rf"\b{name}\b", val, src)
    return src


C_SOURCE = C_PRELUDE + _instantiate("f32") + _instantiate("f64")

#: Input layouts the kernel reads (see the module docstring).
LAYOUTS = ("planes", "channels_last")
#: Planes per vector (float32); a channels-last input with fewer channels is better served
#: as planes (the caller decides, see :func:`registry.pools.softpool`).
LANES = 8

_FLAG_SETS = (
    ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fno-trapping-math"],
)

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_error: str | None = None
_P = ctypes.c_void_p
_I64, _INT = ctypes.c_int64, ctypes.c_int


def _cache_dir() -> Path:
    root = os.environ.get("POOLREPRO_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "poolrepro")
    return Path(root)


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "flags")):
                    return line
    except OSError:
        pass
    return platform.processor()


def _build() -> ctypes.CDLL:
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise RuntimeError("no C compiler (cc/gcc) on PATH")
    errors = []
    for flags in _FLAG_SETS:
        key = hashlib.sha256(
            "\n".join([C_SOURCE, cc, " ".join(flags), platform.machine(), _cpu_id()]).encode()
        ).hexdigest()[:16]
        out = _cache_dir() / f"softpool_cpu_{key}.so"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
                src = Path(tmp) / "softpool_cpu.c"
                src.write_text(C_SOURCE)
                so = Path(tmp) / "softpool_cpu.so"
                cmd = [cc, "-std=gnu99", "-shared", "-fPIC", *flags, str(src), "-o", str(so)]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode != 0:
                    errors.append(res.stderr.strip()[-500:])
                    continue
                os.replace(so, out)  # atomic: concurrent builders do not see half a file
        lib = ctypes.CDLL(str(out))
        for suf in ("f32", "f64"):
            fwd = getattr(lib, f"softpool_fwd_{suf}")
            fwd.argtypes = [_P] * 3 + [_I64, _I64, _INT, _INT, _P]
            fwd.restype = None
            bwd = getattr(lib, f"softpool_bwd_{suf}")
            bwd.argtypes = [_P] * 5 + [_I64, _I64, _INT, _INT, _P]
            bwd.restype = None
        return lib
    raise RuntimeError("could not compile the SoftPool CPU kernel: " + " | ".join(errors))


def load() -> ctypes.CDLL | None:
    """The compiled library, building it on first call; None if that failed (see :func:`error`)."""
    global _lib, _error
    if _lib is None and _error is None:
        with _lock:
            if _lib is None and _error is None:
                try:
                    _lib = _build()
                except Exception as exc:  # any failure means: use the reference path
                    _error = f"{type(exc).__name__}: {exc}"
    return _lib


def available() -> bool:
    return load() is not None


def error() -> str | None:
    """Why the kernel is unavailable (None when it is)."""
    load()
    return _error


@dataclasses.dataclass(frozen=True)
class Plan:
    """The kernel's arguments for one input shape and window geometry (made once, cached by
    :func:`plan`). ``layout``: ``"planes"`` — the input is contiguous and every leading index
    (sample, channel) is one plane; ``"channels_last"`` — the input (N, C, *spatial) has
    channels-last memory (N, *spatial, C). ``yshape`` is the output's shape; its memory is
    laid out like the input's (``ymem`` then permuted by ``perm``)."""

    layout: str
    nb: int
    channels: int
    blocks: int
    geo: Any  # ctypes int64[15]: spatial, out, kernel, stride, padding (3 each)
    ymem: tuple[int, ...]
    perm: tuple[int, ...] | None
    gperm: tuple[int, ...] | None  # (N, C, *out) -> (N, *out, C)


@functools.lru_cache(maxsize=512)
def plan(shape: tuple[int, ...], dim: int, k, s, p, out, layout: str) -> Plan:
    """``k, s, p, out``: 3-tuples (1D and 2D padded with unit dims in front)."""
    spatial = (1,) * (3 - dim) + tuple(shape[-dim:])
    out_user = tuple(out[3 - dim:])
    if layout == "planes":
        nb, c = math.prod(shape[:-dim]), 1
        ymem, perm, gperm = (*shape[:-dim], *out_user), None, None
    elif layout == "channels_last":
        if len(shape) != dim + 2:
            raise ValueError("a channels-last input must be (N, C, *spatial)")
        nb, c = shape[0], shape[1]
        ymem = (shape[0], *out_user, shape[1])
        perm = (0, dim + 1, *range(1, dim + 1))
        gperm = (0, *range(2, dim + 2), 1)
    else:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    geo = (ctypes.c_int64 * 15)(*spatial, *out, *k, *s, *p)
    blocks = nb * -(-c // LANES) if layout == "channels_last" else -(-nb // LANES)
    return Plan(layout, nb, c, blocks, geo, ymem, perm, gperm)


def _threads(pl: Plan) -> int:
    return max(1, min(torch.get_num_threads(), pl.blocks))


def forward(x: torch.Tensor, pl: Plan) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` float32/float64 in the plan's layout (contiguous, or channels-last memory).
    Returns ``(y, lse)``: the output (shape ``pl.ymem`` permuted by ``pl.perm``: the user's
    (N, C, *out), channels-last memory for a channels-last input) and the log-sum-exp of each
    window (internal, same memory order)."""
    lib = load()
    assert lib is not None and x.dtype in (torch.float32, torch.float64)
    ym = x.new_empty(pl.ymem)
    lse = torch.empty_like(ym)
    fn = lib.softpool_fwd_f32 if x.dtype == torch.float32 else lib.softpool_fwd_f64
    fn(x.data_ptr(), ym.data_ptr(), lse.data_ptr(), pl.nb, pl.channels,
       int(pl.layout == "channels_last"), _threads(pl), pl.geo)
    return (ym if pl.perm is None else ym.permute(pl.perm)), lse


def backward(x: torch.Tensor, y: torch.Tensor, lse: torch.Tensor, gy: torch.Tensor,
             pl: Plan) -> torch.Tensor:
    """Gradient of SoftPool w.r.t. ``x``, laid out like ``x``; ``y, lse`` from :func:`forward`,
    ``gy`` the gradient of ``y`` (any strides, ``y``'s dtype)."""
    lib = load()
    assert lib is not None and gy.dtype == y.dtype
    g = gy.contiguous() if pl.gperm is None else gy.permute(pl.gperm).contiguous()
    gx = torch.empty_like(x)  # keeps x's (channels-last) strides
    fn = lib.softpool_bwd_f32 if x.dtype == torch.float32 else lib.softpool_bwd_f64
    fn(x.data_ptr(), y.data_ptr(), lse.data_ptr(), g.data_ptr(), gx.data_ptr(), pl.nb,
       pl.channels, int(pl.layout == "channels_last"), _threads(pl), pl.geo)
    return gx
