"""The sweep verb end to end, as a user runs it: `python -m suite sweep` on both arms of a
smoke delta claim is SIGKILLed in the middle of a trial, rerun (the killed trial is retried
with its point and its run resumes from its checkpoint; each arm ends with exactly its budget),
then `run --use-best` runs each arm at its best point and `report` says it was tuned."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

REPO = Path(__file__).resolve().parent.parent

TASKS = """
[papers.demo]
title = "demo"

[defaults]
task = "train_eval"

[[claim]]
id = "demo/delta"
paper = "demo"
source = "Table 0"
model = "test_cnn"
dataset = "synthetic"
model_args = { width = 4, pool = "avg" }
dataset_args = { train_size = 128, test_size = 32, size = 16, num_classes = 4 }
params = { epochs = 4, batch_size = 16, lr = 0.03, schedule = "constant" }
seeds = [0]
min_runs = 1
expect = { kind = "delta", metric = "top1", direction = "equal", tolerance = 1000.0, baseline = { model_args = { pool = "max" } } }
[claim.tiers.smoke]
timeout_s = 300
[claim.tiers.smoke.sweep]
trials = 1
val_split = 0.25
pruner = "none"
params.lr = { low = 0.01, high = 0.1, log = true }
"""

pytestmark = pytest.mark.slow


def cmd(tmp: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "suite", "--tasks", str(tmp / "tasks.toml"),
            "--db", f"sqlite:///{tmp / 'results.db'}", *args]


SWEEP = ("sweep", "demo/delta", "--tier", "smoke", "--no-mlflow", "--no-progress")


def test_sweep_sigkill_resume_then_use_best(tmp_path: Path) -> None:
    tmp = tmp_path
    (tmp / "tasks.toml").write_text(TASKS)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    storage = f"sqlite:///{tmp / 'optuna.db'}"
    sweep_cmd = cmd(tmp, *SWEEP, "--storage", storage, "--workdir", str(tmp / "w"))

    proc = subprocess.Popen(sweep_cmd, cwd=tmp, env=env, stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True)
    seen, deadline = [], time.time() + 240
    for line in proc.stderr:
        seen.append(line)
        if "trial 0 [treatment] epoch 2/4" in line:
            break
        assert time.time() < deadline, "".join(seen)
    os.kill(proc.pid, signal.SIGKILL)  # the sweep process, in the middle of trial 0
    proc.wait()
    time.sleep(2.0)  # its worker dies with it (PR_SET_PDEATHSIG)
    assert len(list((tmp / "w" / "checkpoints").glob("*.pt"))) == 1
    name = next(n for n in optuna.get_all_study_names(storage) if ":treatment#" in n)
    killed = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert [t.state for t in killed] == [optuna.trial.TrialState.RUNNING]
    con = sqlite3.connect(tmp / "results.db")
    assert con.execute("select count(*) from runs").fetchone()[0] == 0, "no partial rows"
    con.close()

    done = subprocess.run(sweep_cmd, cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "were left running by a sweep that died; retrying them" in done.stderr
    assert done.stderr.count("0 of 1 trials finished") == 2  # nothing had finished
    studies = {n.split(":")[1].split("#")[0]: optuna.load_study(study_name=n, storage=storage)
               for n in optuna.get_all_study_names(storage)}
    assert set(studies) == {"treatment", "baseline"}
    states = {arm: [t.state.name for t in s.get_trials()] for arm, s in studies.items()}
    assert states == {"treatment": ["FAIL", "COMPLETE"], "baseline": ["COMPLETE"]}
    t_killed, t_retry = studies["treatment"].get_trials()
    assert t_retry.params == t_killed.params and t_retry.user_attrs["retry_of"] == 0
    assert t_retry.user_attrs["attempt"] == 1, "a killed sweep spends none of the retries"
    assert t_retry.user_attrs["run_key"] == t_killed.user_attrs["run_key"]
    # equal budget, same space, and the seeded sampler starts both arms on the same point
    assert t_killed.params == studies["baseline"].get_trials()[0].params

    con = sqlite3.connect(tmp / "results.db")
    rows = con.execute("select run_key, arm, status, attempts, provenance, config from runs"
                       ).fetchall()
    assert len(rows) == 2 and {r[1:4] for r in rows} == {("sweep", "ok", 1)}
    prov = {r[0]: json.loads(r[4]) for r in rows}
    resumed = prov[t_killed.user_attrs["run_key"]].get("resumed_from_epoch")
    assert resumed is not None and resumed >= 1, "the retried trial resumed its run"
    points = con.execute("select count(*) from series s join runs r on s.run_id = r.id "
                         "where s.name = 'val_top1' and r.run_key = ?",
                         (t_killed.user_attrs["run_key"],)).fetchone()[0]
    assert points == 4, "the full per-epoch history, no duplicated epochs"
    con.close()
    assert not list((tmp / "w" / "checkpoints").glob("*.pt"))

    run = subprocess.run(cmd(tmp, "run", "--tier", "smoke", "--use-best", "--no-mlflow",
                             "--no-progress", "--storage", storage, "--workdir",
                             str(tmp / "w")), cwd=tmp, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "demo/delta: tuned: Optuna tpe, 1 trials per arm" in run.stderr
    assert "(tuned)" in run.stdout
    con = sqlite3.connect(tmp / "results.db")
    best = {arm: s.best_params["params.lr"] for arm, s in studies.items()}
    tuned = {r[0]: json.loads(r[1])["params"] for r in con.execute(
        "select arm, config from runs where arm != 'sweep'")}
    con.close()
    assert {arm: p["lr"] for arm, p in tuned.items()} == best
    assert all("val_split" not in p for p in tuned.values()), "tuned runs train on all data"

    report = subprocess.run(cmd(tmp, "report", "--tier", "smoke", "--use-best", "--storage",
                                storage), cwd=tmp, env=env, capture_output=True, text=True,
                            timeout=300)
    assert report.returncode == 0, report.stderr
    out = " ".join(report.stdout.split())  # rich wraps long cells
    assert "reproduced (tuned)" in out
    assert ("demo/delta: tuned: Optuna tpe, 1 trials per arm (no pruning), objective val_top1 "
            "on 25% of the training set held out (never the test set)") in out
    assert "sweeps, tier smoke" in out and "1/0/0" in out
    assert "1/0/1" in out  # treatment: 1 complete, 0 pruned, 1 failed (the killed one)
