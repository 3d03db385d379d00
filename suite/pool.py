"""The local backend: one warm worker process per device slot, handed RunSpecs one at a time.

A slot is a device (``cpu``, ``cuda:0``, ...) and a CPU thread count. Each slot has a thread
that owns one long-lived ``python -m suite.worker --serve`` process (torch, the registries
and the tasks imported once) and feeds it the runs submitted to the pool, so a run costs
its own compute plus milliseconds instead of a process start and ~5 s of imports.

The guarantees of one-process-per-run are kept:

* **per-run timeout**: a run past ``timeout_s`` (× ``timeout_scale``) has its worker's
  process group killed and becomes a ``timeout`` result; the slot starts a fresh worker for
  its next run;
* **crash**: a worker that dies mid-run (segfault, OOM kill, ``os._exit``, SIGKILL) becomes
  an ``error`` result with the last lines of its stderr, and is replaced;
* **dies with the scheduler**: workers carry ``PR_SET_PDEATHSIG`` (SIGKILL) tied to their
  slot thread, so a SIGKILLed scheduler leaves no orphan training on; the per-epoch
  checkpoints survive and the rerun resumes from them;
* **independence**: before each run the worker restores process-global torch state and
  reseeds (:mod:`suite.runstate`), so a result does not depend on what ran before it;
* **exclusive runs** (timing claims) hold the machine's run lock exclusively
  (:mod:`suite.runlock`): the other slots drain, the run gets every CPU thread, and nothing
  else starts until it is done.

``warm=False`` gives every run a fresh process (the old behaviour; ``run --cold``), which is
what ``nox -s bench`` compares against.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from suite import runlock
from suite.specs import RunSpec

REPO = Path(__file__).resolve().parent.parent
Control = Callable[[dict[str, Any]], "str | None"]
Events = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Slot:
    device: str
    threads: int | None = None  # torch intra-op threads (CPU slots)


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


class WarmWorker:
    """One ``python -m suite.worker --serve`` process and its stderr tail."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "suite.worker", "--serve", "--parent-pid", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            bufsize=1, cwd=str(REPO), env=env, start_new_session=True)
        self.runs = 0
        self.killed_for_timeout = False
        self._err: collections.deque[str] = collections.deque(maxlen=200)
        self._err_count = 0
        self._err_thread = threading.Thread(target=self._drain_err, daemon=True)
        self._err_thread.start()

    def _drain_err(self) -> None:
        for line in self.proc.stderr:
            self._err.append(line)
            self._err_count += 1

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def close(self) -> None:
        """End of stdin ends the worker; kill it if it does not go within 5 s."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
            self.proc.wait()

    def run(self, message: dict[str, Any], timeout: float, on_progress: Events,
            control: Control | None) -> tuple[dict[str, Any] | None, str]:
        """Send one run; return ``(RESULT dict, "")`` or ``(None, stderr tail)``."""
        mark = self._err_count
        self.killed_for_timeout = False

        def expire() -> None:
            self.killed_for_timeout = True
            self.kill()

        timer = threading.Timer(timeout, expire)
        timer.start()
        result = None
        try:
            self.proc.stdin.write(json.dumps({**message, "ack": control is not None}) + "\n")
            self.proc.stdin.flush()
            while True:
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.startswith("PROGRESS "):
                    try:
                        rec = json.loads(line[9:])
                    except json.JSONDecodeError:
                        continue
                    on_progress("progress", rec)
                    if control is not None:
                        reason = control(rec)
                        answer = f"STOP {' '.join(str(reason).split())}" if reason \
                            else "CONTINUE"
                        self.proc.stdin.write(answer + "\n")
                        self.proc.stdin.flush()
                elif line.startswith("RESULT "):
                    try:
                        result = json.loads(line[7:])
                    except json.JSONDecodeError as e:
                        self._err.append(f"unreadable RESULT line: {e}\n")
                        self._err_count += 1
                    break
        except (BrokenPipeError, OSError):
            pass  # the worker is gone; reported below
        finally:
            timer.cancel()
        self.runs += 1
        if result is not None:
            return result, ""
        self.kill()
        self.proc.wait()
        self._err_thread.join(timeout=5)
        new = min(self._err_count - mark, len(self._err))
        return None, "".join(list(self._err)[len(self._err) - new:][-15:]).strip()


@dataclass
class _Job:
    spec: RunSpec
    exclusive: bool
    control: Control | None
    future: Future = field(default_factory=Future)


class WorkerPool:
    """Runs submitted RunSpecs on warm workers, one per slot; ``submit`` returns a Future of
    the RESULT dict (every failure of the run itself is a result, never an exception)."""

    def __init__(self, slots: list[Slot], *, workdir: str | os.PathLike,
                 provenance: dict[str, Any] | None = None, timeout_scale: float = 1.0,
                 warm: bool = True, on_event: Events | None = None):
        if not slots:
            raise ValueError("a worker pool needs at least one slot")
        self.slots = slots
        self.capacity = len(slots)
        self.workdir = Path(workdir).resolve()
        self.provenance = dict(provenance or {})
        self.timeout_scale = timeout_scale
        self.warm = warm
        self.on_event = on_event or (lambda kind, data: None)
        self.all_threads = os.cpu_count() or 1
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._workers: dict[int, WarmWorker] = {}  # slot index -> its worker (for terminate)
        self._threads = [threading.Thread(target=self._slot_loop, args=(i, s), daemon=True,
                                          name=f"slot-{i}-{s.device}")
                         for i, s in enumerate(slots)]
        for d in ("specs", "checkpoints"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        for t in self._threads:
            t.start()

    def submit(self, spec: RunSpec, *, exclusive: bool = False,
               control: Control | None = None) -> Future:
        """Queue ``spec``; ``control(progress) -> reason | None`` may end it after an epoch
        (status ``pruned``, the reason as message)."""
        job = _Job(spec, exclusive, control)
        self._jobs.put(job)
        return job.future

    def close(self) -> None:
        """Finish queued runs, then end every worker."""
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()

    def terminate(self) -> None:
        """Cancel queued runs and kill the runs in flight (Ctrl-C), then close."""
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                job.future.cancel()
        for w in list(self._workers.values()):
            w.kill()
        self.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- slot threads ------------------------------------------------------------------------
    def _slot_loop(self, index: int, slot: Slot) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                if not job.future.set_running_or_notify_cancel():
                    continue
                try:
                    job.future.set_result(self._run(index, slot, job))
                except BaseException as e:  # a bug of the pool itself: the caller sees it
                    job.future.set_exception(e)
        finally:
            worker = self._workers.pop(index, None)
            if worker is not None:
                worker.close()

    def _run(self, index: int, slot: Slot, job: _Job) -> dict[str, Any]:
        spec = job.spec
        threads = slot.threads
        if job.exclusive and slot.device == "cpu":
            threads = self.all_threads  # alone on the machine: every core
        spec_path = self._write_spec(spec)
        message = {"spec": spec.to_dict(), "provenance": self.provenance, "device": slot.device,
                   "threads": threads, "checkpoint_dir": str(self.workdir / "checkpoints")}
        timeout = spec.timeout_s * self.timeout_scale
        with runlock.hold(job.exclusive):
            worker = self._workers.get(index)
            if worker is None or not worker.alive:
                worker = self._workers[index] = WarmWorker()
            self.on_event("launch", {"spec": spec.to_dict(), "device": slot.device,
                                     "exclusive": job.exclusive})
            started, t0 = _now(), time.time()
            try:
                result, tail = worker.run(message, timeout, self.on_event, job.control)
            except BaseException:  # a caller's callback failed mid-run: the worker may be
                worker.kill()      # waiting for an answer, so it is not reused
                del self._workers[index]
                raise
            wall = time.time() - t0
            self.on_event("ended", {"spec": spec.to_dict()})  # still holding the run lock
        if result is None:
            status = "timeout" if worker.killed_for_timeout else "error"
            code = worker.proc.returncode
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"code {code}"
            msg = (f"killed after {timeout:.0f} s (timeout_s); raise timeout_s in tasks.toml or "
                   f"pass --timeout-scale" if status == "timeout" else
                   f"worker process died ({how}) without a RESULT line; it was replaced. "
                   f"Rerun this run alone: python -m suite.worker {spec_path}")
            result = {"spec": spec.to_dict(), "status": status,
                      "message": msg + (f"\n--- stderr ---\n{tail}" if tail else ""),
                      "metrics": {}, "series": {},
                      "provenance": {**self.provenance, "device": slot.device},
                      "started_at": started, "finished_at": _now(), "wall_s": wall}
            del self._workers[index]  # dead; the slot's next run starts a fresh one
        elif not self.warm:
            self._workers.pop(index).close()
        return result

    def _write_spec(self, spec: RunSpec) -> Path:
        """The spec as a file too, so a failing run can be rerun by hand."""
        path = self.workdir / "specs" / f"{spec.run_key}.json"
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"spec": spec.to_dict(), "provenance": self.provenance}))
        os.replace(tmp, path)
        return path
