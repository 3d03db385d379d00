"""kernel_bench: time and memory of every registered pool against torch's avg/max pooling.

All pools run on the *same* input tensor in the same process, interleaved repetition by
repetition (so load from other processes hits every op alike), and are reported as ratios
to ``avg_pool`` and ``max_pool`` — the claim "SoftPool costs about as much as avg pooling"
(Stergiou et al., ICCV 2021, Sec. 4 latency/memory tables) becomes
``softpool2d.cifar.fwdbwd_ratio_vs_avg <= 1.3``.

Shapes (the pool inputs of the papers' models; ``params.scale`` scales the batch):

============  ========================  ==========================================
resnet_stem   32×64×112×112, 2D         ResNet stem pool: kernel 3, stride 2, pad 1
cifar         256×64×32×32, 2D          CIFAR ResNet/All-CNN pool: kernel 2
video         8×64×8×56×56, 3D          3D-ResNet pool: kernel 2
============  ========================  ==========================================

``params`` (defaults in :data:`DEFAULTS`):

* ``scale`` — batch multiplier (rounded, at least 1); ``spatial_scale`` — H/W/T multiplier.
* ``shapes`` — names from :data:`SHAPES` (list or comma string), or a dict
  ``name -> {"shape": [...], "dim": 2, "kernel_size": 2, "stride": null, "padding": 0}``.
* ``pools`` — registered pool names (default: every ``kind="pool"`` entry).
* ``repeats``, ``warmup``, ``stat`` (``min`` — best of the repeats, the default because other
  processes on a shared CPU only ever add time — or ``median``), ``dtype``
  (``float32``/``float16``/``bfloat16``).

Metrics per pool ``P`` (named ``<pool><dim>d``, e.g. ``softpool2d``) and shape ``S``:
``P.S.fwd_ms``, ``P.S.fwdbwd_ms``, ``P.S.fwd_ratio_vs_avg``, ``P.S.fwdbwd_ratio_vs_avg``,
``P.S.fwdbwd_ratio_vs_max``, ``P.S.mem_mb`` and ``P.S.mem_ratio_vs_avg``. Memory is the peak
allocated during forward+backward on CUDA; on CPU (no allocator statistics) it is the bytes
an op keeps alive between forward and backward — its output plus the tensors autograd saves
for backward — which is what the op adds to a training step's activation memory.
SoftPool also gets ``softpool_reference`` (plain torch ops, analytic backward) and
``softpool_formula`` (plain torch formula, autograd) rows and
``softpool<d>d.S.speedup_vs_reference`` / ``speedup_vs_formula``. On CUDA:
``softpool<d>d.S.fwd_gbps``/``fwdbwd_gbps`` (bytes a fused kernel must move / time) and
``..._frac_of_copy`` against a measured device copy (``cuda_copy_gbps``).

Standalone: ``python -m tasks.kernel_bench --scale 0.125`` prints the ratio table.
"""

from __future__ import annotations

import argparse
import math
import os
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

SHAPES: dict[str, dict[str, Any]] = {
    "resnet_stem": {"shape": [32, 64, 112, 112], "dim": 2, "kernel_size": 3, "stride": 2,
                    "padding": 1},
    "cifar": {"shape": [256, 64, 32, 32], "dim": 2, "kernel_size": 2, "stride": None,
              "padding": 0},
    "video": {"shape": [8, 64, 8, 56, 56], "dim": 3, "kernel_size": 2, "stride": None,
              "padding": 0},
}

DEFAULTS: dict[str, Any] = {
    "scale": 0.0625, "spatial_scale": 1.0, "shapes": ["resnet_stem", "cifar", "video"],
    "pools": None, "repeats": 3, "warmup": 1, "stat": "min", "dtype": "float32",
}

_MAX = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}


@dataclass
class Case:
    name: str
    shape: tuple[int, ...]
    dim: int
    kernel_size: Any
    stride: Any
    padding: Any


def _cases(params: dict[str, Any]) -> list[Case]:
    shapes = params["shapes"]
    if isinstance(shapes, str):
        shapes = [s.strip() for s in shapes.split(",") if s.strip()]
    table = dict(shapes) if isinstance(shapes, dict) else {}
    names = list(table) if table else list(shapes)
    cases = []
    for name in names:
        spec = dict(SHAPES.get(name, {}))
        spec.update(table.get(name, {}))
        if "shape" not in spec:
            raise ValueError(f"unknown kernel_bench shape {name!r}; known: {sorted(SHAPES)}")
        shape = list(spec["shape"])
        dim = int(spec.get("dim", len(shape) - 2))
        shape[0] = max(1, round(shape[0] * float(params["scale"])))
        ss = float(params["spatial_scale"])
        for i in range(len(shape) - dim, len(shape)):
            shape[i] = max(4, round(shape[i] * ss))
        cases.append(Case(name, tuple(shape), dim, spec.get("kernel_size", 2),
                          spec.get("stride"), spec.get("padding", 0)))
    return cases


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


def _bench_case(case: Case, pools: list[str], device: torch.device, dtype: torch.dtype,
                repeats: int, warmup: int, seed: int, stat: str = "min"
                ) -> dict[str, dict[str, float]]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(case.shape, generator=gen).to(device=device, dtype=dtype)
    x.requires_grad_(True)
    k, s, p, d = case.kernel_size, case.stride, case.padding, case.dim
    ref = _MAX[d](x.detach(), k, s, p)
    g = torch.randn(ref.shape, generator=gen).to(device=device, dtype=dtype)
    variants = [("avg", lambda t: _AVG[d](t, k, s, p)), ("max", lambda t: _MAX[d](t, k, s, p))]
    variants += [(n, f) for n, f in _variants(case, pools, device) if n not in ("avg", "max")]
    variants = [(n, f.to(dtype) if isinstance(f, torch.nn.Module) else f) for n, f in variants]

    def fwd(f):
        f(x)

    def fwdbwd(f):
        f(x).backward(g)
        x.grad = None

    times: dict[str, dict[str, list[float]]] = {n: {"fwd": [], "fwdbwd": []} for n, _ in variants}
    for r in range(warmup + repeats):
        for name, f in variants:
            for kind, run in (("fwd", fwd), ("fwdbwd", fwdbwd)):
                if isinstance(f, torch.nn.Module):
                    f.zero_grad(set_to_none=True)
                _sync(device)
                t0 = time.perf_counter()
                run(f)
                _sync(device)
                if r >= warmup:
                    times[name][kind].append(time.perf_counter() - t0)
    res: dict[str, dict[str, float]] = {}
    for name, f in variants:
        agg = min if stat == "min" else statistics.median
        row = {kind: agg(v) * 1e3 for kind, v in times[name].items()}
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
        res["softpool"]["fwd_gbps"] = (n_in + 2 * n_out) / res["softpool"]["fwd"] * 1e-6
        res["softpool"]["fwdbwd_gbps"] = fb / res["softpool"]["fwdbwd"] * 1e-6
    return res


def _metrics(case: Case, res: dict[str, dict[str, float]]) -> dict[str, float]:
    out: dict[str, float] = {}
    avg, mx = res["avg"], res["max"]
    for name, row in res.items():
        key = f"{name}{case.dim}d.{case.name}"
        out[f"{key}.fwd_ms"] = row["fwd"]
        out[f"{key}.fwdbwd_ms"] = row["fwdbwd"]
        out[f"{key}.fwd_ratio_vs_avg"] = row["fwd"] / avg["fwd"]
        out[f"{key}.fwdbwd_ratio_vs_avg"] = row["fwdbwd"] / avg["fwdbwd"]
        out[f"{key}.fwdbwd_ratio_vs_max"] = row["fwdbwd"] / mx["fwdbwd"]
        out[f"{key}.mem_mb"] = row["mem"]
        out[f"{key}.mem_ratio_vs_avg"] = row["mem"] / avg["mem"] if avg["mem"] else math.nan
        for extra in ("fwd_gbps", "fwdbwd_gbps"):
            if extra in row:
                out[f"{key}.{extra}"] = row[extra]
    if "softpool" in res:
        key = f"softpool{case.dim}d.{case.name}"
        sp = res["softpool"]["fwdbwd"]
        for yard in ("reference", "formula"):
            if f"softpool_{yard}" in res:
                out[f"{key}.speedup_vs_{yard}"] = res[f"softpool_{yard}"]["fwdbwd"] / sp
    return out


def run(spec: RunSpec, ctx: TaskContext) -> TaskResult:
    from registry.pools import softpool as sp

    params = {**DEFAULTS, **(spec.params or {})}
    device = torch.device(ctx.device if ctx.device not in (None, "auto") else
                          ("cuda" if torch.cuda.is_available() else "cpu"))
    if ctx.threads:
        torch.set_num_threads(int(ctx.threads))
    dtype = getattr(torch, str(params["dtype"]))
    cases, pools = _cases(params), _pool_names(params)
    metrics: dict[str, float] = {}
    rows: list[dict[str, Any]] = []
    prov = ctx.provenance
    prov["softpool_path"] = sp.softpool_path(device, dtype)
    prov["kernel_bench.shapes"] = {c.name: list(c.shape) for c in cases}
    prov["kernel_bench.threads"] = torch.get_num_threads()
    if hasattr(os, "getloadavg"):  # other load on a shared CPU inflates every number
        prov["kernel_bench.loadavg_before"] = round(os.getloadavg()[0], 2)
    prov["kernel_bench.timing"] = (f"{params['stat']} of {params['repeats']} interleaved "
                                   "repeats, same tensor, same process")
    if device.type == "cuda":
        prov["kernel_bench.gpu"] = torch.cuda.get_device_name(device)
        metrics["cuda_copy_gbps"] = _copy_gbps(device)
    try:
        import triton

        prov["triton_version"] = triton.__version__
    except Exception:
        prov["triton_version"] = None
    for i, case in enumerate(cases):
        res = _bench_case(case, pools, device, dtype, int(params["repeats"]),
                          int(params["warmup"]), spec.seed, str(params["stat"]))
        m = _metrics(case, res)
        if "cuda_copy_gbps" in metrics:
            for key in [k for k in m if k.endswith("_gbps")]:
                m[key.replace("_gbps", "_frac_of_copy")] = m[key] / metrics["cuda_copy_gbps"]
        metrics.update(m)
        for name, row in res.items():
            rows.append({"shape": case.name, "pool": f"{name}{case.dim}d", **row})
        if ctx.report is not None:
            ctx.report(i + 1, len(cases), {k: v for k, v in m.items()
                                           if k.startswith("softpool") and "ratio" in k})
    prov["softpool_last_path"] = sp.last_path()
    if hasattr(os, "getloadavg"):
        prov["kernel_bench.loadavg_after"] = round(os.getloadavg()[0], 2)
    return TaskResult(metrics=metrics, artifacts={"rows": rows})


# ------------------------------------------------------------------------------------ CLI


def _print_table(rows: list[dict[str, Any]], title: str) -> None:
    by_shape: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_shape.setdefault(r["shape"], {})[r["pool"]] = r
    header = ["shape", "pool", "fwd ms", "fwd+bwd ms", "fwd/avg", "f+b/avg", "f+b/max",
              "mem MB", "mem/avg"]
    lines = []
    for shape, pools in by_shape.items():
        avg = next(v for k, v in pools.items() if k.startswith("avg"))
        mx = next(v for k, v in pools.items() if k.startswith("max"))
        for name, r in pools.items():
            lines.append([shape, name, f"{r['fwd']:.2f}", f"{r['fwdbwd']:.2f}",
                          f"{r['fwd'] / avg['fwd']:.2f}", f"{r['fwdbwd'] / avg['fwdbwd']:.2f}",
                          f"{r['fwdbwd'] / mx['fwdbwd']:.2f}", f"{r['mem']:.1f}",
                          f"{r['mem'] / avg['mem']:.2f}" if avg["mem"] else "-"])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        print("  ".join(header))
        for line in lines:
            print("  ".join(line))
        return
    table = Table(title=title)
    console = Console(width=max(130, Console().width))
    for h in header:
        table.add_column(h, justify="left" if h in ("shape", "pool") else "right")
    for line in lines:
        table.add_row(*line)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tasks.kernel_bench",
        description="Time forward and forward+backward and the memory of every registered "
                    "pool against avg/max pooling on the same tensor, and print the ratios.")
    ap.add_argument("--scale", type=float, default=DEFAULTS["scale"],
                    help="batch multiplier for the paper shapes (default %(default)s)")
    ap.add_argument("--spatial-scale", type=float, default=1.0, help="H/W/T multiplier")
    ap.add_argument("--shapes", default=",".join(DEFAULTS["shapes"]),
                    help=f"comma list from {sorted(SHAPES)}")
    ap.add_argument("--pools", default=None, help="comma list of pool names (default: all)")
    ap.add_argument("--repeats", type=int, default=DEFAULTS["repeats"])
    ap.add_argument("--warmup", type=int, default=DEFAULTS["warmup"])
    ap.add_argument("--stat", default="min", choices=["min", "median"],
                    help="statistic over the repeats (default: min, robust to other load)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--device", default="auto", help="cpu, cuda, cuda:0 or auto")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    params = {"scale": args.scale, "spatial_scale": args.spatial_scale, "shapes": args.shapes,
              "pools": args.pools, "repeats": args.repeats, "warmup": args.warmup,
              "stat": args.stat, "dtype": args.dtype}
    spec = RunSpec(claim_id="cli", tier="cli", arm="treatment", seed=args.seed,
                   task="kernel_bench", model="", dataset="", params=params)
    ctx = TaskContext(device=args.device, threads=args.threads)
    t0 = time.perf_counter()
    result = run(spec, ctx)
    title = (f"kernel_bench on {ctx.provenance.get('kernel_bench.gpu', 'cpu')} "
             f"({torch.get_num_threads()} threads, softpool path "
             f"{ctx.provenance['softpool_path']}, {time.perf_counter() - t0:.0f} s)")
    _print_table(result.artifacts["rows"], title)
    for key, val in sorted(result.metrics.items()):
        if "speedup" in key or key.endswith(("_gbps", "_frac_of_copy")):
            print(f"{key} = {val:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
