"""Run :class:`~suite.specs.RunSpec` objects in this process and print their results.

    python -m suite.worker SPEC.json [--jsonl runs.jsonl] [--checkpoint-dir DIR]
                                     [--device cuda:0] [--threads N]
    python -m suite.worker --serve [--parent-pid PID]

**One spec** (the bare-GPU-machine path): ``SPEC.json`` holds a RunSpec as JSON
(``RunSpec.to_dict()``), optionally wrapped as ``{"spec": {...}, "provenance": {...}}``. The
worker seeds everything, builds model, data and task from the registries, prints
``PROGRESS {json}`` lines while it works and exactly one ``RESULT {json}`` line at the end,
and appends that JSON to ``--jsonl``. It imports torch and the standard library only (no
database, no MLflow), so it runs on a bare GPU machine; ``python -m suite import runs.jsonl``
brings results home. Exit status 0 whenever a RESULT was produced, whatever the run's status.

**Warm worker** (``--serve``, started by :mod:`suite.pool`, one per device slot): imports
torch, the registries and the tasks once, then reads one JSON message per line on stdin and
runs it, for as many runs as it is given; end of stdin ends the process. A message is
``{"spec": {...}, "provenance": {...}, "device": "cpu", "threads": 1,
"checkpoint_dir": "...", "ack": false}``. The replies go to the process's original stdout,
which carries nothing else (file descriptor 1 is pointed at stderr, so a task's prints and
C-level output cannot corrupt them): ``PROGRESS {json}`` lines, then one ``RESULT {json}``.
With ``"ack": true`` the worker waits after each PROGRESS line for one stdin line,
``CONTINUE`` or ``STOP <reason>``; STOP ends the run there as ``pruned`` (a trial its
sweep's pruner stopped): the reason as message, the last epoch's metrics, the epochs so far
as series, and no checkpoint (a pruned run is not resumed). Before each run
:func:`suite.runstate.reset` puts back every process-global torch setting a previous run may
have changed and reseeds;
after it, :func:`suite.runstate.restore_process` puts back the environment and directory.
``--parent-pid`` makes the worker die with that process (Linux ``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from suite.provenance import environment, git_state
from suite.runstate import seed_everything  # noqa: F401  (re-exported: the old home)
from suite.specs import RunSpec, TaskContext


class RunStopped(BaseException):
    """The caller asked a run to stop after an epoch (``control`` returned a reason).

    A BaseException, so that a task's own ``except Exception`` cannot swallow it."""


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available here")
    return "cuda:0" if device == "cuda" else device


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds")


def execute(spec: RunSpec, *, device: str | None = None, checkpoint_dir: str | None = None,
            threads: int | None = None, extra_provenance: dict[str, Any] | None = None,
            emit=print, control: Callable[[dict[str, Any]], str | None] | None = None,
            ) -> dict[str, Any]:
    """Run ``spec`` and return the RESULT dict (never raises for a failing run).

    ``emit`` receives each ``PROGRESS {json}`` line; ``control``, when given, receives each
    progress record and may answer a reason (any non-empty string) to end the run there:
    status ``pruned``, that reason as its message.
    """
    started, t0 = _now(), time.perf_counter()
    prov: dict[str, Any] = {**git_state(), **(extra_provenance or {})}
    status, message, metrics, series, artifacts = "ok", "", {}, {}, {}
    reported: list[dict[str, Any]] = []
    try:
        with warnings.catch_warnings():
            from suite import runstate

            runstate.reset(spec.seed, threads)
            dev = resolve_device(device or spec.device)
            from registry.datasets.base import DatasetError
            from suite.provenance import device_name
            from tasks import TASKS, TaskFailed

            prov.update(environment())
            prov["device"] = dev
            prov["device_name"] = device_name(dev)
            ckpt = None
            if checkpoint_dir:
                Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
                ckpt = str(Path(checkpoint_dir) / f"{spec.run_key}.pt")

            def report(epoch: int, total: int, m: dict[str, float]) -> None:
                rec = {"run_key": spec.run_key, "epoch": epoch, "total": total, "metrics": m}
                reported.append(rec)
                emit("PROGRESS " + json.dumps(rec, default=str), flush=True)
                reason = control(rec) if control is not None else None
                if reason:
                    raise RunStopped(str(reason))

            ctx = TaskContext(device=dev, checkpoint_path=ckpt, report=report, threads=threads)
            task = TASKS.get(spec.task)
            t_task = time.perf_counter()
            try:
                out = task(spec, ctx)
                metrics, series, artifacts = out.metrics, out.series, out.artifacts
                if ckpt and os.path.exists(ckpt):
                    os.remove(ckpt)
            except DatasetError as e:
                status, message = "skipped", f"dataset unavailable: {e}"
            except TaskFailed as e:
                status, message = "error", str(e)
            except RunStopped as e:
                status, message = "pruned", str(e)
                metrics, series = _stopped_metrics(reported)
                prov["stopped_after_epoch"] = reported[-1]["epoch"]
                if ckpt and os.path.exists(ckpt):
                    os.remove(ckpt)  # a pruned run is not resumed
            finally:
                prov["task_s"] = round(time.perf_counter() - t_task, 4)
                prov.update(ctx.provenance)
    except Exception as e:  # a bug or bad parameter: recorded, with the last frames
        tb = traceback.format_exception(type(e), e, e.__traceback__)
        status, message = "error", f"{type(e).__name__}: {e}\n" + "".join(tb[-3:])
    return {
        "spec": spec.to_dict(), "status": status, "message": message,
        "metrics": {k: float(v) for k, v in metrics.items()}, "series": series,
        "artifacts": artifacts, "provenance": prov, "started_at": started,
        "finished_at": _now(), "wall_s": time.perf_counter() - t0,
    }


def _stopped_metrics(reported: list[dict[str, Any]]) -> tuple[dict[str, float],
                                                                dict[str, list[float]]]:
    """A stopped run's metrics (its last epoch's, and ``epochs``) and per-epoch series."""
    series: dict[str, list[float]] = {}
    for rec in reported:
        for name, value in rec["metrics"].items():
            series.setdefault(name, []).append(value)
    last = reported[-1]
    return {**last["metrics"], "epochs": float(last["epoch"])}, series


# -- warm worker ----------------------------------------------------------------------------
def die_with_parent(parent_pid: int) -> None:
    """SIGKILL this process when ``parent_pid`` (the thread that started it) exits."""
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def serve(stdin=None) -> int:
    """The warm-worker loop (see the module docstring for the protocol)."""
    import gc

    stdin = stdin or sys.stdin
    proto = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # anything else written to stdout lands on stderr
    sys.stdout = sys.stderr

    def send(line: str, flush: bool = True) -> None:
        proto.write(line + "\n")
        proto.flush()

    import torch  # noqa: F401  (imported once, here: the point of a warm worker)
    import torch._dynamo  # noqa: F401  (the first optimizer imports it: ~3 s)

    import registry  # noqa: F401
    from suite import runstate
    from tasks import TASKS

    for entry in TASKS:
        entry.load()
    runstate.capture()
    gc.freeze()  # the imports are permanent: keeps the per-run gc.collect() cheap
    while True:
        line = stdin.readline()
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
            spec = RunSpec.from_dict(msg["spec"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            print(f"worker: unreadable message ({e}): {line[:200]!r}", file=sys.stderr)
            return 2

        def control(rec: dict[str, Any]) -> str | None:
            answer = stdin.readline().strip()
            if answer.startswith("STOP"):
                return answer[4:].strip() or "stopped by the scheduler"
            return None

        result = execute(spec, device=msg.get("device"), checkpoint_dir=msg.get("checkpoint_dir"),
                         threads=msg.get("threads"), extra_provenance=msg.get("provenance"),
                         emit=send, control=control if msg.get("ack") else None)
        runstate.restore_process()
        send("RESULT " + json.dumps(result, default=str))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m suite.worker",
        description="Run one planned run (a RunSpec JSON file) and print its RESULT line; or, "
                    "with --serve, run the RunSpec messages given on stdin (a warm worker).",
        epilog="example: python -m suite plan --tier smoke --emit specs/ && "
               "python -m suite.worker specs/<run_key>.json --jsonl runs.jsonl",
    )
    ap.add_argument("spec", nargs="?",
                    help="RunSpec JSON file (from `python -m suite plan --emit DIR`)")
    ap.add_argument("--jsonl", default=None, help="append the RESULT JSON to this file")
    ap.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints for resume")
    ap.add_argument("--device", default=None, help="override the spec's device (cpu, cuda:0)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--serve", action="store_true",
                    help="warm worker: read RunSpec messages on stdin (used by the scheduler)")
    ap.add_argument("--parent-pid", type=int, default=None,
                    help="die with this process (the scheduler)")
    args = ap.parse_args(argv)
    if args.parent_pid:
        die_with_parent(args.parent_pid)
    if args.serve:
        return serve()
    if not args.spec:
        ap.error("give a SPEC.json file, or --serve")
    try:
        raw = json.loads(Path(args.spec).read_text())
    except (OSError, json.JSONDecodeError) as e:
        print(f"error: cannot read spec {args.spec}: {e}", file=sys.stderr)
        return 2
    prov = raw.get("provenance") if "spec" in raw else None
    try:
        spec = RunSpec.from_dict(raw.get("spec", raw))
    except TypeError as e:
        print(f"error: {args.spec} is not a RunSpec: {e}", file=sys.stderr)
        return 2
    result = execute(spec, device=args.device, checkpoint_dir=args.checkpoint_dir,
                     threads=args.threads, extra_provenance=prov)
    line = json.dumps(result, default=str)
    if args.jsonl:
        with open(args.jsonl, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    print("RESULT " + line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
