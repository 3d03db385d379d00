"""Run planned specs on a backend, skipping what is done, leasing what runs, recording results.

* Skips run_keys that already have an ``ok`` row; retries ``error``/``skipped``/``timeout``.
* Backends (one job each): ``local`` — :mod:`suite.pool`, one warm worker process per device
  slot from ``--devices`` (``cpu`` or ``cuda:0,cuda:1``; ``--jobs N`` slots, round-robin over
  devices); ``ray`` — :mod:`suite.ray_backend`, one Ray task per run on a cluster.
* Before a run starts, its run_key is leased in the results DB (:mod:`suite.leases`), so two
  schedulers on one database never run a key twice; a key another live scheduler holds is
  retried every few seconds until that scheduler records it (or dies and its lease lapses).
* A result is recorded in one DB transaction (the lease released in the same one) as soon
  as its run finishes, mirrored to MLflow first so the row carries the MLflow id. A crash,
  timeout or missing RESULT line becomes a row with that status and the worker's last
  stderr lines, never a hole. Only this process writes the DB, whatever the backend.
* Runs of a task registered with ``exclusive=True`` run alone on their machine
  (:mod:`suite.runlock`).
* Workers die with the scheduler (Linux ``PR_SET_PDEATHSIG``); their per-epoch checkpoints
  survive, so rerunning the same command after a SIGKILL resumes the runs that were in
  flight from their last epoch, with no duplicate or partial rows.

The API a sweep (or any program) uses to run specs and get their recorded results back::

    with Scheduler(engine, backend="local", jobs=2, workdir=".cache/poolrepro") as sched:
        result = sched.run_one(spec)            # the RESULT dict, recorded in the DB
        results = sched.run_many([s1, s2, s3])  # in the order given, run in parallel

``run_one``/``run_many`` are thread-safe (Optuna's ``n_jobs`` threads may call them at
once); a spec that is already ``ok`` in the DB is not rerun (unless ``force=True``): its
stored result is returned. ``control(progress) -> reason | None`` (local backend) sees each
epoch's ``{"run_key", "epoch", "total", "metrics"}`` and may stop the run there by returning
a reason: pruning. So does :meth:`Scheduler.stop` (e.g. from a ``progress`` event handler).
A stopped run is recorded as ``pruned`` with the reason, its last epoch's metrics and the
epochs so far as its series; the warm worker is not killed, it serves the next run.
"""

from __future__ import annotations

import collections
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite import db
from suite.leases import Claim, Fingerprint, Leases
from suite.provenance import git_state
from suite.specs import RunSpec

BACKENDS = ("local", "ray")


@dataclass
class Outcome:
    ran: list[dict[str, Any]] = field(default_factory=list)  # RESULT dicts recorded this time
    skipped_ok: list[str] = field(default_factory=list)  # run keys already ok
    elsewhere: list[str] = field(default_factory=list)  # run keys another scheduler ran meanwhile

    def count(self, status: str) -> int:
        return sum(r["status"] == status for r in self.ran)


def parse_devices(devices: str) -> list[str]:
    out = [d.strip() for d in devices.split(",") if d.strip()]
    for d in out:
        if d != "cpu" and not (d.startswith("cuda") and (d == "cuda" or d[5:].isdigit())):
            raise ValueError(f"--devices: {d!r} is not a device; use 'cpu' or 'cuda:0,cuda:1'")
    return out or ["cpu"]


def is_exclusive(spec: RunSpec) -> bool:
    """Whether ``spec``'s task is registered with ``exclusive=True`` (runs alone)."""
    from tasks import TASKS

    try:
        return bool(TASKS.entry(spec.task).meta.get("exclusive"))
    except KeyError:
        return False


def _fingerprint(row: db.Run | None) -> Fingerprint:
    return None if row is None else (row.id, row.status, row.attempts, row.finished_at)


class Scheduler:
    def __init__(self, engine, *, devices: str = "cpu", jobs: int | None = None,
                 workdir: str | os.PathLike = ".cache/poolrepro", mirror=None,
                 paper_of: Callable[[str], str] | None = None,
                 on_event: Callable[[str, dict[str, Any]], None] | None = None,
                 timeout_scale: float = 1.0, backend: str = "local", warm: bool = True,
                 address: str | None = None, cpus_per_run: float = 1.0,
                 gpus_per_run: float = 0.0, lease_ttl: float = 60.0,
                 poll_s: float | None = None):
        self.engine = engine
        self.devices = parse_devices(devices)
        if jobs is not None and jobs < 1:
            raise ValueError("--jobs must be ≥ 1")
        if backend not in BACKENDS:
            raise ValueError(f"backend {backend!r}: use one of {', '.join(BACKENDS)}")
        self.jobs = jobs
        self.backend_name = backend
        self.warm = warm
        self.address = address
        self.cpus_per_run, self.gpus_per_run = cpus_per_run, gpus_per_run
        self.workdir = Path(workdir).resolve()
        self.mirror = mirror
        self.paper_of = paper_of or (lambda cid: cid.split("/")[0])
        self.on_event = on_event or (lambda kind, data: None)
        self.timeout_scale = timeout_scale
        self.git = git_state()
        self.leases = Leases(engine, ttl=lease_ttl)
        self.poll_s = poll_s if poll_s is not None else min(5.0, lease_ttl / 4)
        self._backend: Any = None
        self._open_lock = threading.Lock()
        self._record_lock = threading.Lock()
        self._stops: dict[str, str] = {}  # run_key -> why to stop it (see stop())

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> Scheduler:
        """Start the backend (workers, or the Ray connection) and the lease heartbeat."""
        with self._open_lock:
            if self._backend is None:
                self._backend = self._make_backend()
                self.leases.start()
        return self

    def close(self, cancel: bool = False) -> None:
        """Stop the backend (``cancel``: kill runs in flight) and give back every lease."""
        with self._open_lock:
            if self._backend is not None:
                (self._backend.terminate if cancel else self._backend.close)()
                self._backend = None
                self.leases.close()

    def __enter__(self) -> Scheduler:
        return self.open()

    def __exit__(self, exc_type, *exc: Any) -> None:
        self.close(cancel=exc_type is not None)

    def _make_backend(self) -> Any:
        if self.backend_name == "ray":
            from suite.ray_backend import RayBackend

            return RayBackend(address=self.address, workdir=self.workdir,
                              provenance=self.git, timeout_scale=self.timeout_scale,
                              cpus_per_run=self.cpus_per_run, gpus_per_run=self.gpus_per_run,
                              jobs=self.jobs,
                              on_event=lambda kind, data: self.on_event(kind, data))
        from suite.pool import Slot, WorkerPool

        def events(kind: str, data: dict[str, Any]) -> None:  # on_event may be reassigned
            self.on_event(kind, data)

        jobs = self.jobs or 1
        devices = [self.devices[i % len(self.devices)] for i in range(jobs)]
        cpu_jobs = sum(d == "cpu" for d in devices)
        threads = max(1, (os.cpu_count() or 1) // max(1, cpu_jobs))
        slots = [Slot(d, threads if d == "cpu" else None) for d in devices]
        return WorkerPool(slots, workdir=self.workdir, provenance=self.git,
                          timeout_scale=self.timeout_scale, warm=self.warm, on_event=events)

    # -- selection ---------------------------------------------------------------------------
    def pending(self, specs: list[RunSpec], force: bool = False) -> tuple[list[RunSpec],
                                                                         list[str]]:
        todo, done, _ = self._select(specs, force)
        return todo, done

    def _select(self, specs: list[RunSpec], force: bool
                ) -> tuple[list[RunSpec], list[str], dict[str, Fingerprint]]:
        have = db.runs_by_key(self.engine, [s.run_key for s in specs])
        todo, done, seen = [], [], {}
        for s in specs:
            row = have.get(s.run_key)
            if row is not None and row.status == "ok" and not force:
                done.append(s.run_key)
            else:
                todo.append(s)
                seen[s.run_key] = _fingerprint(row)
        return todo, done, seen

    # -- execution ---------------------------------------------------------------------------
    def stop(self, run_key: str, reason: str) -> None:
        """Stop the run ``run_key`` after its current epoch (thread-safe; e.g. from an
        ``on_event`` handler of its ``progress``): recorded as ``pruned`` with ``reason``.
        Local backend only (Ray runs report no epochs)."""
        self._stops[run_key] = reason

    def _control(self, user: Callable[[dict[str, Any]], str | None] | None
                 ) -> Callable[[dict[str, Any]], str | None]:
        def control(progress: dict[str, Any]) -> str | None:
            reason = self._stops.pop(progress.get("run_key", ""), None)
            return reason or (user(progress) if user is not None else None)

        return control

    def run(self, specs: list[RunSpec], force: bool = False) -> Outcome:
        """Run every spec not already ok; record each result; report events to ``on_event``."""
        todo, done, seen = self._select(specs, force)
        out = Outcome(skipped_ok=done)
        if not todo:
            return out
        self.on_event("start", {"total": len(todo), "already_ok": len(done)})
        opened = self._backend is None
        self.open()
        failed = True
        try:
            for key, (how, result) in self._execute(todo, seen).items():
                if how == "ran":
                    out.ran.append(result)
                else:
                    out.elsewhere.append(key)
            failed = False
        finally:
            if opened:
                self.close(cancel=failed)
        return out

    def run_one(self, spec: RunSpec, *, force: bool = False,
                control: Callable[[dict[str, Any]], str | None] | None = None
                ) -> dict[str, Any]:
        """Run ``spec`` (unless already ok) and return its recorded RESULT dict."""
        return self.run_many([spec], force=force, control=control)[0]

    def run_many(self, specs: list[RunSpec], *, force: bool = False,
                 control: Callable[[dict[str, Any]], str | None] | None = None
                 ) -> list[dict[str, Any]]:
        """Run the specs not already ok (in parallel, up to the backend's slots) and return
        every spec's recorded RESULT dict, in the order given."""
        todo, _, seen = self._select(specs, force)
        self.open()
        got = self._execute(todo, seen, control) if todo else {}
        results = {k: r for k, (how, r) in got.items() if how == "ran"}
        stored = db.runs_by_key(self.engine, [s.run_key for s in specs
                                              if s.run_key not in results])
        return [results.get(s.run_key) or db.run_to_result(stored[s.run_key]) for s in specs]

    def _execute(self, todo: list[RunSpec], seen: dict[str, Fingerprint],
                 control: Callable[[dict[str, Any]], str | None] | None = None
                 ) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """Lease, submit and record ``todo``: run_key -> ("ran", result) or ("elsewhere", None).

        At most the backend's capacity is leased at a time, so a second scheduler can take
        the rest. Keys held by another live scheduler wait and are retried every ``poll_s``.
        """
        backend = self._backend
        finished: queue.Queue = queue.Queue()
        pending = collections.deque(todo)
        waiting: list[RunSpec] = []
        inflight: set[str] = set()
        out: dict[str, tuple[str, dict[str, Any] | None]] = {}
        told_waiting = False
        while pending or waiting or inflight:
            while pending and len(inflight) < backend.capacity:
                spec = pending.popleft()
                claim = self.leases.claim(spec.run_key, seen.get(spec.run_key))
                if claim is Claim.CLAIMED:
                    fut = backend.submit(spec, exclusive=is_exclusive(spec),
                                         control=self._control(control))
                    inflight.add(spec.run_key)
                    fut.add_done_callback(lambda f, s=spec: finished.put((s, f)))
                elif claim is Claim.DONE:
                    out[spec.run_key] = ("elsewhere", None)
                    self.on_event("elsewhere", {"spec": spec.to_dict()})
                else:
                    waiting.append(spec)
            if not inflight and not waiting:
                continue  # the fill loop ran dry: nothing left to wait for
            if waiting and not pending and not told_waiting:
                self.on_event("waiting", {"n": len(waiting)})
                told_waiting = True
            try:
                spec, fut = finished.get(timeout=self.poll_s if waiting and not pending
                                         else None)
            except queue.Empty:
                pending.extend(waiting)
                waiting.clear()
                continue
            inflight.discard(spec.run_key)
            result = fut.result()  # re-raises bugs of the backend, never run failures
            self._record(result)
            out[spec.run_key] = ("ran", result)
            self.on_event("done", result)
            if waiting and not pending:
                pending.extend(waiting)
                waiting.clear()
        return out

    def _record(self, result: dict[str, Any]) -> None:
        with self._record_lock:
            if self.mirror is not None:
                try:
                    result["mlflow_run_id"] = self.mirror.log(
                        result, self.paper_of(result["spec"]["claim_id"]))
                except Exception as e:  # MLflow trouble never loses a result
                    result.setdefault("provenance", {})["mlflow_error"] = str(e)[:500]
            self.leases.record(result)
