"""Run planned specs over a local pool of devices, one worker process per run.

* Skips run_keys that already have an ``ok`` row; retries ``error``/``skipped``/``timeout``.
* Each run is ``python -m suite.worker SPEC.json`` in its own process (own seed, own
  timeout, killed with its process group on timeout), on a device slot from ``--devices``
  (``cpu`` or ``cuda:0,cuda:1``; ``--jobs N`` runs N at a time, round-robin over devices).
* A result is recorded in one DB transaction as soon as its worker finishes (and mirrored to
  MLflow first, so the row carries the MLflow id). A crash, timeout, or missing RESULT line
  becomes a row with that status and the worker's last stderr lines, never a hole.
* Workers die with the scheduler (Linux ``PR_SET_PDEATHSIG``); their per-epoch checkpoints
  survive, so rerunning the same command after a SIGKILL resumes the runs that were in
  flight from their last epoch, with no duplicate or partial rows.
* :meth:`Scheduler.stop` ends a run early on request (a tuner's pruner, from the
  ``progress`` event of its epoch): the worker is killed and the run is recorded as
  ``pruned`` with the per-epoch metrics its ``PROGRESS`` lines reported.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite import db
from suite.provenance import git_state
from suite.specs import RunSpec

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    ran: list[dict[str, Any]] = field(default_factory=list)  # RESULT dicts recorded this time
    skipped_ok: list[str] = field(default_factory=list)  # run keys already ok

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.ran)


def _die_with_parent() -> None:  # runs in the child between fork and exec
    os.setsid()
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def parse_devices(devices: str) -> list[str]:
    out = [d.strip() for d in devices.split(",") if d.strip()]
    for d in out:
        if d != "cpu" and not (d.startswith("cuda") and (d == "cuda" or d[5:].isdigit())):
            raise ValueError(f"--devices: {d!r} is not a device; use 'cpu' or 'cuda:0,cuda:1'")
    return out or ["cpu"]


class Scheduler:
    def __init__(self, engine, *, devices: str = "cpu", jobs: int = 1,
                 workdir: str | os.PathLike = ".cache/poolrepro", mirror=None,
                 paper_of: Callable[[str], str] | None = None,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 timeout_scale: float = 1.0):
        self.engine = engine
        self.devices = parse_devices(devices)
        if jobs < 1:
            raise ValueError("--jobs must be ≥ 1")
        self.jobs = jobs
        self.workdir = Path(workdir).resolve()  # workers run with cwd = the repo
        self.mirror = mirror
        self.paper_of = paper_of or (lambda cid: cid.split("/")[0])
        self.on_event = on_event or (lambda kind, data: None)
        self.timeout_scale = timeout_scale
        self.git = git_state()
        self._stops: dict[str, str] = {}  # run_key -> why it is to stop (see stop())

    # -- selection ---------------------------------------------------------------------
    def pending(self, specs: list[RunSpec], force: bool = False) -> tuple[list[RunSpec],
                                                                         list[str]]:
        keys = [s.run_key for s in specs]
        have = db.runs_by_key(self.engine, keys)
        todo, done = [], []
        for s in specs:
            row = have.get(s.run_key)
            if row is not None and row.status == "ok" and not force:
                done.append(s.run_key)
            else:
                todo.append(s)
        return todo, done

    def stop(self, run_key: str, reason: str) -> None:
        """Stop the run ``run_key`` now (thread-safe; e.g. from an ``on_event`` handler).

        Its worker is killed and the run recorded with status ``pruned``, ``reason`` as the
        message, and the metrics of its ``PROGRESS`` lines (last epoch; series per epoch).
        """
        self._stops[run_key] = reason

    # -- execution ---------------------------------------------------------------------
    def run(self, specs: list[RunSpec], force: bool = False) -> Outcome:
        todo, done = self.pending(specs, force)
        out = Outcome(skipped_ok=done)
        if not todo:
            return out
        (self.workdir / "specs").mkdir(parents=True, exist_ok=True)
        (self.workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
        slots: queue.Queue[tuple[str, int]] = queue.Queue()
        cpu_jobs = sum(1 for i in range(self.jobs) if self.devices[i % len(self.devices)] == "cpu")
        threads = max(1, (os.cpu_count() or 1) // max(1, cpu_jobs))
        for i in range(self.jobs):
            slots.put((self.devices[i % len(self.devices)], threads))
        self.on_event("start", {"total": len(todo), "already_ok": len(done)})
        lock = threading.Lock()

        def one(spec: RunSpec) -> None:
            device, nthreads = slots.get()
            try:
                result = self._run_one(spec, device, nthreads)
                self._record(result)
                with lock:
                    out.ran.append(result)
                self.on_event("done", result)
            finally:
                slots.put((device, nthreads))

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(one, s) for s in todo]
            for f in futures:
                f.result()  # re-raise scheduler bugs (not run failures)
        return out

    def _record(self, result: dict[str, Any]) -> None:
        if self.mirror is not None:
            try:
                result["mlflow_run_id"] = self.mirror.log(
                    result, self.paper_of(result["spec"]["claim_id"]))
            except Exception as e:  # MLflow trouble never loses a result
                result.setdefault("provenance", {})["mlflow_error"] = str(e)[:500]
        db.record_run(self.engine, result)

    def _run_one(self, spec: RunSpec, device: str, threads: int) -> dict[str, Any]:
        key = spec.run_key
        spec_path = self.workdir / "specs" / f"{key}.json"
        tmp = spec_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"spec": spec.to_dict(), "provenance": self.git}))
        os.replace(tmp, spec_path)
        cmd = [sys.executable, "-m", "suite.worker", str(spec_path),
               "--checkpoint-dir", str(self.workdir / "checkpoints"), "--device", device]
        if device == "cpu":
            cmd += ["--threads", str(threads)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.on_event("launch", {"spec": spec.to_dict(), "device": device})
        t0 = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=str(REPO), env=env, preexec_fn=_die_with_parent)
        stderr_tail: list[str] = []

        def drain_err() -> None:
            for line in proc.stderr:
                stderr_tail.append(line)
                del stderr_tail[:-30]

        err_thread = threading.Thread(target=drain_err, daemon=True)
        err_thread.start()
        result: dict[str, Any] | None = None
        timeout = spec.timeout_s * self.timeout_scale
        timer = threading.Timer(timeout, lambda: _kill(proc))
        timer.start()
        progress: list[dict[str, Any]] = []
        try:
            for line in proc.stdout:
                if line.startswith("PROGRESS "):
                    try:
                        data = json.loads(line[9:])
                    except json.JSONDecodeError:
                        continue
                    progress.append(data)
                    self.on_event("progress", data)
                    if key in self._stops:
                        _kill(proc)
                        break
                elif line.startswith("RESULT "):
                    try:
                        result = json.loads(line[7:])
                    except json.JSONDecodeError as e:
                        stderr_tail.append(f"unreadable RESULT line: {e}\n")
            proc.wait()
        finally:
            timer.cancel()
        err_thread.join(timeout=5)
        wall = time.time() - t0
        if key in self._stops:
            return self._stopped(spec, self._stops.pop(key), progress, device, wall)
        if result is not None:
            return result
        timed_out = wall >= timeout
        status = "timeout" if timed_out else "error"
        msg = (f"killed after {timeout:.0f} s (timeout_s); raise timeout_s in tasks.toml or "
               f"pass --timeout-scale" if timed_out else
               f"worker exited with code {proc.returncode} and no RESULT line")
        tail = "".join(stderr_tail[-15:]).strip()
        return {"spec": spec.to_dict(), "status": status,
                "message": msg + (f"\n--- stderr ---\n{tail}" if tail else ""),
                "metrics": {}, "series": {}, "provenance": {**self.git, "device": device},
                "wall_s": wall}


    def _stopped(self, spec: RunSpec, reason: str, progress: list[dict[str, Any]],
                 device: str, wall: float) -> dict[str, Any]:
        """The ``pruned`` result of a run ended by :meth:`stop`; its checkpoint is removed
        (a pruned run is not resumed)."""
        for suffix in (".pt", ".pt.tmp"):
            (self.workdir / "checkpoints" / f"{spec.run_key}{suffix}").unlink(missing_ok=True)
        series: dict[str, list[float]] = {}
        for p in progress:
            for name, value in (p.get("metrics") or {}).items():
                series.setdefault(name, []).append(value)
        last = progress[-1] if progress else {}
        metrics = {k: float(v) for k, v in (last.get("metrics") or {}).items()}
        if progress:
            metrics["epochs"] = float(last.get("epoch", len(progress)))
        return {"spec": spec.to_dict(), "status": "pruned", "message": reason,
                "metrics": metrics, "series": series,
                "provenance": {**self.git, "device": device,
                               "stopped_after_epoch": last.get("epoch")},
                "wall_s": wall}


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
