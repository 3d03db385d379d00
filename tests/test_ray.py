"""The Ray backend (suite/ray_backend.py) on a real local Ray cluster (2 CPUs, loopback):
smoke claims run through it and are recorded by the scheduler alone; a Ray worker killed
mid-run is an error row and the batch goes on; leases hold between a Ray scheduler and a
local one on the same database; the CLI's --backend ray. (Without Ray: tests/test_cli.py.)
The cluster listens on loopback only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import TWO_SCHEDULERS_TASKS, check_two_schedulers

from suite import db
from suite.claims import load_claims, select
from suite.plan import make_plan
from suite.scheduler import Scheduler
from suite.specs import RunSpec

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback, read at import
ray = pytest.importorskip("ray")
from suite import ray_backend  # noqa: E402  (after the skip: needs ray)

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real local Ray cluster with 2 CPUs, started the way `run --backend ray` starts its
    private one (`ray.init(num_cpus=2)` on loopback, the code as runtime_env); the tests'
    schedulers join it, and closing the first backend shuts it down."""
    backend = ray_backend.RayBackend(workdir=tmp_path_factory.mktemp("ray"), num_cpus=2)
    assert backend.started_ray and backend.capacity == 2
    assert [n["NodeManagerAddress"] for n in ray.nodes()] == ["127.0.0.1"]
    yield
    backend.close()


def smoke_specs(pattern: str) -> list[RunSpec]:
    _, claims = load_claims(REPO / "tasks.toml")
    return make_plan(select(claims, claim=pattern), "smoke").runs


def ray_worker_running(name: str) -> int | None:
    """PID of the Ray worker process whose title names the task ``name`` (ray::<name>)."""
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if cmd.startswith(b"ray::") and name.encode() in cmd:
                return int(d.name)
    return None


def test_smoke_claims_through_ray_with_a_crashing_worker(cluster, tmp_path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    specs = smoke_specs("suite/smoke/*")
    victim = RunSpec(claim_id="demo/crash", tier="smoke", arm="treatment", seed=0,
                     task="train_eval", model="test_cnn", dataset="synthetic",
                     model_args={"width": 4},
                     dataset_args={"train_size": 256, "test_size": 32, "size": 16},
                     params={"epochs": 400, "batch_size": 32, "lr": 0.05}, device="cpu",
                     timeout_s=600)
    events: list[str] = []
    sched = Scheduler(engine, backend="ray", workdir=tmp_path / "w",
                      on_event=lambda kind, data: events.append(kind))
    killed: list[int] = []

    def killer() -> None:  # SIGKILL the Ray worker once the victim has trained an epoch
        ckpt = tmp_path / "w" / "checkpoints" / f"{victim.run_key}.pt"
        deadline = time.time() + 300
        while time.time() < deadline and not killed:
            pid = ray_worker_running("demo/crash") if ckpt.exists() else None
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.2)

    t = threading.Thread(target=killer)
    t.start()
    out = sched.run([victim, *specs])
    t.join()
    assert killed, "the victim's Ray worker was found and killed"
    by_key = {r["spec"]["run_key"]: r for r in out.ran}
    assert by_key[victim.run_key]["status"] == "error"
    assert "WorkerCrashedError" in by_key[victim.run_key]["message"]
    assert all(by_key[s.run_key]["status"] == "ok" for s in specs), "the batch continued"
    rows = db.runs_by_key(engine)
    assert len(rows) == len(specs) + 1, "every run recorded, once, by the scheduler"
    assert {rows[s.run_key].metric_dict()["top1"] >= 0 for s in specs} == {True}
    assert events.count("launch") == len(specs) + 1 and events.count("done") == len(specs) + 1
    # skip-done: the same batch again runs nothing but the failed run
    again = Scheduler(engine, backend="ray", workdir=tmp_path / "w").run(specs)
    assert again.ran == [] and len(again.skipped_ok) == len(specs)


def test_sweep_api_through_ray(cluster, tmp_path) -> None:
    """run_one / run_many return the recorded RESULT dicts (a stored one when already ok)."""
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    specs = smoke_specs("suite/smoke/learns")
    with Scheduler(engine, backend="ray", workdir=tmp_path / "w") as sched:
        results = sched.run_many(specs)
        assert [r["spec"]["run_key"] for r in results] == [s.run_key for s in specs]
        assert all(r["status"] == "ok" for r in results)
        again = sched.run_one(specs[0])
    assert again["metrics"]["top1"] == pytest.approx(results[0]["metrics"]["top1"])
    assert db.runs_by_key(engine)[specs[0].run_key].attempts == 1


def test_leases_hold_between_a_ray_and_a_local_scheduler(cluster, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'r.db'}"
    engine = db.connect(url)
    (tmp_path / "tasks.toml").write_text(TWO_SCHEDULERS_TASKS)
    _, claims = load_claims(tmp_path / "tasks.toml")
    specs = make_plan(claims, "full").runs
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    local = subprocess.Popen(
        [sys.executable, "-m", "suite", "--tasks", str(tmp_path / "tasks.toml"), "--db", url,
         "run", "--tier", "full", "--no-mlflow", "--no-progress", "--workdir",
         str(tmp_path / "w")], cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out = Scheduler(engine, backend="ray", workdir=tmp_path / "w").run(specs)
    stdout, stderr = local.communicate(timeout=600)
    fake = subprocess.CompletedProcess(
        [], 0, "", f"ran {len(out.ran)}: ok {out.count('ok')}, error {out.count('error')}")
    check_two_schedulers(engine, [fake, subprocess.CompletedProcess([], local.returncode,
                                                                   stdout, stderr)])


def test_cli_backend_ray(cluster, tmp_path, monkeypatch, capsys) -> None:
    """`python -m suite run --backend ray` (in-process: it joins the running cluster)."""
    from suite.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["--db", f"sqlite:///{tmp_path / 'r.db'}", "run", "--tier", "smoke", "--claim",
            "suite/smoke/learns", "--backend", "ray", "--no-mlflow", "--no-progress",
            "--workdir", str(tmp_path / "w"), "--tasks", str(REPO / "tasks.toml")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "ran 2: ok 2" in err and "on ray" in err, err[-3000:]
    assert main(argv) == 0
    assert "ran 0" in capsys.readouterr().err, "skip-done: the second run does nothing"
