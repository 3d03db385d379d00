"""SoftPool's fused CPU path: a small hand-written C kernel, compiled on first use, called
through :mod:`ctypes` (no torch headers, so it builds in about a second).

Why C and not ``torch.compile``: inductor's code for the strided window reads reached only
~1.7× of ``avg_pool2d`` on a 2-core CPU and cost ~20 s of compile time per shape; this kernel
streams each input row once per window row, keeps the window maximum, the exponential sum and
the weighted sum in output-row registers and never writes an exponential to memory.

The kernel works on contiguous ``(planes, D, H, W)`` buffers (1D and 2D are 3D with unit
dims) in float32 or float64; the caller upcasts float16/bfloat16 to float32. Padded window
positions are *excluded* (the window is clipped to the input), exactly like ``-inf`` padding
in max pooling. ``exp`` is evaluated only at ``t = x - max <= 0`` by a branch-free
Cody-Waite/Cephes-style routine that gcc vectorises (AVX2 here); arguments below the
underflow limit give exactly 0.

Parallelism: an OpenMP loop over planes with ``torch.get_num_threads()`` threads. The library
links ``libgomp.so.1``, which the loader resolves to the copy torch already loaded, so it
shares torch's OpenMP thread pool (two runtimes would spin against each other on a small
CPU). Without ``-fopenmp`` support it builds single-threaded.

Build cache: ``$POOLREPRO_CACHE`` or ``~/.cache/poolrepro``, keyed by a hash of the source,
the flags and the CPU model. If no C compiler works, :func:`available` is False and SoftPool
uses its reference path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

C_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <stdlib.h>

typedef int64_t i64;

/* exp(t) for t <= 0, float: round t*log2(e) to n, r = t - n*ln2 (two-part ln2), a degree-7
   polynomial for e^r on |r| <= ln2/2 (Cephes expf coefficients), times 2^n built in the
   exponent bits. t below -87 (2^n would be subnormal) returns exactly 0. */
static inline float exp_neg_f(float t) {
    const float lo = -87.0f;
    float tc = t < lo ? lo : t;
    float n = __builtin_rintf(tc * 1.44269504088896341f);
    float r = tc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return t < lo ? 0.0f : p * scale;
}

/* exp(t) for t <= 0, double: Cephes' rational form e^r = 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2));
   2^n through the 1.5*2^52 rounding constant so that it stays in vectorisable int64 ops.
   t below -708 returns exactly 0. */
static inline double exp_neg_d(double t) {
    const double lo = -708.0;
    double tc = t < lo ? lo : t;
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    double z = tc * 1.4426950408889634074 + magic;
    double n = z - magic;
    double r = tc - n * 6.93145751953125e-1;
    r = r - n * 1.42860682030941723212e-6;
    double rr = r * r;
    double px = r * ((1.26177193074810590878e-4 * rr + 3.02994407707441961300e-2) * rr
                     + 9.99999999999999999910e-1);
    double qx = ((3.00198505138664455042e-6 * rr + 2.52448340349684104192e-3) * rr
                 + 2.27265548208155028766e-1) * rr + 2.00000000000000000009e0;
    double e = 1.0 + 2.0 * px / (qx - px);
    int64_t zb, mb;
    memcpy(&zb, &z, sizeof zb);
    memcpy(&mb, &magic, sizeof mb);
    int64_t bits = ((zb - mb) + 1023) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return t < lo ? 0.0 : e * scale;
}

/* log(x) for positive normal x (window sums), float: x = 2^e * f with f in [sqrt(1/2), sqrt(2)),
   log f by Cephes' logf polynomial, branch-free so that gcc vectorises it. */
static inline float log_pos_f(float x) {
    int32_t b;
    memcpy(&b, &x, sizeof b);
    int32_t e = ((b >> 23) & 0xff) - 127;
    int32_t mb = (b & 0x7fffff) | 0x3f800000;
    float f;
    memcpy(&f, &mb, sizeof f);
    int32_t big = f > 1.41421356237f;
    f = big ? f * 0.5f : f;
    float ef = (float)(e + big);
    f = f - 1.0f;
    float z = f * f;
    float y = 7.0376836292e-2f;
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

static inline double log_pos_d(double x) { return __builtin_log(x); }

/* Output positions [lo, hi) whose window tap j lands inside [0, L). */
static void tap_range(i64 j, i64 L, i64 O, i64 s, i64 p, i64 *lo, i64 *hi) {
    i64 a = p - j; /* need o*s >= a */
    i64 l = a <= 0 ? 0 : (a + s - 1) / s;
    i64 b = L - 1 + p - j; /* need o*s <= b */
    i64 h = b < 0 ? 0 : b / s + 1;
    if (h > O) h = O;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}
"""

# One kernel pair, instantiated for float and double by textual substitution of
# T / SUF / EXP / LOG / TMAX / SHIFT (see C_SOURCE below).
_KERNELS = r"""
/* Forward over planes [0, planes): y = m + sum(e (x - m)) / sum(e), lse = m + log(sum(e)),
   e = exp(x - m), m = window max (padded taps excluded by clipping the window).
   Fast rows (windows overlapping along W): when every window max in an output row is within
   SHIFT of the row's largest window max c, the exponentials are taken once per input element
   of the row band against the shared shift c (contiguous, and shared by overlapping
   windows); otherwise each window uses its own max. Both are exact up to rounding (terms
   below e^-47 relative are dropped). */
void softpool_fwd_SUF(const T *restrict x, T *restrict y, T *restrict lse,
                      i64 planes, int nthreads, const i64 *g) {
    const i64 D = g[0], H = g[1], W = g[2], OD = g[3], OH = g[4], OW = g[5];
    const i64 KD = g[6], KH = g[7], KW = g[8], SD = g[9], SH = g[10], SW = g[11];
    const i64 PD = g[12], PH = g[13], PW = g[14];
    i64 lo[64], hi[64];
    for (i64 j = 0; j < KW; j++) tap_range(j, W, OW, SW, PW, &lo[j], &hi[j]);
    #pragma omp parallel num_threads(nthreads)
    {
    T *mo = malloc(sizeof(T) * (2 * OW + 2 * W)); /* row scratch: max, exp sum, e, e*d */
    T *so = mo + OW, *er = so + OW, *xe = er + W;
    #pragma omp for schedule(static)
    for (i64 pl = 0; pl < planes; pl++) {
        const T *xp = x + pl * D * H * W;
        for (i64 od = 0; od < OD; od++) {
            i64 d0 = od * SD - PD, dlo = d0 < 0 ? 0 : d0, dhi = d0 + KD > D ? D : d0 + KD;
            for (i64 oh = 0; oh < OH; oh++) {
                i64 h0 = oh * SH - PH, hlo = h0 < 0 ? 0 : h0, hhi = h0 + KH > H ? H : h0 + KH;
                i64 o = ((pl * OD + od) * OH + oh) * OW;
                T *restrict yo = y + o, *restrict lo_ = lse + o;
                for (i64 ow = 0; ow < OW; ow++) { mo[ow] = -(TMAX); so[ow] = 0; yo[ow] = 0; }
                for (i64 id = dlo; id < dhi; id++)
                    for (i64 ih = hlo; ih < hhi; ih++) {
                        const T *restrict row = xp + (id * H + ih) * W - PW;
                        for (i64 j = 0; j < KW; j++) {
                            const T *restrict rj = row + j;
                            for (i64 ow = lo[j]; ow < hi[j]; ow++) {
                                T v = rj[ow * SW];
                                mo[ow] = v > mo[ow] ? v : mo[ow];
                            }
                        }
                    }
                T c = mo[0];
                int fast = KW > SW; /* shared exponentials only pay when windows overlap */
                for (i64 ow = 1; ow < OW && fast; ow++) c = mo[ow] > c ? mo[ow] : c;
                for (i64 ow = 0; ow < OW && fast; ow++) fast &= mo[ow] >= c - SHIFT;
                if (fast) {
                    for (i64 id = dlo; id < dhi; id++)
                        for (i64 ih = hlo; ih < hhi; ih++) {
                            const T *restrict xr = xp + (id * H + ih) * W;
                            for (i64 iw = 0; iw < W; iw++) {
                                T d = xr[iw] - c;
                                d = d > 0 ? 0 : d; /* only inputs outside every window */
                                d = d < -(TMAX) ? -(TMAX) : d;
                                T e = EXP(d);
                                er[iw] = e;
                                xe[iw] = e * d;
                            }
                            for (i64 j = 0; j < KW; j++) {
                                const T *restrict ej = er - PW + j, *restrict xj = xe - PW + j;
                                for (i64 ow = lo[j]; ow < hi[j]; ow++) {
                                    so[ow] += ej[ow * SW];
                                    yo[ow] += xj[ow * SW];
                                }
                            }
                        }
                    for (i64 ow = 0; ow < OW; ow++) {
                        lo_[ow] = c + LOG(so[ow]);
                        yo[ow] = c + yo[ow] / so[ow];
                    }
                } else {
                    for (i64 id = dlo; id < dhi; id++)
                        for (i64 ih = hlo; ih < hhi; ih++) {
                            const T *restrict row = xp + (id * H + ih) * W - PW;
                            for (i64 j = 0; j < KW; j++) {
                                const T *restrict rj = row + j;
                                for (i64 ow = lo[j]; ow < hi[j]; ow++) {
                                    T d = rj[ow * SW] - mo[ow];
                                    d = d < -(TMAX) ? -(TMAX) : d; /* -inf on overflow */
                                    T e = EXP(d);
                                    so[ow] += e;
                                    yo[ow] += e * d;
                                }
                            }
                        }
                    for (i64 ow = 0; ow < OW; ow++) {
                        lo_[ow] = mo[ow] + LOG(so[ow]);
                        yo[ow] = mo[ow] + yo[ow] / so[ow];
                    }
                }
            }
        }
    }
    free(mo);
    }
}

/* Backward: gx_i = sum over windows w containing i of g_w exp(x_i - lse_w) (1 + x_i - y_w).
   Fast rows (overlap along W, every lse in the output row within SHIFT of the largest, c) use
   exp(x_i - lse_w) = exp(x_i - c) / exp(lse_w - c): one exponential per input of the band
   and one per output instead of one per (window, tap). */
void softpool_bwd_SUF(const T *restrict x, const T *restrict y, const T *restrict lse,
                      const T *restrict gy, T *restrict gx, i64 planes, int nthreads,
                      const i64 *g) {
    const i64 D = g[0], H = g[1], W = g[2], OD = g[3], OH = g[4], OW = g[5];
    const i64 KD = g[6], KH = g[7], KW = g[8], SD = g[9], SH = g[10], SW = g[11];
    const i64 PD = g[12], PH = g[13], PW = g[14];
    i64 lo[64], hi[64];
    for (i64 j = 0; j < KW; j++) tap_range(j, W, OW, SW, PW, &lo[j], &hi[j]);
    #pragma omp parallel num_threads(nthreads)
    {
    T *gq = malloc(sizeof(T) * (2 * OW + W)); /* row scratch: scaled g, 1 - y, e */
    T *c1 = gq + OW, *er = c1 + OW;
    #pragma omp for schedule(static)
    for (i64 pl = 0; pl < planes; pl++) {
        const T *xp = x + pl * D * H * W;
        T *gxp = gx + pl * D * H * W;
        memset(gxp, 0, sizeof(T) * D * H * W);
        for (i64 od = 0; od < OD; od++) {
            i64 d0 = od * SD - PD, dlo = d0 < 0 ? 0 : d0, dhi = d0 + KD > D ? D : d0 + KD;
            for (i64 oh = 0; oh < OH; oh++) {
                i64 h0 = oh * SH - PH, hlo = h0 < 0 ? 0 : h0, hhi = h0 + KH > H ? H : h0 + KH;
                i64 o = ((pl * OD + od) * OH + oh) * OW;
                const T *restrict lo_ = lse + o;
                T c = lo_[0];
                int fast = KW > SW; /* shared exponentials only pay when windows overlap */
                for (i64 ow = 1; ow < OW && fast; ow++) c = lo_[ow] > c ? lo_[ow] : c;
                for (i64 ow = 0; ow < OW && fast; ow++) fast &= lo_[ow] >= c - SHIFT;
                for (i64 ow = 0; ow < OW; ow++) {
                    c1[ow] = 1 - y[o + ow];
                    gq[ow] = fast ? gy[o + ow] / EXP(lo_[ow] - c) : gy[o + ow];
                }
                for (i64 id = dlo; id < dhi; id++)
                    for (i64 ih = hlo; ih < hhi; ih++) {
                        const T *restrict xr = xp + (id * H + ih) * W;
                        const T *restrict row = xr - PW;
                        T *restrict grow = gxp + (id * H + ih) * W - PW;
                        if (fast) {
                            for (i64 iw = 0; iw < W; iw++) {
                                T d = xr[iw] - c;
                                er[iw] = EXP(d > 0 ? 0 : d);
                            }
                            for (i64 j = 0; j < KW; j++) {
                                const T *restrict rj = row + j, *restrict ej = er - PW + j;
                                T *restrict gj = grow + j;
                                for (i64 ow = lo[j]; ow < hi[j]; ow++) {
                                    T e = ej[ow * SW];
                                    T t = gq[ow] * e * (c1[ow] + rj[ow * SW]);
                                    gj[ow * SW] += e > 0 ? t : 0; /* 1 + x - y may overflow */
                                }
                            }
                        } else {
                            for (i64 j = 0; j < KW; j++) {
                                const T *restrict rj = row + j;
                                T *restrict gj = grow + j;
                                for (i64 ow = lo[j]; ow < hi[j]; ow++) {
                                    T v = rj[ow * SW];
                                    T w = EXP(v - lo_[ow]);
                                    T t = gq[ow] * w * (c1[ow] + v);
                                    gj[ow * SW] += w > 0 ? t : 0; /* 1 + x - y may overflow */
                                }
                            }
                        }
                    }
            }
        }
    }
    free(gq);
    }
}
"""

_TYPES = {
    "f32": {"T": "float", "EXP": "exp_neg_f", "LOG": "log_pos_f", "TMAX": "3.402823466e+38f",
            "SHIFT": "40.0f"},
    "f64": {"T": "double", "EXP": "exp_neg_d", "LOG": "log_pos_d",
            "TMAX": "1.7976931348623157e+308", "SHIFT": "40.0"},
}


def _instantiate(suffix: str) -> str:
    src = _KERNELS.replace("_SUF(", f"_{suffix}(")
    for name, val in _TYPES[suffix].items():
        src = re.sub(rf"\b{name}\b", val, src)
    return src


C_SOURCE = C_SOURCE + _instantiate("f32") + _instantiate("f64")

#: Widest window along W that the kernel's fixed tap tables hold.
MAX_KW = 64

_FLAG_SETS = (
    ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"],
    ["-O3", "-fno-math-errno", "-fno-trapping-math"],
)

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_error: str | None = None


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
                cmd = [cc, "-std=c99", "-shared", "-fPIC", *flags, str(src), "-o", str(so)]
                res = subprocess.run(cmd, capture_output=True, text=True)
                if res.returncode != 0:
                    errors.append(res.stderr.strip()[-500:])
                    continue
                os.replace(so, out)  # atomic: concurrent builders do not see half a file
        lib = ctypes.CDLL(str(out))
        for suf in ("f32", "f64"):
            fwd = getattr(lib, f"softpool_fwd_{suf}")
            fwd.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_int64, ctypes.c_int,
                                                    ctypes.c_void_p]
            fwd.restype = None
            bwd = getattr(lib, f"softpool_bwd_{suf}")
            bwd.argtypes = [ctypes.c_void_p] * 5 + [ctypes.c_int64, ctypes.c_int,
                                                    ctypes.c_void_p]
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


def _threads(planes: int) -> int:
    return max(1, min(torch.get_num_threads(), planes))


def _geometry(x: torch.Tensor, out: tuple[int, ...], k, s, p) -> torch.Tensor:
    return torch.tensor([*x.shape[1:], *out, *k, *s, *p], dtype=torch.int64)


def forward(x: torch.Tensor, out: tuple[int, int, int], k, s, p):
    """``x``: contiguous (planes, D, H, W) float32/float64. Returns ``(y, lse)`` of shape
    (planes, OD, OH, OW) with ``lse`` = log-sum-exp of each window."""
    lib = load()
    assert lib is not None and x.is_contiguous() and x.dtype in (torch.float32, torch.float64)
    if k[2] > MAX_KW:
        raise ValueError(f"fused CPU SoftPool supports windows up to {MAX_KW} wide")
    planes = x.shape[0]
    y = x.new_empty((planes, *out))
    lse = torch.empty_like(y)
    geo = _geometry(x, out, k, s, p)
    fn = lib.softpool_fwd_f32 if x.dtype == torch.float32 else lib.softpool_fwd_f64
    fn(x.data_ptr(), y.data_ptr(), lse.data_ptr(), planes, _threads(planes), geo.data_ptr())
    return y, lse


def backward(x: torch.Tensor, y: torch.Tensor, lse: torch.Tensor, gy: torch.Tensor, k, s, p):
    """Gradient of SoftPool w.r.t. ``x`` (same layout rules as :func:`forward`)."""
    lib = load()
    assert lib is not None
    gy = gy.contiguous()
    planes, out = x.shape[0], tuple(y.shape[1:])
    gx = torch.empty_like(x)
    geo = _geometry(x, out, k, s, p)
    fn = lib.softpool_bwd_f32 if x.dtype == torch.float32 else lib.softpool_bwd_f64
    fn(x.data_ptr(), y.data_ptr(), lse.data_ptr(), gy.data_ptr(), gx.data_ptr(), planes,
       _threads(planes), geo.data_ptr())
    return gx
