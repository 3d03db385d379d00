"""Shared test fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `pytest` without an installed package or `python -m`
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="session", autouse=True)
def private_run_lock(tmp_path_factory):
    """The machine-wide run lock (suite/runlock.py) of the tests' schedulers, their
    subprocesses included, is their own: an exclusive benchmark in a test never waits for
    a pilot that happens to run on the same machine, nor delays it."""
    import os

    from suite import runlock

    before = os.environ.get(runlock.ENV)
    os.environ[runlock.ENV] = str(tmp_path_factory.mktemp("runlock"))
    yield
    if before is None:
        os.environ.pop(runlock.ENV, None)
    else:
        os.environ[runlock.ENV] = before


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def db_url(tmp_path) -> str:
    """A fresh SQLite results DB URL in tmp_path (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of micro workloads: on a shared 2-core machine,
    two OpenMP threads contending with other processes run small convolutions up to 20-30x
    slower, and one thread is deterministic. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- two schedulers on one database (tests/test_leases.py, tests/test_postgres.py) -----------
TWO_SCHEDULERS_TASKS = """
[papers.demo]
title = "demo"

[[claim]]
id = "demo/shared"
paper = "demo"
source = "two schedulers"
task = "train_eval"
model = "test_cnn"
dataset = "synthetic"
seeds = [0, 1, 2, 3, 4, 5, 6, 7]
model_args = { width = 4 }
dataset_args = { train_size = 192, test_size = 32, size = 16, num_classes = 4 }
params = { epochs = 2, batch_size = 32, lr = 0.05 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 0.0 }
"""


@pytest.fixture
def two_schedulers(tmp_path):
    """``run(db_url, *extra_args) -> [CompletedProcess, CompletedProcess]``: two
    ``python -m suite run`` commands started together on one database (8 runs of ~0.5 s)."""
    import os
    import subprocess

    tasks = tmp_path / "tasks.toml"
    tasks.write_text(TWO_SCHEDULERS_TASKS)

    def run(db_url: str, *extra: str, extra_second: tuple[str, ...] = ()):
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        procs = []
        for more in (extra, extra_second or extra):
            cmd = [sys.executable, "-m", "suite", "--tasks", str(tasks), "--db", db_url, "run",
                   "--tier", "full", "--no-mlflow", "--no-progress", "--workdir",
                   str(tmp_path / "w"), *more]
            procs.append(subprocess.Popen(cmd, cwd=tmp_path, env=env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        done = []
        for p in procs:
            out, err = p.communicate(timeout=600)
            done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
        return done

    return run


def check_two_schedulers(engine, procs, n_runs: int = 8) -> None:
    """Every run_key ran exactly once, all rows ok, no lease left, both commands done."""
    import re

    from sqlalchemy import func, select

    from suite import db

    ran = []
    for p in procs:
        assert p.returncode == 0, p.stderr[-3000:]
        m = re.search(r"ran (\d+): ok (\d+)", p.stderr)
        assert m, p.stderr[-3000:]
        ran.append(int(m.group(1)))
    assert sum(ran) == n_runs, (ran, [p.stderr[-2000:] for p in procs])
    rows = db.runs_by_key(engine)
    assert len(rows) == n_runs
    assert {r.status for r in rows.values()} == {"ok"}
    assert {r.attempts for r in rows.values()} == {1}, "a run_key was executed twice"
    with db.session(engine) as s:
        assert s.execute(select(func.count()).select_from(db.Lease)).scalar_one() == 0
