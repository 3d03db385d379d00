"""The kernel benchmark task (tasks/kernel_bench.py), on tiny shapes."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

from suite.specs import RunSpec, TaskContext
from tasks import TASKS
from tasks.kernel_bench import main, run

REPO = Path(__file__).resolve().parent.parent
TINY = {"tiny2d": {"shape": [2, 4, 12, 12], "dim": 2, "kernel_size": 3, "stride": 2,
                   "padding": 1},
        "tiny3d": {"shape": [1, 4, 4, 8, 8], "dim": 3, "kernel_size": 2}}


def test_registered():
    assert TASKS.entry("kernel_bench").target == "tasks.kernel_bench:run"


def test_run_reports_ratios_and_provenance():
    spec = RunSpec(claim_id="t", tier="smoke", arm="treatment", seed=0, task="kernel_bench",
                   model="", dataset="",
                   params={"shapes": TINY, "repeats": 1, "warmup": 0, "scale": 1.0})
    progress = []
    ctx = TaskContext(device="cpu", report=lambda e, t, m: progress.append((e, t, m)))
    res = run(spec, ctx)
    m = res.metrics
    for key in ("softpool2d.tiny2d.fwdbwd_ratio_vs_avg", "softpool2d.tiny2d.fwd_ratio_vs_avg",
                "softpool3d.tiny3d.fwdbwd_ratio_vs_max", "max2d.tiny2d.mem_ratio_vs_avg",
                "strided_conv2d.tiny2d.fwdbwd_ms", "softpool2d.tiny2d.speedup_vs_reference",
                "softpool3d.tiny3d.speedup_vs_formula", "lip3d.tiny3d.mem_mb"):
        assert key in m and math.isfinite(m[key]) and m[key] > 0, key
    assert m["avg2d.tiny2d.fwdbwd_ratio_vs_avg"] == 1.0
    assert ctx.provenance["softpool_path"] in ("fused_cpu", "reference")
    assert ctx.provenance["softpool_last_path"] is not None
    assert [p[:2] for p in progress] == [(1, 2), (2, 2)]
    assert res.artifacts["rows"]


def test_cli(capsys):
    assert main(["--scale", "0.01", "--spatial-scale", "0.1", "--shapes", "cifar",
                 "--pools", "softpool,max", "--repeats", "1", "--warmup", "0"]) == 0
    out = capsys.readouterr().out
    assert "softpool2d" in out and "f+b/avg" in out


def test_cli_help():
    out = subprocess.run([sys.executable, "-m", "tasks.kernel_bench", "--help"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "--scale" in out.stdout
