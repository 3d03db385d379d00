"""The Ray backend: each RunSpec is a Ray task; results come back to the scheduler.

``python -m suite run ... --backend ray [--address auto|ray://host:10001]`` sends every run
to a Ray cluster as one task with resource requests (``--cpus-per-run``, default 1;
``--gpus-per-run``, default 0, a fraction such as 0.5 packs two runs on one GPU). The task
runs :func:`suite.worker.execute` in a Ray worker process (long-lived, so warm; the same
per-run state reset as the local warm workers) and returns the RESULT dict. The scheduler
alone writes the database, one transaction per run, with the same skip-done, resume and
lease semantics as the local backend; nothing on the cluster needs database access.

* Without ``--address`` a private single-machine cluster is started on the loopback
  interface and shut down at the end; ``auto`` joins the cluster this machine belongs to
  (``ray start --head`` / ``ray start --address=...``); ``ray://host:10001`` goes through
  Ray Client.
* The code (``suite``, ``tasks``, ``registry``) is shipped with ``runtime_env.py_modules``;
  every node needs the same Python environment (torch etc.) and the datasets at the same
  paths (``$POOLREPRO_DATA`` and the other ``POOLREPRO_*`` variables are passed on).
* Per-epoch checkpoints go to ``--workdir``: on a shared filesystem, a rerun resumes a killed
  run wherever it lands; otherwise it restarts that run from epoch 0.
* A worker process that dies (segfault, OOM, ``os._exit``) is a ``WorkerCrashedError``: an
  ``error`` row, and Ray starts a new worker. A run past its timeout (counted from
  submission; the scheduler submits no more runs than the cluster has slots) is cancelled
  with ``ray.cancel(force=True)`` and recorded as ``timeout``.
* Exclusive runs (timing claims) ask for every CPU of the largest node, so nothing else runs
  beside them there, and hold that node's run lock (:mod:`suite.runlock`) exclusively.
* No per-epoch progress lines or early stopping (``control``) on Ray; the overall progress
  bar and ETA work as usual.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.specs import RunSpec

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("suite", "tasks", "registry")
# a private local cluster listens on loopback only (Ray's single-machine mode)
_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def import_ray(local: bool = False) -> Any:
    """``import ray``, or a clear error naming the extra. ``local``: a private cluster will
    be started, on loopback (Ray reads that choice once, when it is first imported)."""
    if local and "ray" not in sys.modules:
        os.environ.setdefault(_LOOPBACK_ENV, "0")
    try:
        import ray
    except ImportError as e:
        raise SuiteError("--backend ray needs Ray, which is not installed: "
                         "pip install 'poolrepro[ray]' (or pip install 'ray>=2.9')") from e
    return ray


def runtime_env() -> dict[str, Any]:
    """What every Ray worker needs: this checkout's packages and the ``POOLREPRO_*`` settings.
    Pass it to your own ``ray.init(runtime_env=...)`` when you start Ray yourself."""
    return {"py_modules": [str(REPO / p) for p in PACKAGES],
            "env_vars": {k: v for k, v in os.environ.items() if k.startswith("POOLREPRO_")}}


def _remote_run(message: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Ray worker: one RunSpec, in this (long-lived) process."""
    from suite import runlock, runstate
    from suite.worker import execute

    runstate.capture()  # the Ray worker's own state, before its first run
    spec = RunSpec.from_dict(message["spec"])
    try:
        with runlock.hold(message["exclusive"]):
            return execute(spec, device=message["device"],
                           checkpoint_dir=message["checkpoint_dir"], threads=message["threads"],
                           extra_provenance=message["provenance"], emit=lambda *a, **k: None)
    finally:
        runstate.restore_process()


class RayBackend:
    """Submit RunSpecs as Ray tasks; ``submit`` returns a Future of the RESULT dict."""

    def __init__(self, *, address: str | None = None, workdir: str | os.PathLike,
                 provenance: dict[str, Any] | None = None, timeout_scale: float = 1.0,
                 cpus_per_run: float = 1.0, gpus_per_run: float = 0.0,
                 jobs: int | None = None, num_cpus: int | None = None, on_event=None):
        ray = self.ray = import_ray(local=address is None)
        self.workdir = Path(workdir).resolve()
        (self.workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.provenance = dict(provenance or {})
        self.timeout_scale = timeout_scale
        self.cpus, self.gpus = float(cpus_per_run), float(gpus_per_run)
        self.on_event = on_event or (lambda kind, data: None)
        self.started_ray = False
        if not ray.is_initialized():  # else: the caller's ray.init(runtime_env=runtime_env())
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "runtime_env": runtime_env(), "logging_level": "warning"}
            if address is None:
                kw["num_cpus"] = num_cpus
            try:
                ray.init(address=address, **kw)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise SuiteError(f"--address {address}: cannot reach a Ray cluster ({e}); "
                                 f"start one with `ray start --head` or omit --address for "
                                 f"a local one") from e
            self.started_ray = True
        res = ray.cluster_resources()
        slots = int(res.get("CPU", 1) // max(self.cpus, 1e-9))
        if self.gpus > 0:
            if not res.get("GPU"):
                raise SuiteError(f"--gpus-per-run {self.gpus:g}: the Ray cluster has no GPU")
            slots = min(slots, int(res["GPU"] // self.gpus))
        self.capacity = max(1, jobs or slots)
        node_cpus = [n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")]
        self.node_cpus = max(node_cpus or [self.cpus])
        self._remote = ray.remote(_remote_run)
        self._pending: dict[Any, tuple[Future, float, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = False
        self._waiter = threading.Thread(target=self._wait_loop, daemon=True, name="ray-waiter")
        self._waiter.start()

    def submit(self, spec: RunSpec, *, exclusive: bool = False, control=None) -> Future:
        cpus = self.node_cpus if exclusive else self.cpus
        threads = max(1, int(cpus))
        message = {"spec": spec.to_dict(), "provenance": self.provenance,
                   "device": "cuda" if self.gpus > 0 else None, "threads": threads,
                   "checkpoint_dir": str(self.workdir / "checkpoints"), "exclusive": exclusive}
        ref = self._remote.options(num_cpus=cpus, num_gpus=self.gpus, max_retries=0,
                                   name=f"{spec.claim_id}:{spec.arm}:s{spec.seed}"
                                   ).remote(message)
        fut: Future = Future()
        fut.set_running_or_notify_cancel()
        deadline = time.time() + spec.timeout_s * self.timeout_scale
        info = {"spec": spec, "submitted": time.time(), "timed_out": False}
        with self._lock:
            self._pending[ref] = (fut, deadline, info)
        self._wake.set()
        self.on_event("launch", {"spec": spec.to_dict(), "device": "ray",
                                 "exclusive": exclusive})
        return fut

    def _wait_loop(self) -> None:
        ray = self.ray
        while True:
            with self._lock:
                refs = list(self._pending)
                if not refs and self._closing:
                    return
            if not refs:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            ready, _ = ray.wait(refs, num_returns=1, timeout=0.5)
            now = time.time()
            with self._lock:
                for ref in refs:
                    fut, deadline, info = self._pending[ref]
                    if ref not in ready and now > deadline and not info["timed_out"]:
                        info["timed_out"] = True
                        ray.cancel(ref, force=True)
            for ref in ready:
                with self._lock:
                    fut, _, info = self._pending.pop(ref)
                fut.set_result(self._collect(ref, info))

    def _collect(self, ref: Any, info: dict[str, Any]) -> dict[str, Any]:
        ray = self.ray
        spec: RunSpec = info["spec"]
        try:
            return ray.get(ref)
        except Exception as e:  # the task did not return: crash, cancel, lost node
            kind = type(e).__name__
            if info["timed_out"]:
                status = "timeout"
                msg = (f"cancelled after {spec.timeout_s * self.timeout_scale:.0f} s "
                       f"(timeout_s); raise timeout_s in tasks.toml or pass --timeout-scale")
            else:
                status = "error"
                msg = (f"Ray task failed ({kind}): {str(e).strip()[-1500:]}\nWorker logs: "
                       f"/tmp/ray/session_latest/logs on the node that ran it")
            return {"spec": spec.to_dict(), "status": status, "message": msg, "metrics": {},
                    "series": {}, "provenance": {**self.provenance, "device": "ray"},
                    "wall_s": time.time() - info["submitted"]}

    def close(self) -> None:
        with self._lock:
            self._closing = True
        self._wake.set()
        self._waiter.join()
        if self.started_ray:
            self.ray.shutdown()

    def terminate(self) -> None:
        """Cancel every run in flight (Ctrl-C), then close."""
        with self._lock:
            refs = list(self._pending)
        for ref in refs:
            self.ray.cancel(ref, force=True)
        self.close()
