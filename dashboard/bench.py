"""Benchmark: how long the overview takes to render over a large results database.

``python -m dashboard.bench`` (part of ``nox -s bench``) writes a synthetic claims file and a
results DB of ``--runs`` runs (delta claims of 3 seeds × 2 arms at the mini tier, each run with
four metrics and three 10-epoch curves; one run in twenty failed) into a temporary folder,
then renders the Overview page with Streamlit's ``AppTest``:

* *cold*: a new session with empty caches (claims parsed, runs loaded, every claim judged);
* *warm*: another new session once the caches hold the data (what every later visitor gets).

It prints both and exits 1 when the cold render exceeds ``--target`` seconds (2 by default).
Imports are warmed up first on an empty database, so the numbers are the page's own work.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ENTRY = Path(__file__).resolve().parent / "streamlit_app.py"


def claims_toml(n_claims: int) -> str:
    head = ('[papers.bench]\ntitle = "Synthetic claims of the dashboard benchmark"\n\n'
            '[defaults]\ntask = "train_eval"\nmodel = "test_cnn"\ndataset = "synthetic"\n'
            "seeds = [0, 1, 2]\n\n")
    body = []
    for i in range(n_claims):
        body.append(
            f'[[claim]]\nid = "bench/c{i:05d}"\npaper = "bench"\nsource = "synthetic"\n'
            f'title = "Synthetic delta claim {i}"\ntags = ["bench", "t{i % 7}"]\n'
            f'model_args = {{ pool = "softpool" }}\nparams = {{ epochs = {i + 1} }}\n'
            f'expect = {{ kind = "delta", metric = "top1", direction = "higher", '
            f'min_diff = 0.5, baseline = {{ model_args = {{ pool = "max" }} }} }}\n'
            f'published = {{ value = 1.0, unit = "pp" }}\n'
            f"tiers = {{ mini = {{}} }}\n")
    return head + "\n".join(body)


def build(folder: Path, n_runs: int) -> tuple[str, Path]:
    """Write the claims file and a DB of ``n_runs`` runs with bulk inserts."""
    import random

    from sqlalchemy import insert

    from suite import db
    from suite.claims import load_claims
    from suite.plan import make_plan

    n_claims = max(1, n_runs // 6)
    tasks = folder / "tasks.toml"
    tasks.write_text(claims_toml(n_claims), encoding="utf-8")
    _, claims = load_claims(tasks)
    url = f"sqlite:///{folder / 'results.db'}"
    engine = db.connect(url)
    rng = random.Random(0)
    specs = make_plan(claims, "mini").runs[:n_runs]
    runs, metrics, series = [], [], []
    for i, s in enumerate(specs, start=1):
        ok = i % 20 != 0
        top1 = 60 + rng.gauss(0, 2) + (1.5 if s.arm == "treatment" else 0)
        runs.append({
            "id": i, "run_key": s.run_key, "claim_id": s.claim_id, "claim_hash": s.claim_hash,
            "tier": s.tier, "arm": s.arm, "seed": s.seed, "task": s.task, "model": s.model,
            "dataset": s.dataset, "config": s.to_dict(), "status": "ok" if ok else "error",
            "message": "" if ok else "synthetic failure", "attempts": 1, "wall_s": 30.0,
            "git_sha": "0" * 40, "git_dirty": False, "python_version": "3.11",
            "torch_version": "2", "device_name": "CPU bench", "provenance": {}})
        if ok:
            metrics += [{"run_id": i, "name": n, "value": v} for n, v in (
                ("top1", top1), ("top1_err", 100 - top1), ("test_loss", 1.0), ("wall_s", 30.0))]
            series += [{"run_id": i, "name": n, "step": e, "value": top1 * (e + 1) / 10}
                       for n in ("test_top1", "train_loss", "lr") for e in range(10)]
    with engine.begin() as conn:
        conn.execute(insert(db.Run), runs)
        conn.execute(insert(db.Metric), metrics)
        conn.execute(insert(db.SeriesPoint), series)
    engine.dispose()
    return url, tasks


def render_overview(url: str, tasks: Path) -> tuple[float, str]:
    from streamlit.testing.v1 import AppTest

    os.environ["POOLREPRO_DB"], os.environ["POOLREPRO_TASKS"] = url, str(tasks)
    at = AppTest.from_file(str(ENTRY), default_timeout=120)
    t = time.perf_counter()
    at.run()
    dt = time.perf_counter() - t
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    html = "".join(m.value for m in at.markdown)
    return dt, html


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dashboard.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=10_000, help="runs in the synthetic DB")
    ap.add_argument("--target", type=float, default=2.0, help="seconds for a cold render")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="poolrepro-bench-") as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        url, tasks = build(folder, args.runs)
        print(f"built {args.runs:,} runs in {time.perf_counter() - t:.1f} s")
        render_overview(f"sqlite:///{folder / 'missing.db'}", tasks)  # warm the imports
        cold, html = render_overview(url, tasks)
        warm, _ = render_overview(url, tasks)
        assert "bench/c00000" in html, "the overview did not list the claims"
    ok = cold <= args.target
    print(f"overview over {args.runs:,} runs: cold {cold:.2f} s, warm {warm:.2f} s "
          f"(target: cold ≤ {args.target:g} s) -> {'ok' if ok else 'TOO SLOW'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
