"""The kernel benchmark task (tasks/kernel_bench.py), on tiny shapes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from suite.specs import RunSpec, TaskContext
from tasks import TASKS
from tasks.kernel_bench import GRID, SHAPES, Case, _cases, main, run, window_stats

REPO = Path(__file__).resolve().parent.parent
TINY = {"tiny2d": {"shape": [2, 4, 12, 12], "dim": 2, "kernel_size": 3, "stride": 2,
                   "padding": 1, "cls": "small"},
        "tiny3d": {"shape": [1, 4, 4, 8, 8], "dim": 3, "kernel_size": 2, "cls": "small"},
        "tinycl": {"shape": [2, 8, 6, 6], "dim": 2, "kernel_size": 2, "cls": "cl",
                   "layout": "channels_last"}}


def _spec(**params) -> RunSpec:
    return RunSpec(claim_id="t", tier="smoke", arm="treatment", seed=0, task="kernel_bench",
                   model="", dataset="", params=params)


def test_registered():
    assert TASKS.entry("kernel_bench").target == "tasks.kernel_bench:run"


def test_run_reports_ratios_and_provenance():
    spec = _spec(shapes=TINY, repeats=3, warmup=0, yardstick_repeats=2, scale=1.0,
                 overhead_calls=5)
    progress = []
    ctx = TaskContext(device="cpu", report=lambda e, t, m: progress.append((e, t, m)))
    res = run(spec, ctx)
    m = res.metrics
    t = f"t{torch.get_num_threads()}"  # metric names: pool.shape_tN.stat
    for key in (f"softpool2d.tiny2d_{t}.fwdbwd_ratio_vs_avg",
                f"softpool2d.tiny2d_{t}.fwd_ratio_vs_avg",
                f"softpool3d.tiny3d_{t}.fwdbwd_ratio_vs_max", f"max2d.tiny2d_{t}.mem_ratio_vs_avg",
                f"strided_conv2d.tiny2d_{t}.fwdbwd_ms", f"softpool2d.tiny2d_{t}.speedup_vs_reference",
                f"softpool3d.tiny3d_{t}.speedup_vs_formula", f"lip3d.tiny3d_{t}.mem_mb",
                f"softpool2d.tinycl_{t}.fwdbwd_ms"):
        assert key in m and math.isfinite(m[key]) and m[key] > 0, key
    # paired per-repetition ratios: avg against itself is exactly 1
    assert m[f"avg2d.tiny2d_{t}.fwdbwd_ratio_vs_avg"] == 1.0
    assert (m["repeats"], m["warmup"], m["yardstick_repeats"]) == (3.0, 0.0, 2.0)
    assert m["softpool2d.call_overhead_us"] > 0 and m["avg2d.call_overhead_us"] > 0
    # per shape class: the worst SoftPool ratio and the smallest speed-up over the formula
    small = [m[f"softpool{d}d.tiny{d}d_{t}.fwdbwd_ratio_vs_avg"] for d in (2, 3)]
    assert m["softpool.small.worst_fwdbwd_ratio_vs_avg"] == max(small)
    assert m["softpool.all.worst_fwdbwd_ratio_vs_avg"] >= max(small)
    assert m["softpool.cl.min_speedup_vs_formula"] == m[f"softpool2d.tinycl_{t}.speedup_vs_formula"]
    assert ctx.provenance["softpool_path"] in ("fused_cpu", "reference")
    assert ctx.provenance["softpool_last_path"] is not None
    assert "median over 3 interleaved repetitions" in ctx.provenance["kernel_bench.timing"]
    assert [p[:2] for p in progress] == [(1, 3), (2, 3), (3, 3)]
    # the dashboard splits kernel metrics as pool.shape.stat: every per-shape one must fit
    from dashboard.queries.kernels import KERNEL_METRIC

    cells = [k for k in m if k.count(".") == 2 and k.split(".")[1].endswith(t[1:])]
    assert len(cells) > 50 and all(KERNEL_METRIC.match(k) for k in cells)
    rows = res.artifacts["rows"]
    assert {r["reps"] for r in rows if r["pool"].startswith("softpool_formula")} == {2.0}
    assert {r["reps"] for r in rows if r["pool"] == "softpool2d"} == {3.0}


def test_thread_grid_times_each_count_and_restores_threads():
    before = torch.get_num_threads()
    res = run(_spec(shapes={"tiny2d": TINY["tiny2d"]}, pools=["softpool"], threads=[1, 2],
                    repeats=2, warmup=0, yardstick_repeats=1, fwd=False, scale=1.0,
                    overhead_calls=0),
              TaskContext(device="cpu"))
    assert torch.get_num_threads() == before
    for t in (1, 2):
        assert f"softpool2d.tiny2d_t{t}.fwdbwd_ratio_vs_avg" in res.metrics
        assert f"softpool2d.tiny2d_t{t}.fwd_ms" not in res.metrics  # fwd=False
    assert res.metrics["softpool.small.worst_fwdbwd_ratio_vs_avg"] == max(
        res.metrics[f"softpool2d.tiny2d_t{t}.fwdbwd_ratio_vs_avg"] for t in (1, 2))
    assert {r["pool"] for r in res.artifacts["rows"]} == {
        "avg2d", "max2d", "softpool2d", "softpool_reference2d", "softpool_formula2d"}


def test_bad_params_name_the_field():
    with pytest.raises(ValueError, match="unknown params.*repetitions"):
        run(_spec(repetitions=3), TaskContext(device="cpu"))
    with pytest.raises(ValueError, match="unknown kernel_bench shape 'nope'"):
        run(_spec(shapes=["nope"]), TaskContext(device="cpu"))
    with pytest.raises(ValueError, match="threads"):
        run(_spec(shapes=TINY, threads=[0]), TaskContext(device="cpu"))
    with pytest.raises(ValueError, match="layout"):
        run(_spec(shapes={"x": {**TINY["tiny2d"], "layout": "nhwc"}}), TaskContext(device="cpu"))


def test_grid_names_every_shape_class_and_scales():
    cases = _cases({"shapes": "grid", "scale": 0.25, "spatial_scale": 1.0})
    assert [c.name for c in cases] == GRID
    assert {c.cls for c in cases} == {"cifar", "stem", "overlap", "late", "cl", "1d", "3d"}
    assert cases[0].shape == (16, 64, 32, 32)  # 64 * 0.25
    assert all(SHAPES[c.name]["shape"][1:] == list(c.shape[1:]) for c in cases)


def test_window_stats():
    k2 = window_stats(Case("a", (1, 1, 8, 8), 2, 2, None, 0))
    assert k2 == {"exp_per_input": 2.0, "border_share": 0.0}
    # k3 s2 p1 on 5: windows [-1,2), [1,4), [3,6): two of three clipped, taps 2+3+2 = 7
    k3 = window_stats(Case("b", (1, 1, 5), 1, 3, 2, 1))
    assert k3["exp_per_input"] == pytest.approx(2 * 7 / 5)
    assert k3["border_share"] == pytest.approx(2 / 3)


def test_grid_table_from_exported_runs(tmp_path, capsys):
    runs = []
    for seed in (0, 1):
        spec = RunSpec(claim_id="t", tier="mini", arm="treatment", seed=seed,
                       task="kernel_bench", model="", dataset="",
                       params={"shapes": TINY, "pools": ["softpool"], "repeats": 2,
                               "warmup": 0, "yardstick_repeats": 1, "scale": 1.0,
                               "overhead_calls": 5})
        ctx = TaskContext(device="cpu")
        res = run(spec, ctx)
        runs.append({"spec": spec.to_dict(), "status": "ok", "metrics": res.metrics,
                     "provenance": ctx.provenance, "finished_at": f"2026-01-0{seed + 1}"})
    runs.append({"spec": {"task": "train_eval", "tier": "mini"}, "status": "ok",
                 "metrics": {"top1": 0.5}})
    path = tmp_path / "runs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in runs))
    assert main(["--from-jsonl", str(path), "--tier", "mini"]) == 0
    out = capsys.readouterr().out
    assert "tiny2d" in out and "tinycl" in out and "median over 2 run(s)" in out
    assert "each the median of 2 interleaved repetitions" in out
    assert "per-call overhead" in out
    assert main(["--from-jsonl", str(path), "--tier", "full"]) == 1


def test_cli(capsys):
    assert main(["--scale", "0.01", "--spatial-scale", "0.1", "--shapes", "cifar",
                 "--pools", "softpool,max", "--repeats", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "softpool2d" in out and "f+b/avg" in out and "SoftPool grid" in out


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "tasks.kernel_bench", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--scale" in out.stdout and "--from-jsonl" in out.stdout
