"""kernel_bench: time and memory of every registered pool against torch's avg/max pooling.

All pools run on the *same* input tensor in the same process, interleaved repetition by
repetition (A, B, C, A, B, C, ...; the order rotates each repetition so that no op always
runs right after the same neighbour), and are reported as the **median over repetitions**
of the paired ratio to ``avg_pool`` (or ``max_pool``) measured in the same repetition. Load
from other processes hits every op of a repetition alike, and the median discards the
repetitions it hit hardest, so seeds agree. The claim "SoftPool costs about as much as avg
pooling" (Stergiou et al., ICCV 2021, Sec. 4 latency/memory tables) becomes
``softpool.<class>.worst_fwdbwd_ratio_vs_avg <= 1.3``.

Shapes: :data:`SHAPES` (the pool inputs of the papers' models, and the issue-9 grid; each
has a shape ``class``), ``params.scale`` scales the batch:

==============  ==========================  ======================================  =========
name            shape                       window                                  class
==============  ==========================  ======================================  =========
cifar           256×64×32×32, 2D            kernel 2 (CIFAR ResNet/All-CNN pool)    cifar
cifar_k2        64×64×32×32, 2D             kernel 2                                cifar
cifar_c128      64×128×16×16, 2D            kernel 2                                cifar
resnet_stem     32×64×112×112, 2D           kernel 3, stride 2, pad 1               stem
stem_k2         16×64×112×112, 2D           kernel 2                                stem
stem_k3s2p1     16×64×112×112, 2D           kernel 3, stride 2, pad 1               stem
overlap_k3s2    32×64×56×56, 2D             kernel 3, stride 2                      overlap
overlap_k3s1p1  32×64×28×28, 2D             kernel 3, stride 1, pad 1               overlap
overlap_odd     32×96×27×27, 2D             kernel 3, stride 2 (AlexNet-style)      overlap
late_14         16×256×14×14, 2D            kernel 2                                late
late_7          32×512×7×7, 2D              kernel 2 (odd: last row unused)         late
late_4          128×512×4×4, 2D             kernel 2 (VGG on CIFAR, last pool)      late
late_15_k3s2    16×256×15×15, 2D            kernel 3, stride 2, pad 1               late
cl_cifar_k2     64×64×32×32, channels_last  kernel 2                                cl
cl_late_14      16×256×14×14, channels_last kernel 2                                cl
1d_k2           32×64×1024, 1D              kernel 2                                1d
1d_k3s2p1       32×128×256, 1D              kernel 3, stride 2, pad 1               1d
video           8×64×8×56×56, 3D            kernel 2 (3D-ResNet pool)               3d
3d_k2           4×64×8×56×56, 3D            kernel 2                                3d
3d_k3s2p1       4×64×8×28×28, 3D            kernel 3, stride 2, pad 1               3d
==============  ==========================  ======================================  =========

``params`` (defaults in :data:`DEFAULTS`):

* ``shapes`` — names from :data:`SHAPES`, ``"grid"`` (every issue-9 grid shape: :data:`GRID`),
  a comma string of those, or a dict ``name -> {"shape": [...], "dim": 2, "kernel_size": 2,
  "stride": null, "padding": 0, "layout": "contiguous" | "channels_last", "cls": "..."}``;
  ``scale`` — batch multiplier (rounded, at least 1); ``spatial_scale`` — H/W/T multiplier.
* ``pools`` — registered pool names (default: every ``kind="pool"`` entry; ``avg`` and ``max``
  are always timed, they are the baselines).
* ``threads`` — thread counts to time every shape at (list or int; default: the run's own).
* ``repeats`` (interleaved, timed), ``warmup`` (untimed repetitions before them),
  ``yardstick_repeats`` (how many of the repeats also time the slow plain-torch SoftPool
  yardsticks), ``stat`` (``median``, the default, or ``min``), ``dtype``
  (``float32``/``float16``/``bfloat16``), ``fwd`` (also time forward alone; default true),
  ``overhead_calls`` (calls per round of the per-call overhead measurement; 0 skips it).

Metrics, per pool ``P`` (named ``<pool><dim>d``, e.g. ``softpool2d``), shape ``S`` and
thread count ``N``, under ``P.S_tN.`` (e.g. ``softpool2d.cifar_k2_t2.fwdbwd_ratio_vs_avg``:
three dot-separated parts, as the dashboard reads them): ``fwd_ms``, ``fwdbwd_ms``,
``fwd_ratio_vs_avg``, ``fwdbwd_ratio_vs_avg``, ``fwdbwd_ratio_vs_max``, ``mem_mb``,
``mem_ratio_vs_avg``. Memory is the peak allocated during forward+backward on CUDA; on CPU
(no allocator statistics) it is the bytes an op keeps alive between forward and backward —
its output plus the tensors autograd saves for backward. SoftPool also gets
``softpool_reference`` (plain torch ops, analytic backward) and ``softpool_formula`` (plain
torch formula, autograd) rows and ``softpool<d>d.S_tN.speedup_vs_reference`` /
``speedup_vs_formula``. Per shape class ``K`` (and ``all``), worst over its shapes and thread
counts: ``softpool.K.worst_fwdbwd_ratio_vs_avg``, ``softpool.K.min_speedup_vs_formula``.
``repeats``, ``warmup`` and ``yardstick_repeats`` are metrics too, so a verdict can state its
repetition count; ``softpool2d.call_overhead_us`` and ``avg2d.call_overhead_us`` are the
per-call cost of forward+backward on a tiny input (what an op costs before any arithmetic:
Python, autograd, allocation). On CUDA: ``softpool<d>d.S_tN.fwd_gbps``/``fwdbwd_gbps`` and
``..._frac_of_copy`` against a measured device copy (``cuda_copy_gbps``).

Standalone: ``python -m tasks.kernel_bench --shapes grid --threads 1,2`` measures and prints
the grid; ``python -m tasks.kernel_bench --from-jsonl runs.jsonl --tier mini`` prints it from
exported runs (``python -m suite export``), with the misses of the 1.3× target explained.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

import registry
from suite.specs import RunSpec, TaskContext, TaskResult

#: The suite's targets for SoftPool on the CPU (issue 9): fwd+bwd within this factor of
#: avg pooling, and faster than the plain-torch formula, at every grid shape.
TARGET_RATIO_VS_AVG = 1.3
TARGET_SPEEDUP_VS_FORMULA = 1.0


def _s(shape, dim, k, s=None, p=0, cls="", layout="contiguous") -> dict[str, Any]:
    return {"shape": list(shape), "dim": dim, "kernel_size": k, "stride": s, "padding": p,
            "cls": cls, "layout": layout}


SHAPES: dict[str, dict[str, Any]] = {
    # the papers' pool inputs (kept: earlier runs and claims name them)
    "cifar": _s((256, 64, 32, 32), 2, 2, cls="cifar"),
    "resnet_stem": _s((32, 64, 112, 112), 2, 3, 2, 1, cls="stem"),
    "video": _s((8, 64, 8, 56, 56), 3, 2, cls="3d"),
    # the issue-9 grid
    "cifar_k2": _s((64, 64, 32, 32), 2, 2, cls="cifar"),
    "cifar_c128": _s((64, 128, 16, 16), 2, 2, cls="cifar"),
    "stem_k2": _s((16, 64, 112, 112), 2, 2, cls="stem"),
    "stem_k3s2p1": _s((16, 64, 112, 112), 2, 3, 2, 1, cls="stem"),
    "overlap_k3s2": _s((32, 64, 56, 56), 2, 3, 2, cls="overlap"),
    "overlap_k3s1p1": _s((32, 64, 28, 28), 2, 3, 1, 1, cls="overlap"),
    "overlap_odd": _s((32, 96, 27, 27), 2, 3, 2, cls="overlap"),
    "late_14": _s((16, 256, 14, 14), 2, 2, cls="late"),
    "late_7": _s((32, 512, 7, 7), 2, 2, cls="late"),
    "late_4": _s((128, 512, 4, 4), 2, 2, cls="late"),
    "late_15_k3s2": _s((16, 256, 15, 15), 2, 3, 2, 1, cls="late"),
    "cl_cifar_k2": _s((64, 64, 32, 32), 2, 2, cls="cl", layout="channels_last"),
    "cl_late_14": _s((16, 256, 14, 14), 2, 2, cls="cl", layout="channels_last"),
    "1d_k2": _s((32, 64, 1024), 1, 2, cls="1d"),
    "1d_k3s2p1": _s((32, 128, 256), 1, 3, 2, 1, cls="1d"),
    "3d_k2": _s((4, 64, 8, 56, 56), 3, 2, cls="3d"),
    "3d_k3s2p1": _s((4, 64, 8, 28, 28), 3, 3, 2, 1, cls="3d"),
}
#: The issue-9 grid: CIFAR, ImageNet stem, overlapping windows, late stage (few pixels, many
#: channels), channels-last memory, and 1D/3D shapes of their own.
GRID = ["cifar_k2", "cifar_c128", "stem_k2", "stem_k3s2p1", "overlap_k3s2", "overlap_k3s1p1",
        "overlap_odd", "late_14", "late_7", "late_4", "late_15_k3s2", "cl_cifar_k2",
        "cl_late_14", "1d_k2", "1d_k3s2p1", "3d_k2", "3d_k3s2p1"]

DEFAULTS: dict[str, Any] = {
    "scale": 0.0625, "spatial_scale": 1.0, "shapes": ["resnet_stem", "cifar", "video"],
    "pools": None, "threads": None, "repeats": 15, "warmup": 2, "yardstick_repeats": 5,
    "stat": "median", "dtype": "float32", "fwd": True, "overhead_calls": 200,
}

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_YARDSTICKS = ("softpool_reference", "softpool_formula")
_LAYOUTS = ("contiguous", "channels_last")


@dataclass
class Case:
    name: str
    shape: tuple[int, ...]
    dim: int
    kernel_size: Any
    stride: Any
    padding: Any
    cls: str = ""
    layout: str = "contiguous"


def _shape_names(shapes: Any) -> list[str] | dict[str, Any]:
    if isinstance(shapes, dict):
        return shapes
    if isinstance(shapes, str):
        shapes = [s.strip() for s in shapes.split(",") if s.strip()]
    names: list[str] = []
    for s in shapes:
        names += GRID if s == "grid" else [s]
    return names


def _cases(params: dict[str, Any]) -> list[Case]:
    shapes = _shape_names(params["shapes"])
    table = dict(shapes) if isinstance(shapes, dict) else {}
    names = list(table) if table else list(shapes)
    cases = []
    for name in names:
        spec = dict(SHAPES.get(name, {}))
        spec.update(table.get(name, {}))
        if "shape" not in spec:
            raise ValueError(f"unknown kernel_bench shape {name!r}; known: "
                             f"{sorted(SHAPES)} or 'grid'")
        layout = spec.get("layout", "contiguous")
        if layout not in _LAYOUTS:
            raise ValueError(f"kernel_bench shape {name!r}: layout must be one of {_LAYOUTS}, "
                             f"got {layout!r}")
        shape = list(spec["shape"])
        dim = int(spec.get("dim", len(shape) - 2))
        shape[0] = max(1, round(shape[0] * float(params["scale"])))
        ss = float(params["spatial_scale"])
        for i in range(len(shape) - dim, len(shape)):
            shape[i] = max(4, round(shape[i] * ss))
        cases.append(Case(name, tuple(shape), dim, spec.get("kernel_size", 2),
                          spec.get("stride"), spec.get("padding", 0),
                          spec.get("cls") or name, layout))
    return cases


def _threads(params: dict[str, Any]) -> list[int]:
    t = params.get("threads")
    if t is None:
        return [torch.get_num_threads()]
    if isinstance(t, str):
        t = [int(a) for a in t.split(",") if a.strip()]
    ts = [int(a) for a in (t if isinstance(t, list | tuple) else [t])]
    if not ts or any(a < 1 for a in ts):
        raise ValueError(f"params.threads must be positive thread counts, got {t!r}")
    return ts


def _pool_names(params: dict[str, Any]) -> list[str]:
    pools = params.get("pools")
    if pools is None:
        return [e.name for e in registry.POOLS if e.meta.get("kind") == "pool"]
    if isinstance(pools, str):
        pools = [p.strip() for p in pools.split(",") if p.strip()]
    return [registry.POOLS.resolve(p) for p in pools]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _saved_bytes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Bytes of the output plus the distinct tensors autograd saves for backward."""
    seen: dict[tuple[int, int], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        seen[(st.data_ptr(), st.nbytes())] = st.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(x)
    return sum(seen.values()) + y.numel() * y.element_size()


def _peak_bytes(fn, x: torch.Tensor, g: torch.Tensor) -> int:
    dev = x.device
    x.grad = None
    _sync(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    fn(x).backward(g)
    _sync(dev)
    x.grad = None
    return torch.cuda.max_memory_allocated(dev) - base


def _copy_gbps(device: torch.device) -> float:
    buf = torch.empty(256 * 2**20 // 4, device=device)
    out = torch.empty_like(buf)
    for _ in range(3):
        out.copy_(buf)
    _sync(device)
    t0 = time.perf_counter()
    n = 20
    for _ in range(n):
        out.copy_(buf)
    _sync(device)
    return 2 * buf.numel() * 4 * n / (time.perf_counter() - t0) / 1e9


def _variants(case: Case, pools: list[str], device: torch.device):
    """(label, module-or-fn) for every pool, plus the SoftPool yardsticks."""
    from registry.pools import softpool as sp

    k, s, p, d = case.kernel_size, case.stride, case.padding, case.dim
    c = case.shape[1]
    out: list[tuple[str, Callable[[torch.Tensor], torch.Tensor]]] = []
    for name in pools:
        m = registry.create_pool(name, kernel_size=k, stride=s, padding=p, dim=d, channels=c)
        out.append((name, m.to(device).train()))
    if "softpool" in pools:
        out.append(("softpool_reference",
                    lambda x: sp._FUNCS[d](x, k, s, p, path="reference")))
        out.append(("softpool_formula",
                    lambda x: sp.soft_pool_formula(x, k, s, p, dim=d)))
    return out


def _input(case: Case, device: torch.device, dtype: torch.dtype, seed: int):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.shape, generator=gen).to(device=device, dtype=dtype)
    if case.layout == "channels_last":  # (N, *spatial, C) memory, as channels-last convs give
        x = x.movedim(1, -1).contiguous().movedim(-1, 1)
    x.requires_grad_(True)
    k, s, p, d = case.kernel_size, case.stride, case.padding, case.dim
    ref = _MAX[d](x.detach(), k, s, p)
    g = torch.randn(ref.shape, generator=gen).to(device=device, dtype=dtype)
    return x, g


def _bench_case(case: Case, pools: list[str], device: torch.device, dtype: torch.dtype,
                params: dict[str, Any], seed: int) -> dict[str, dict[str, float]]:
    """Time every variant on one input; returns per variant ``fwd``/``fwdbwd`` (ms, the
    statistic over repetitions), ``mem`` (MB), and the paired per-repetition ratios
    ``fwd_vs_avg``/``fwdbwd_vs_avg``/``fwdbwd_vs_max`` (statistic over repetitions)."""
    repeats, warmup = int(params["repeats"]), int(params["warmup"])
    yard_reps = min(repeats, int(params["yardstick_repeats"]))
    agg = min if params["stat"] == "min" else statistics.median
    kinds = ("fwd", "fwdbwd") if params.get("fwd", True) else ("fwdbwd",)
    x, g = _input(case, device, dtype, seed)
    k, s, p, d = case.kernel_size, case.stride, case.padding, case.dim
    variants = [("avg", lambda t: _AVG[d](t, k, s, p)), ("max", lambda t: _MAX[d](t, k, s, p))]
    variants += [(n, f) for n, f in _variants(case, pools, device) if n not in ("avg", "max")]
    variants = [(n, f.to(dtype) if isinstance(f, torch.nn.Module) else f) for n, f in variants]

    def fwd(f):
        with torch.no_grad():
            f(x)

    def fwdbwd(f):
        f(x).backward(g)
        x.grad = None

    runs = {"fwd": fwd, "fwdbwd": fwdbwd}
    times: dict[str, dict[str, list[float]]] = {n: {kd: [] for kd in kinds} for n, _ in variants}
    gc_was = gc.isenabled()
    gc.disable()  # no collector pauses inside a timed call
    try:
        for r in range(warmup + repeats):
            live = [v for v in variants
                    if v[0] not in _YARDSTICKS or r < warmup + yard_reps]
            turn = r % len(live)
            for name, f in live[turn:] + live[:turn]:  # rotate: no fixed neighbour
                for kind in kinds:
                    if isinstance(f, torch.nn.Module):
                        f.zero_grad(set_to_none=True)
                    _sync(device)
                    t0 = time.perf_counter()
                    runs[kind](f)
                    _sync(device)
                    if r >= warmup:
                        times[name][kind].append(time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    res: dict[str, dict[str, float]] = {}
    for name, f in variants:
        row = {kind: agg(v) * 1e3 for kind, v in times[name].items()}
        for kind in kinds:  # paired ratios: the same repetition's avg/max time
            row[f"{kind}_vs_avg"] = agg(_paired(times[name][kind], times["avg"][kind]))
        row["fwdbwd_vs_max"] = agg(_paired(times[name]["fwdbwd"], times["max"]["fwdbwd"]))
        row["reps"] = float(len(times[name]["fwdbwd"]))
        if device.type == "cuda":
            row["mem"] = _peak_bytes(f, x, g) / 2**20
        else:
            row["mem"] = _saved_bytes(f, x) / 2**20
        res[name] = row
    if device.type == "cuda" and "softpool" in res:
        n_in = x.numel() * x.element_size()
        n_out = g.numel() * g.element_size()
        # fused forward: read x, write y + lse; backward: read x, y, lse, g, write grad_x
        fb = (n_in + 2 * n_out) + (2 * n_in + 3 * n_out)
        if "fwd" in res["softpool"]:
            res["softpool"]["fwd_gbps"] = (n_in + 2 * n_out) / res["softpool"]["fwd"] * 1e-6
        res["softpool"]["fwdbwd_gbps"] = fb / res["softpool"]["fwdbwd"] * 1e-6
    return res


def _paired(a: list[float], b: list[float]) -> list[float]:
    """Per-repetition ratios a_r / b_r (``a`` may cover only the first repetitions)."""
    return [x / y for x, y in zip(a, b[:len(a)], strict=True)]


def call_overhead_us(device: torch.device, dtype: torch.dtype, calls: int = 200,
                     rounds: int = 7) -> dict[str, float]:
    """Per-call cost (µs) of forward+backward on a tiny input (1×8×4×4, kernel 2), where
    the arithmetic is negligible: what a pool costs before it computes anything (Python,
    autograd, allocation). Interleaved rounds of ``calls`` calls, median per call."""
    from registry.pools import softpool as sp

    x = torch.randn(1, 8, 4, 4, device=device, dtype=dtype, requires_grad=True)
    g = torch.ones(1, 8, 2, 2, device=device, dtype=dtype)
    fns = {"avg2d": lambda: F.avg_pool2d(x, 2).backward(g),
           "softpool2d": lambda: sp.soft_pool2d(x, 2).backward(g)}
    per: dict[str, list[float]] = {n: [] for n in fns}
    for r in range(rounds + 1):
        for name, f in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            _sync(device)
            if r:
                per[name].append((time.perf_counter() - t0) / calls * 1e6)
    x.grad = None
    return {n: statistics.median(v) for n, v in per.items()}


def _metrics(case: Case, threads: int, res: dict[str, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    avg = res["avg"]
    for name, row in res.items():
        key = f"{name}{case.dim}d.{case.name}_t{threads}"
        for kind in ("fwd", "fwdbwd"):
            if kind in row:
                out[f"{key}.{kind}_ms"] = row[kind]
                out[f"{key}.{kind}_ratio_vs_avg"] = row[f"{kind}_vs_avg"]
        out[f"{key}.fwdbwd_ratio_vs_max"] = row["fwdbwd_vs_max"]
        out[f"{key}.mem_mb"] = row["mem"]
        out[f"{key}.mem_ratio_vs_avg"] = row["mem"] / avg["mem"] if avg["mem"] else math.nan
        for extra in ("fwd_gbps", "fwdbwd_gbps"):
            if extra in row:
                out[f"{key}.{extra}"] = row[extra]
    if "softpool" in res:
        key = f"softpool{case.dim}d.{case.name}_t{threads}"
        sp = res["softpool"]["fwdbwd"]
        for yard in ("reference", "formula"):
            if f"softpool_{yard}" in res:
                out[f"{key}.speedup_vs_{yard}"] = res[f"softpool_{yard}"]["fwdbwd"] / sp
    return out


def class_metrics(cases: list[Case], threads: list[int],
                  metrics: dict[str, float]) -> dict[str, float]:
    """Per shape class (and ``all``): SoftPool's worst fwd+bwd ratio to avg pooling and its
    smallest speed-up over the plain formula, over the class's shapes and thread counts."""
    out: dict[str, float] = {}
    groups: dict[str, list[Case]] = {}
    for c in cases:
        groups.setdefault(c.cls, []).append(c)
        groups.setdefault("all", []).append(c)
    for cls, members in groups.items():
        keys = [f"softpool{c.dim}d.{c.name}_t{t}" for c in members for t in threads]
        ratios = [metrics[f"{k}.fwdbwd_ratio_vs_avg"] for k in keys
                  if f"{k}.fwdbwd_ratio_vs_avg" in metrics]
        speedups = [metrics[f"{k}.speedup_vs_formula"] for k in keys
                    if f"{k}.speedup_vs_formula" in metrics]
        if ratios:
            out[f"softpool.{cls}.worst_fwdbwd_ratio_vs_avg"] = max(ratios)
        if speedups:
            out[f"softpool.{cls}.min_speedup_vs_formula"] = min(speedups)
    return out


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    from registry.pools import softpool as sp

    unknown = set(spec.params or {}) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"kernel_bench: unknown params {sorted(unknown)}; known: "
                         f"{', '.join(sorted(DEFAULTS))}")
    params = {**DEFAULTS, **(spec.params or {})}
    if params["stat"] not in ("median", "min"):
        raise ValueError(f"kernel_bench: params.stat must be 'median' or 'min', "
                         f"got {params['stat']!r}")
    if int(params["repeats"]) < 1:
        raise ValueError("kernel_bench: params.repeats must be at least 1")
    device = torch.device(ctx.device if ctx.device not in (None, "auto") else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    if ctx.threads:
        torch.set_num_threads(int(ctx.threads))
    dtype = getattr(torch, str(params["dtype"]))
    cases, pools = _cases(params), _pool_names(params)
    thread_counts = _threads(params) if device.type == "cpu" else [torch.get_num_threads()]
    metrics: dict[str, float] = {
        "repeats": float(params["repeats"]), "warmup": float(params["warmup"]),
        "yardstick_repeats": float(min(int(params["repeats"]),
                                       int(params["yardstick_repeats"])))}
    rows: list[dict[str, Any]] = []
    prov = ctx.provenance
    prov["softpool_path"] = sp.softpool_path(device, dtype)
    prov["kernel_bench.shapes"] = {c.name: list(c.shape) for c in cases}
    prov["kernel_bench.threads"] = thread_counts
    if hasattr(os, "getloadavg"):  # other load on a shared CPU inflates every number
        prov["kernel_bench.loadavg_before"] = round(os.getloadavg()[0], 2)
    prov["kernel_bench.timing"] = (
        f"{params['stat']} over {params['repeats']} interleaved repetitions (order rotated "
        f"each repetition) after {params['warmup']} warm-up, ratios paired within a "
        f"repetition; yardsticks in the first {metrics['yardstick_repeats']:.0f}; same tensor, "
        "same process")
    if device.type == "cuda":
        prov["kernel_bench.gpu"] = torch.cuda.get_device_name(device)
        metrics["cuda_copy_gbps"] = _copy_gbps(device)
    try:
        import triton

        prov["triton_version"] = triton.__version__
    except Exception:
        prov["triton_version"] = None
    before = torch.get_num_threads()
    steps = [(t, c) for t in thread_counts for c in cases]
    try:
        for i, (threads, case) in enumerate(steps):
            torch.set_num_threads(threads)
            res = _bench_case(case, pools, device, dtype, params, spec.seed)
            m = _metrics(case, threads, res)
            if "cuda_copy_gbps" in metrics:
                for key in [k for k in m if k.endswith("_gbps")]:
                    m[key.replace("_gbps", "_frac_of_copy")] = m[key] / metrics["cuda_copy_gbps"]
            metrics.update(m)
            for name, row in res.items():
                rows.append({"shape": case.name, "cls": case.cls, "threads": threads,
                             "pool": f"{name}{case.dim}d", **row})
            if ctx.report is not None:
                ctx.report(i + 1, len(steps), {k: v for k, v in m.items()
                                               if k.startswith("softpool") and "ratio" in k})
        if int(params["overhead_calls"]) > 0:
            torch.set_num_threads(1)
            for name, us in call_overhead_us(device, dtype,
                                             int(params["overhead_calls"])).items():
                metrics[f"{name}.call_overhead_us"] = us
    finally:
        torch.set_num_threads(before)
    metrics.update(class_metrics(cases, thread_counts, metrics))
    prov["softpool_last_path"] = sp.last_path()
    if hasattr(os, "getloadavg"):
        prov["kernel_bench.loadavg_after"] = round(os.getloadavg()[0], 2)
    return TaskResult(metrics=metrics, artifacts={"rows": rows})


# ------------------------------------------------------------------------------------ tables


def _print(title: str, header: list[str], lines: list[list[str]], notes: list[str]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print("  ".join(header))
        for line in lines:
            print("  ".join(line))
        for n in notes:
            print(n)
        return
    table = Table(title=title)
    console = Console(width=max(130, Console().width))
    for h in header:
        table.add_column(h, justify="left" if h in ("shape", "pool", "class", "note")
                         else "right")
    for line in lines:
        table.add_row(*line)
    console.print(table)
    for n in notes:
        console.print(n)


def _print_table(rows: list[dict[str, Any]], title: str) -> None:
    """Every pool at every shape and thread count, as measured by one run."""
    header = ["shape", "thr", "pool", "fwd ms", "fwd+bwd ms", "fwd/avg", "f+b/avg", "f+b/max",
              "mem MB", "mem/avg"]
    avg_mem = {(r["shape"], r["threads"]): r["mem"] for r in rows if r["pool"].startswith("avg")}
    lines = []
    for r in rows:
        am = avg_mem[(r["shape"], r["threads"])]
        lines.append([r["shape"], str(r["threads"]), r["pool"],
                      f"{r['fwd']:.2f}" if "fwd" in r else "-", f"{r['fwdbwd']:.2f}",
                      f"{r['fwd_vs_avg']:.2f}" if "fwd_vs_avg" in r else "-",
                      f"{r['fwdbwd_vs_avg']:.2f}", f"{r['fwdbwd_vs_max']:.2f}",
                      f"{r['mem']:.1f}", f"{r['mem'] / am:.2f}" if am else "-"])
    _print(title, header, lines, [])


def window_stats(case: Case) -> dict[str, float]:
    """What a window shape costs the fused kernel, from geometry alone: exponentials per input
    element (forward + backward, one per window tap each) and the share of border windows
    (clipped by padding or ceil mode, which take the general tap loop)."""
    from registry.pools._windows import geometry

    k, s, p, out = geometry(case.shape, case.dim, case.kernel_size, case.stride,
                            case.padding)
    size = case.shape[-case.dim:]
    taps = 0
    interior = 1.0
    n_out = math.prod(out)
    for n, ki, si, pi, o in zip(size, k, s, p, out, strict=True):
        inside = sum(1 for j in range(o) if j * si - pi >= 0 and j * si - pi + ki <= n)
        interior *= inside / o
    for idx in range(n_out):  # clipped windows have fewer taps
        t, rem = 1, idx
        for n, ki, si, pi, o in reversed(list(zip(size, k, s, p, out, strict=True))):
            j, rem = rem % o, rem // o
            a = j * si - pi
            t *= min(a + ki, n) - max(a, 0)
        taps += t
    return {"exp_per_input": 2 * taps / math.prod(size), "border_share": 1 - interior}


def _diagnose(case: Case | None, cells: dict[str, float], overhead: dict[str, float]) -> str:
    """Why a grid cell misses its target, in measured numbers: the forward and the backward
    each against avg pooling's, the absolute times against the per-call overhead measured in
    the same runs, and the kernel's work per input."""
    why = []
    f, fb = cells.get("fwd_ms"), cells.get("fwdbwd_ms")
    af, afb = cells.get("avg_fwd_ms"), cells.get("avg_fwdbwd_ms")
    if None not in (f, fb, af, afb) and afb > af:
        why.append(f"forward {f / af:.2f}× avg's, backward {(fb - f) / (afb - af):.2f}× avg's "
                   f"({fb:.3f} vs {afb:.3f} ms")
        sp_us, avg_us = overhead.get("softpool2d"), overhead.get("avg2d")
        if sp_us is not None and avg_us is not None:
            why[-1] += (f"; of which per-call overhead {sp_us / 1e3:.3f} vs {avg_us / 1e3:.3f} "
                        "ms, measured on a 1×8×4×4 input")
        why[-1] += ")"
    if case is not None:
        w = window_stats(case)
        why.append(f"{w['exp_per_input']:.1f} exponentials per input element "
                   f"(avg pooling: none), {100 * w['border_share']:.0f}% border windows")
    return "; ".join(why)


def _agg_over_seeds(runs: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    keys = set().union(*(r["metrics"] for r in runs))
    med, spread = {}, {}
    for k in keys:
        vals = [r["metrics"][k] for r in runs if k in r["metrics"]]
        med[k] = statistics.median(vals)
        spread[k] = (max(vals) - min(vals)) if len(vals) > 1 else 0.0
    return med, spread


#: ``<pool><d>d.<shape>_t<threads>.<stat>``, the per-cell metric names of :func:`_metrics`
_CELL = re.compile(r"^(?P<pool>[a-z_]+)[123]d\.(?P<shape>\w+)_t(?P<threads>\d+)\.(?P<stat>\w+)$")


def grid_table(runs: list[dict[str, Any]], title: str = "SoftPool kernel grid") -> list[str]:
    """Print SoftPool's grid (ratio to avg and max pooling, speed-up over the plain formula,
    per shape and thread count; the median over the runs/seeds given, and the seed-to-seed
    range) and return the misses of the targets with their reasons."""
    med, spread = _agg_over_seeds(runs)
    overhead = {k.split(".")[0]: v for k, v in med.items() if k.endswith(".call_overhead_us")}
    cases = {c.name: c for c in _cases({**DEFAULTS, "shapes": list(SHAPES), "scale": 1.0})}
    shapes_by_run = {}
    for r in runs:
        for name, shape in (r.get("provenance", {}).get("kernel_bench.shapes") or {}).items():
            if name in cases:
                shapes_by_run[name] = tuple(shape)
    cells: dict[tuple[str, int], dict[str, float]] = {}
    avg_cells: dict[tuple[str, int], dict[str, float]] = {}
    for key, val in med.items():
        m = _CELL.match(key)
        if not m:
            continue
        at = (m["shape"], int(m["threads"]))
        if m["pool"] == "softpool":
            cell = cells.setdefault(at, {})
            cell[m["stat"]] = val
            cell[m["stat"] + "_range"] = spread[key]
        elif m["pool"] == "avg":
            avg_cells.setdefault(at, {})["avg_" + m["stat"]] = val
    header = ["class", "shape", "thr", "f+b/avg", "seed range", "f+b/max", "fwd/avg",
              "× formula", "target", "note"]
    lines, misses = [], []
    order = {n: i for i, n in enumerate(list(SHAPES))}
    for (shape, thr), c in sorted(cells.items(), key=lambda kv: (order.get(kv[0][0], 99),
                                                                 kv[0][0], kv[0][1])):
        case = cases.get(shape)
        if case is not None and shape in shapes_by_run:
            case = Case(**{**case.__dict__, "shape": shapes_by_run[shape]})
        c = {**avg_cells.get((shape, thr), {}), **c}
        ratio, speed = c.get("fwdbwd_ratio_vs_avg"), c.get("speedup_vs_formula")
        ok = (ratio is None or ratio <= TARGET_RATIO_VS_AVG) and (
            speed is None or speed > TARGET_SPEEDUP_VS_FORMULA)
        note = ""
        if not ok:
            note = _diagnose(case, c, overhead)
            misses.append(f"{shape} at {thr} thread(s): f+b/avg {ratio:.2f}, × formula "
                          f"{speed if speed is not None else math.nan:.2f} — {note}")

        def f(v):
            return "-" if v is None else f"{v:.2f}"

        lines.append([case.cls if case else "", shape, str(thr), f(ratio),
                      f(c.get("fwdbwd_ratio_vs_avg_range")), f(c.get("fwdbwd_ratio_vs_max")),
                      f(c.get("fwd_ratio_vs_avg")), f(speed), "ok" if ok else "MISS",
                      "see below" if note else ""])
    reps = med.get("repeats")
    sub = (f"{title}: median over {len(runs)} run(s)"
           + (f", each the median of {reps:.0f} interleaved repetitions" if reps else "")
           + f"; target f+b/avg ≤ {TARGET_RATIO_VS_AVG} and faster than the formula")
    notes = [f"[bold]misses:[/bold] {m}" for m in misses] or ["every grid cell meets the target"]
    if overhead:
        notes.append("per-call overhead (fwd+bwd, 1×8×4×4 input): " + ", ".join(
            f"{k} {v:.0f} µs" for k, v in sorted(overhead.items())))
    _print(sub, header, lines, notes)
    return misses


def _read_jsonl(path: str, tier: str | None) -> list[dict[str, Any]]:
    runs = []
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{i}: not JSON ({e.msg})") from e
            spec = r.get("spec") or {}
            if spec.get("task") not in ("kernel_bench", "pool_bench") or r.get("status") != "ok":
                continue
            if tier and spec.get("tier") != tier:
                continue
            if not any(k.startswith("softpool.") for k in r.get("metrics", {})):
                continue  # runs from before the grid (no thread-tagged metrics)
            runs.append(r)
    # the seeds of one recipe: the params of the most recently finished run
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(json.dumps(r["spec"].get("params"), sort_keys=True), []).append(r)
    if not groups:
        return []
    return max(groups.values(), key=lambda g: max(str(r.get("finished_at")) for r in g))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tasks.kernel_bench",
        description="Time forward and forward+backward and the memory of every registered "
                    "pool against avg/max pooling on the same tensor, and print the ratios; "
                    "or print SoftPool's grid from exported runs.",
        epilog="examples:\n"
               "  python -m tasks.kernel_bench --shapes grid --pools softpool --threads 1,2\n"
               "  python -m tasks.kernel_bench --scale 0.125 --shapes cifar --repeats 21\n"
               "  python -m suite export runs.jsonl && "
               "python -m tasks.kernel_bench --from-jsonl runs.jsonl --tier mini",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=DEFAULTS["scale"],
                    help="batch multiplier for the shapes (default %(default)s)")
    ap.add_argument("--spatial-scale", type=float, default=1.0, help="H/W/T multiplier")
    ap.add_argument("--shapes", default=",".join(DEFAULTS["shapes"]),
                    help=f"comma list from {sorted(SHAPES)}, or 'grid'")
    ap.add_argument("--pools", default=None, help="comma list of pool names (default: all)")
    ap.add_argument("--threads", default=None,
                    help="comma list of thread counts (default: torch's current)")
    ap.add_argument("--repeats", type=int, default=DEFAULTS["repeats"])
    ap.add_argument("--warmup", type=int, default=DEFAULTS["warmup"])
    ap.add_argument("--yardstick-repeats", type=int, default=DEFAULTS["yardstick_repeats"])
    ap.add_argument("--stat", default="median", choices=["min", "median"],
                    help="statistic over the repetitions (default: median)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:0 or auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--from-jsonl", metavar="PATH",
                    help="print SoftPool's grid from exported runs instead of measuring")
    ap.add_argument("--tier", default=None, help="with --from-jsonl: only runs of this tier")
    args = ap.parse_args(argv)
    if args.from_jsonl:
        runs = _read_jsonl(args.from_jsonl, args.tier)
        if not runs:
            print(f"no ok kernel_bench grid runs in {args.from_jsonl}"
                  + (f" at tier {args.tier}" if args.tier else ""))
            return 1
        grid_table(runs)
        return 0
    params = {"scale": args.scale, "spatial_scale": args.spatial_scale, "shapes": args.shapes,
              "pools": args.pools, "threads": args.threads, "repeats": args.repeats,
              "warmup": args.warmup, "yardstick_repeats": args.yardstick_repeats,
              "stat": args.stat, "dtype": args.dtype}
    spec = RunSpec(claim_id="cli", tier="cli", arm="treatment", seed=args.seed,
                   task="kernel_bench", model="", dataset="", params=params)
    ctx = TaskContext(device=args.device)
    t0 = time.perf_counter()
    result = run(spec, ctx)
    title = (f"kernel_bench on {ctx.provenance.get('kernel_bench.gpu', 'cpu')} "
             f"(softpool path {ctx.provenance['softpool_path']}, "
             f"{ctx.provenance['kernel_bench.timing']}, {time.perf_counter() - t0:.0f} s)")
    _print_table(result.artifacts["rows"], title)
    if any(k.startswith("softpool.") for k in result.metrics):
        grid_table([{"metrics": result.metrics, "provenance": ctx.provenance}],
                   "SoftPool grid (this run)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
