"""Run one :class:`~suite.specs.RunSpec` in this process and print its result.

    python -m suite.worker SPEC.json [--jsonl runs.jsonl] [--checkpoint-dir DIR]
                                     [--device cuda:0] [--threads N]

``SPEC.json`` holds a RunSpec as JSON (``RunSpec.to_dict()``), optionally wrapped as
``{"spec": {...}, "provenance": {...}}`` by the scheduler. The worker seeds everything,
builds model, data and task from the registries, prints ``PROGRESS {json}`` lines while it
works and exactly one ``RESULT {json}`` line at the end, and appends that JSON to
``--jsonl``. It imports torch and the standard library only (no database, no MLflow), so it
runs on a bare GPU machine; ``python -m suite import runs.jsonl`` brings results home.

Exit status 0 whenever a RESULT was produced, whatever the run's status.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from suite.provenance import environment, git_state
from suite.specs import RunSpec, TaskContext


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
    except ImportError:
        pass


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
            emit=print) -> dict[str, Any]:
    """Run ``spec`` and return the RESULT dict (never raises for a failing run)."""
    started, t0 = _now(), time.perf_counter()
    prov: dict[str, Any] = {**git_state(), **(extra_provenance or {})}
    status, message, metrics, series, artifacts = "ok", "", {}, {}, {}
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        dev = resolve_device(device or spec.device)
        seed_everything(spec.seed)
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
            emit("PROGRESS " + json.dumps({"run_key": spec.run_key, "epoch": epoch,
                                           "total": total, "metrics": m}), flush=True)

        ctx = TaskContext(device=dev, checkpoint_path=ckpt, report=report, threads=threads)
        task = TASKS.get(spec.task)
        try:
            out = task(spec, ctx)
            metrics, series, artifacts = out.metrics, out.series, out.artifacts
            if ckpt and os.path.exists(ckpt):
                os.remove(ckpt)
        except DatasetError as e:
            status, message = "skipped", f"dataset unavailable: {e}"
        except TaskFailed as e:
            status, message = "error", str(e)
        finally:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m suite.worker",
        description="Run one planned run (a RunSpec JSON file) and print its RESULT line.",
        epilog="example: python -m suite plan --tier smoke --emit specs/ && "
               "python -m suite.worker specs/<run_key>.json --jsonl runs.jsonl",
    )
    ap.add_argument("spec", help="RunSpec JSON file (from `python -m suite plan --emit DIR`)")
    ap.add_argument("--jsonl", default=None, help="append the RESULT JSON to this file")
    ap.add_argument("--checkpoint-dir", default=None, help="per-epoch checkpoints for resume")
    ap.add_argument("--device", default=None, help="override the spec's device (cpu, cuda:0)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args(argv)
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
