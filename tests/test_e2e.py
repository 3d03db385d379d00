"""End to end, as a user runs it: validate → plan → run 2 seeds on synthetic data → rows and
MLflow runs → verdict → export → rebuild a DB from the export. Also a SIGKILL of the
scheduler mid-run followed by a rerun that resumes and leaves no duplicates."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

TASKS = """
[papers.demo]
title = "demo"

[defaults]
task = "train_eval"
seeds = [0, 1]

[[claim]]
id = "demo/learns"
paper = "demo"
source = "Table 0"
model = "test_cnn"
dataset = "synthetic"
model_args = { width = 4 }
dataset_args = { train_size = 128, test_size = 64, size = 16, num_classes = 4 }
params = { epochs = 3, batch_size = 32, lr = 0.05 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 0.0 }
[claim.tiers.smoke]
params = { epochs = 2 }

[[claim]]
id = "demo/delta"
paper = "demo"
source = "Table 0"
extends = "demo/learns"
model_args = { pool = "avg" }
expect = { kind = "delta", metric = "top1", direction = "equal", tolerance = 1000.0, baseline = { model_args = { pool = "max" } } }
"""


def suite(tmp: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "suite", "--tasks", str(tmp / "tasks.toml"),
                        "--db", f"sqlite:///{tmp / 'results.db'}", *args],
                       cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"suite {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "tasks.toml").write_text(TASKS)
    return tmp_path


def test_end_to_end_smoke(workspace: Path) -> None:
    tmp = workspace
    assert "is valid" in suite(tmp, "validate").stdout
    plan = suite(tmp, "plan", "--tier", "smoke").stdout
    assert "6 run(s)" in plan and "todo" in plan

    r = suite(tmp, "run", "--tier", "smoke", "--jobs", "2", "--workdir", str(tmp / "w"),
              "--mlflow-uri", f"sqlite:///{tmp / 'mlflow.db'}", "--no-progress")
    assert "ran 6: ok 6" in r.stderr, r.stderr

    con = sqlite3.connect(tmp / "results.db")
    rows = con.execute("select run_key, status, mlflow_run_id, git_sha, device_name, arm "
                       "from runs").fetchall()
    assert len(rows) == 6 and {r[1] for r in rows} == {"ok"}
    assert all(r[2] for r in rows), "every run carries its MLflow id"
    assert all(r[4].startswith("CPU") for r in rows)
    assert sorted(r[5] for r in rows) == ["baseline"] * 2 + ["treatment"] * 4
    n_metrics = con.execute("select count(*) from metrics where name = 'top1'").fetchone()[0]
    n_series = con.execute("select count(*) from series where name = 'train_loss'").fetchone()[0]
    assert n_metrics == 6 and n_series == 12  # 2 epochs per run
    con.close()

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}")
    exp = client.get_experiment_by_name("poolrepro/demo")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 6
    assert {r.info.run_id for r in runs} == {r[2] for r in rows}
    one = runs[0]
    assert one.data.tags["run_key"] in {r[0] for r in rows}
    assert "top1" in one.data.metrics and "params.epochs" in one.data.params
    hist = client.get_metric_history(one.info.run_id, "epoch/train_loss")
    assert [m.step for m in hist] == [0, 1]

    # a second run of the same command does nothing
    again = suite(tmp, "run", "--tier", "smoke", "--no-mlflow", "--workdir", str(tmp / "w"))
    assert "ran 0" in again.stderr and "6 already ok" in again.stderr

    rep = suite(tmp, "report", "--tier", "smoke", "--json").stdout
    verdicts = {d["claim"]: d for d in _json_objects(rep)}
    assert verdicts["demo/learns"]["verdict"] == "reproduced"
    assert verdicts["demo/learns"]["stats"]["summary"]["n"] == 2
    assert verdicts["demo/delta"]["verdict"] == "reproduced"
    md = suite(tmp, "report", "--tier", "smoke", "--markdown").stdout
    assert md.startswith("| claim |") and "demo/delta" in md

    suite(tmp, "export", str(tmp / "export.jsonl"))
    lines = (tmp / "export.jsonl").read_text().splitlines()
    assert len(lines) == 6
    # rebuild a fresh database from the export: same runs, same export text
    fresh = tmp / "fresh"
    fresh.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "suite", "--db", f"sqlite:///{fresh / 'r.db'}",
                    "import", str(tmp / "export.jsonl")], check=True, env=env, cwd=fresh,
                   capture_output=True)
    subprocess.run([sys.executable, "-m", "suite", "--db", f"sqlite:///{fresh / 'r.db'}",
                    "export", str(fresh / "again.jsonl")], check=True, env=env, cwd=fresh,
                   capture_output=True)
    assert (fresh / "again.jsonl").read_text() == (tmp / "export.jsonl").read_text()


def _json_objects(text: str) -> list[dict]:
    dec, i, out = json.JSONDecoder(), 0, []
    while i < len(text):
        if text[i] in " \n\r\t":
            i += 1
            continue
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
    return out


SLOW = """
[papers.demo]
title = "demo"

[[claim]]
id = "demo/slow"
paper = "demo"
source = "kill test"
task = "train_eval"
model = "test_cnn"
dataset = "synthetic"
seeds = [0, 1]
model_args = { width = 8 }
dataset_args = { train_size = 1024, test_size = 64, size = 24 }
params = { epochs = 8, batch_size = 64, lr = 0.05 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 0.0 }
"""


def test_sigkill_scheduler_then_resume(tmp_path: Path) -> None:
    (tmp_path / "tasks.toml").write_text(SLOW)
    work = tmp_path / "w"
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "suite", "--tasks", str(tmp_path / "tasks.toml"), "--db",
           f"sqlite:///{tmp_path / 'results.db'}", "run", "--tier", "full", "--no-mlflow",
           "--workdir", str(work), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    deadline = time.time() + 240
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "epoch 3/8" in line:
            break
        assert time.time() < deadline, "".join(seen)
    ckpts = list((work / "checkpoints").glob("*.pt"))
    assert len(ckpts) == 1, "the run in flight has a checkpoint"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(2.0)  # the worker dies with its parent (PR_SET_PDEATHSIG)
    ck = ckpts[0]
    mtime = ck.stat().st_mtime
    time.sleep(3.0)
    assert ck.stat().st_mtime == mtime, "the orphaned worker is still training"
    con = sqlite3.connect(tmp_path / "results.db")
    assert con.execute("select count(*) from runs").fetchone()[0] == 0, "no partial rows"
    con.close()

    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "ran 2: ok 2" in done.stderr
    con = sqlite3.connect(tmp_path / "results.db")
    rows = con.execute("select run_key, status, attempts, provenance from runs").fetchall()
    assert len(rows) == 2 and {r[1] for r in rows} == {"ok"} and {r[2] for r in rows} == {1}
    resumed = [json.loads(r[3]).get("resumed_from_epoch") for r in rows]
    assert sorted(resumed, key=lambda x: x or 0)[-1] >= 2, resumed
    assert ck.stem in {r[0] for r in rows if json.loads(r[3]).get("resumed_from_epoch")}
    epochs = con.execute("select count(*) from series where name = 'train_loss'").fetchone()[0]
    assert epochs == 16, "full per-epoch history, no duplicated epochs"
    assert not list((work / "checkpoints").glob("*.pt")), "checkpoints are removed when done"
