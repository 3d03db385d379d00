"""Scheduler overhead per run, cold workers against warm ones, measured in one invocation.

    python -m suite.overhead [--runs 8] [--json]

Overhead is the wall time of a batch of trivial runs through the scheduler (``param_count``
of a micro CNN: milliseconds of compute) minus the task's own time (``provenance.task_s``,
measured inside the worker around the task call), divided by the number of runs. It covers
everything a run costs besides its compute: process start and imports (cold), the per-run
state reset, the lease, the DB transaction. Three ways are measured, each on a fresh SQLite
DB in a temporary directory, without MLflow:

* **cold** — a fresh worker process per run (``run --cold``, the behaviour before warm
  workers);
* **warm** — one warm worker for the batch, its start-up included (what a ``run`` costs);
* **warm, steady** — the same worker after one warm-up run (what each further run costs, as
  in a long tier or a sweep).

The table gives each as seconds per run and as ratios to the task's own time and to cold.
The target (issue 9) is a steady warm overhead of at most 1 s per run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from suite.specs import RunSpec

TARGET_S = 1.0


def trivial_specs(n: int, offset: int = 0) -> list[RunSpec]:
    return [RunSpec(claim_id="suite/overhead", tier="smoke", arm="treatment", seed=offset + i,
                    task="param_count", model="test_cnn", dataset="synthetic",
                    model_args={"width": 4}, device="cpu", timeout_s=300)
            for i in range(n)]


def _own(results: list[dict[str, Any]]) -> float:
    bad = [r for r in results if r["status"] != "ok"]
    if bad:
        raise RuntimeError(f"a trivial run failed: {bad[0]['message'][:500]}")
    return sum(float(r["provenance"].get("task_s", 0.0)) for r in results)


def measure(runs: int = 8, workdir: str | None = None) -> dict[str, dict[str, float]]:
    """``{mode: {"wall_s", "task_s", "overhead_s"}}`` per run for cold, warm, warm_steady."""
    from suite import db
    from suite.scheduler import Scheduler

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="poolrepro-overhead-", dir=workdir) as tmp:
        def engine(name: str):
            return db.connect(f"sqlite:///{Path(tmp) / name}.db")

        def row(wall: float, results: list[dict[str, Any]]) -> dict[str, float]:
            own = _own(results)
            return {"wall_s": wall / len(results), "task_s": own / len(results),
                    "overhead_s": (wall - own) / len(results)}

        for mode, warm in (("cold", False), ("warm", True)):
            sched = Scheduler(engine(mode), jobs=1, warm=warm, workdir=Path(tmp) / mode)
            t0 = time.perf_counter()
            result = sched.run(trivial_specs(runs))
            out[mode] = row(time.perf_counter() - t0, result.ran)
        with Scheduler(engine("steady"), jobs=1, workdir=Path(tmp) / "steady") as sched:
            sched.run_one(trivial_specs(1, offset=10_000)[0])  # starts the worker
            t0 = time.perf_counter()
            results = sched.run_many(trivial_specs(runs))
            out["warm_steady"] = row(time.perf_counter() - t0, results)
    return out


def table(m: dict[str, dict[str, float]]) -> str:
    cold = m["cold"]["overhead_s"]
    lines = ["| mode | wall/run (s) | task/run (s) | overhead/run (s) | overhead ÷ task | "
             "overhead ÷ cold |", "|---|---:|---:|---:|---:|---:|"]
    names = {"cold": "cold (a process per run)", "warm": "warm (incl. worker start)",
             "warm_steady": "warm, steady"}
    for mode, r in m.items():
        lines.append(f"| {names[mode]} | {r['wall_s']:.3f} | {r['task_s']:.4f} | "
                     f"{r['overhead_s']:.3f} | {r['overhead_s'] / max(r['task_s'], 1e-9):.1f} | "
                     f"{r['overhead_s'] / cold:.3f} |")
    steady = m["warm_steady"]["overhead_s"]
    lines.append(f"\nsteady warm overhead {steady:.3f} s per run: target ≤ {TARGET_S:g} s "
                 f"{'met' if steady <= TARGET_S else 'MISSED'}; warm is "
                 f"{cold / max(steady, 1e-9):.0f}× less overhead than cold")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m suite.overhead",
        description="Scheduler overhead per run (wall of trivial runs minus their own time), "
                    "cold workers vs warm ones, measured in one invocation.",
        epilog="example: python -m suite.overhead --runs 8")
    ap.add_argument("--runs", type=int, default=8, help="trivial runs per mode (default 8)")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be ≥ 1")
    m = measure(args.runs)
    print(json.dumps(m, indent=1) if args.json else table(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
