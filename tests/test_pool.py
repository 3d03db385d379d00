"""Warm workers (suite/pool.py, suite/worker.py --serve, suite/runstate.py): a run's result
does not depend on what ran before it in the same process; a worker SIGKILLed mid-run or
past its timeout becomes an error/timeout row and is replaced while the batch goes on;
exclusive runs run alone; a caller can stop a run after an epoch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from suite import db, runlock
from suite.pool import Slot, WorkerPool
from suite.scheduler import Scheduler
from suite.specs import RunSpec

REPO = Path(__file__).resolve().parent.parent
TIMING = {"wall_s", "images_per_s"}  # the only metrics allowed to differ between runs


def train(seed=0, **kw) -> RunSpec:
    base = RunSpec(
        claim_id="t/pool", tier="smoke", arm="treatment", seed=seed, task="train_eval",
        model="test_cnn", dataset="synthetic", model_args={"width": 4},
        dataset_args={"train_size": 64, "test_size": 32, "size": 16, "num_classes": 4},
        params={"epochs": 2, "batch_size": 16, "lr": 0.05, "augment": {"flip": True}},
        device="cpu", timeout_s=300)
    return replace(base, **kw)


# Fashion-MNIST: the decoded arrays are cached in the process (lru_cache), the warm-only risk
FMNIST = train(seed=3, dataset="fashion_mnist_32",
               dataset_args={"train_subset": 200, "test_subset": 100},
               model_args={"width": 4},
               params={"epochs": 1, "batch_size": 50, "lr": 0.05,
                       "augment": {"crop_padding": 2, "flip": True}})
# specs that run first in the warm worker: other models, pools that draw random numbers,
# other seeds, another task
BEFORE = [train(seed=5, model_args={"width": 6, "pool": "stochastic"}),
          train(seed=1, model_args={"width": 4, "pool": "softpool"}),
          RunSpec(claim_id="t/pool", tier="smoke", arm="treatment", seed=0,
                  task="param_count", model="test_cnn", dataset="synthetic",
                  model_args={"width": 8})]
TARGETS = [FMNIST]


def comparable(result: dict) -> tuple:
    assert result["status"] == "ok", result["message"]
    metrics = {k: v for k, v in result["metrics"].items() if k not in TIMING}
    return metrics, result["series"]


def cold(spec: RunSpec, tmp: Path) -> dict:
    """The bare-machine path: one fresh `python -m suite.worker SPEC.json` process."""
    path = tmp / f"{spec.run_key}.json"
    path.write_text(json.dumps(spec.to_dict()))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    p = subprocess.run([sys.executable, "-m", "suite.worker", str(path), "--threads", "1"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert len(lines) == 1
    return json.loads(lines[0][7:])


@pytest.fixture(scope="module")
def cold_results(tmp_path_factory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("cold")
    return {s.run_key: cold(s, tmp) for s in TARGETS}


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    """One warm single-slot pool shared by the tests of this module (a worker start costs
    seconds); a test that kills its worker leaves a fresh one behind."""
    with WorkerPool([Slot("cpu", 1)], workdir=tmp_path_factory.mktemp("pool")) as p:
        yield p


def children() -> list[int]:
    """PIDs of this process's `suite.worker --serve` children."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"suite.worker" in cmd and b"--serve" in cmd:
            out.append(int(d.name))
    return out


def test_same_metrics_cold_and_warm_after_other_specs(cold_results, pool) -> None:
    for spec in BEFORE:
        assert pool.submit(spec).result()["status"] == "ok"
    pids = children()
    warm = {s.run_key: pool.submit(s).result() for s in TARGETS}
    assert children() == pids, "one worker served every run"
    for key, result in warm.items():
        assert comparable(result) == comparable(cold_results[key])


def test_global_torch_state_is_reset_before_a_run(cold_results) -> None:
    """What a task may leave behind in its process does not reach the next run."""
    import random

    import torch

    from suite import runstate
    from suite.worker import execute

    runstate.capture()
    spec = TARGETS[0]
    try:
        torch.set_default_dtype(torch.float64)
        torch.set_grad_enabled(False)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.set_anomaly_enabled(True)
        torch.backends.mkldnn.enabled = False
        torch.set_float32_matmul_precision("medium")
        torch.set_autocast_enabled("cpu", True)
        torch.manual_seed(123)
        random.seed(123)
        result = execute(spec, threads=1, emit=lambda *a, **k: None)
        assert comparable(result) == comparable(cold_results[spec.run_key])
        assert torch.get_default_dtype() == torch.float32 and torch.is_grad_enabled()
    finally:
        runstate.reset(0)


def test_sigkill_of_a_warm_worker_mid_run(tmp_path) -> None:
    """The run in flight becomes an error row with the worker's fate; a fresh worker takes
    the rest of the batch."""
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    victim = train(seed=7, params={"epochs": 30, "batch_size": 16, "lr": 0.05})
    rest = [train(seed=8), train(seed=9)]
    killed: list[int] = []
    others = set(children())  # the module's shared pool

    def on_event(kind: str, data: dict) -> None:
        if kind == "progress" and data["run_key"] == victim.run_key and not killed:
            (pid,) = set(children()) - others
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    sched = Scheduler(engine, jobs=1, workdir=tmp_path / "w", on_event=on_event)
    out = sched.run([train(seed=6), victim, *rest])
    assert killed
    by_key = {r["spec"]["run_key"]: r for r in out.ran}
    assert by_key[victim.run_key]["status"] == "error"
    assert "SIGKILL" in by_key[victim.run_key]["message"]
    assert all(by_key[s.run_key]["status"] == "ok" for s in rest), "the batch continued"
    rows = db.runs_by_key(engine)
    assert len(rows) == 4 and rows[victim.run_key].status == "error"
    assert set(children()) <= others, "no worker outlives the scheduler's run"


def test_timeout_kills_the_worker_and_the_next_run_gets_a_fresh_one(pool) -> None:
    slow = train(seed=11, params={"epochs": 500, "batch_size": 16, "lr": 0.05},
                 timeout_s=3)
    assert pool.submit(train(seed=10)).result()["status"] == "ok"  # warm: imports done
    first = children()
    r = pool.submit(slow).result()
    assert r["status"] == "timeout" and "timeout_s" in r["message"]
    assert pool.submit(train(seed=12)).result()["status"] == "ok"
    assert children() != first, "a fresh worker replaced the killed one"


def test_a_caller_can_stop_a_run_after_an_epoch(pool) -> None:
    """`control` (pruning in a sweep): the run ends as pruned with the reason, its last
    epoch's metrics and its epochs so far, and the same worker serves the next run."""
    seen = []

    def control(progress: dict) -> str | None:
        seen.append(progress["epoch"])
        return "pruned by the median rule at epoch 2" if progress["epoch"] == 2 else None

    r = pool.submit(train(seed=13, params={"epochs": 5, "batch_size": 16, "lr": 0.05}),
                    control=control).result()
    pid = children()
    assert r["status"] == "pruned" and r["message"] == "pruned by the median rule at epoch 2"
    assert seen == [1, 2] and len(r["series"]["train_loss"]) == 2
    assert r["metrics"]["epochs"] == 2 and r["metrics"]["train_loss"] == \
        r["series"]["train_loss"][-1]
    assert r["provenance"]["stopped_after_epoch"] == 2
    assert pool.submit(train(seed=14)).result()["status"] == "ok"
    assert children() == pid


def test_scheduler_stop_from_a_progress_handler(tmp_path) -> None:
    """`Scheduler.stop` (the sweeps' pruner hook) ends the run after that epoch: a pruned
    row, its lease given back, and the batch goes on in the same worker."""
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    victim = train(seed=15, params={"epochs": 6, "batch_size": 16, "lr": 0.05})
    sched = Scheduler(engine, jobs=1, workdir=tmp_path / "w")

    def on_event(kind: str, data: dict) -> None:
        if kind == "progress" and data["run_key"] == victim.run_key and data["epoch"] == 3:
            sched.stop(victim.run_key, "pruned at epoch 3")

    sched.on_event = on_event
    out = sched.run([victim, train(seed=16)])
    rows = db.runs_by_key(engine)
    assert rows[victim.run_key].status == "pruned"
    assert rows[victim.run_key].message == "pruned at epoch 3"
    assert len(db.run_to_result(rows[victim.run_key])["series"]["train_loss"]) == 3
    assert out.count("ok") == 1 and out.count("pruned") == 1
    assert not list((tmp_path / "w" / "checkpoints").glob("*.pt")), "a pruned run is not resumed"


def test_exclusive_runs_alone(tmp_path, monkeypatch) -> None:
    """An exclusive run (a timing claim) starts when the other slot has drained, nothing
    starts beside it, and it gets every CPU thread."""
    monkeypatch.setenv(runlock.ENV, str(tmp_path / "lock"))
    spans: dict[str, list[float]] = {}

    def on_event(kind: str, data: dict) -> None:
        if kind in ("launch", "ended"):
            spans.setdefault(data["spec"]["run_key"], []).append(time.monotonic())

    bench = RunSpec(claim_id="t/pool", tier="smoke", arm="treatment", seed=0,
                    task="kernel_bench", model="", dataset="", device="cpu",
                    params={"shapes": ["cifar"], "pools": ["max", "avg"], "scale": 0.004,
                            "repeats": 1})
    normal = [train(seed=s, params={"epochs": 3, "batch_size": 16, "lr": 0.05})
              for s in range(20, 25)]
    with WorkerPool([Slot("cpu", 1), Slot("cpu", 1)], workdir=tmp_path / "w",
                    on_event=on_event) as pool:
        futures = [pool.submit(s) for s in normal[:2]]
        futures.append(pool.submit(bench, exclusive=True))
        futures += [pool.submit(s) for s in normal[2:]]
        results = [f.result() for f in futures]
    assert all(r["status"] == "ok" for r in results), [r["message"] for r in results]
    start, end = spans[bench.run_key]
    for s in normal:
        a, b = spans[s.run_key]
        assert b <= start or a >= end, "a run overlapped the exclusive one"
    assert results[2]["provenance"]["device_name"].endswith(f"({os.cpu_count()} threads)")


def test_runlock_exclusive_waits_for_shared_and_blocks_new_ones(tmp_path, monkeypatch):
    monkeypatch.setenv(runlock.ENV, str(tmp_path))
    log: list[str] = []
    shared_in = threading.Event()

    def shared(name: str, hold_s: float) -> None:
        with runlock.hold(False):
            log.append(f"{name}+")
            shared_in.set()
            time.sleep(hold_s)
            log.append(f"{name}-")

    def exclusive() -> None:
        with runlock.hold(True):
            log.append("X+")
            time.sleep(0.2)
            log.append("X-")

    a = threading.Thread(target=shared, args=("a", 0.6))
    a.start()
    shared_in.wait()
    x = threading.Thread(target=exclusive)
    x.start()
    time.sleep(0.2)  # x now waits for a, holding the gate
    b = threading.Thread(target=shared, args=("b", 0.0))
    b.start()
    for t in (a, x, b):
        t.join()
    assert log == ["a+", "a-", "X+", "X-", "b+", "b-"]


def test_a_failing_callback_fails_its_run_only(pool) -> None:
    """A caller's `control` that raises fails that submission (the caller sees the error);
    the worker, which may be waiting for an answer, is replaced and the next run is fine."""
    def control(progress: dict) -> str | None:
        raise ValueError("a bug in the caller's pruner")

    fut = pool.submit(train(seed=17), control=control)
    with pytest.raises(ValueError, match="pruner"):
        fut.result()
    assert pool.submit(train(seed=18)).result()["status"] == "ok"
