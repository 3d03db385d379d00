"""Terminal output: progress bars for runs and epochs (rich), plain lines when not a TTY."""

from __future__ import annotations

import threading
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def _console(stderr: bool) -> Console:
    c = Console(stderr=stderr)
    return c if c.is_terminal else Console(stderr=stderr, width=160)


console = _console(stderr=True)
out = _console(stderr=False)

STATUS_STYLE = {"ok": "green", "error": "red", "skipped": "yellow", "timeout": "magenta",
                "reproduced": "bold green", "not reproduced": "bold red",
                "inconclusive": "yellow", "pending": "dim", "skipped_claim": "yellow"}


def _label(spec: dict[str, Any]) -> str:
    return escape(f"{spec['claim_id']} [{spec['arm']}] seed {spec['seed']}")


class RunProgress:
    """Receives scheduler events; one overall bar plus one epoch bar per run in flight."""

    def __init__(self, enabled: bool = True):
        self.live = enabled and console.is_terminal
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=console, transient=False,
        )
        self.total_task = None
        self.tasks: dict[str, Any] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> RunProgress:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        handler = getattr(self, f"_on_{kind}", None)  # events without a display are ignored
        if handler is not None:
            with self.lock:
                handler(data)

    def _on_start(self, d: dict[str, Any]) -> None:
        msg = f"{d['total']} run(s) to do, {d['already_ok']} already ok (skipped)"
        if self.live:
            self.total_task = self.progress.add_task("runs", total=d["total"], info="")
        console.print(msg)

    def _on_launch(self, d: dict[str, Any]) -> None:
        spec = d["spec"]
        if self.live:
            alone = " alone" if d.get("exclusive") else ""
            self.tasks[spec["run_key"]] = self.progress.add_task(
                f"  {_label(spec)} on {d['device']}{alone}", total=None, info="")
        else:
            alone = " alone (exclusive)" if d.get("exclusive") else ""
            console.print(f"start {_label(spec)} on {d['device']}{alone} ({spec['run_key']})")

    def _on_progress(self, d: dict[str, Any]) -> None:
        m = d.get("metrics", {})
        info = " ".join(f"{k}={v:.4g}" for k, v in m.items() if isinstance(v, (int, float)))
        if self.live and d["run_key"] in self.tasks:
            self.progress.update(self.tasks[d["run_key"]], completed=d["epoch"], total=d["total"],
                                 info=info)
        elif not self.live:
            console.print(f"  {d['run_key']} epoch {d['epoch']}/{d['total']} {info}")

    def _on_done(self, result: dict[str, Any]) -> None:
        spec, status = result["spec"], result["status"]
        style = STATUS_STYLE.get(status, "")
        m = result.get("metrics", {})
        brief = ", ".join(f"{k}={m[k]:.4g}" for k in ("top1", "params", "test_mse") if k in m)
        first = (result.get("message") or "").splitlines()[:1]
        line = (f"[{style}]{status}[/] {_label(spec)} {brief} "
                f"({result.get('wall_s') or 0:.1f} s){' — ' + first[0] if first else ''}")
        if self.live:
            tid = self.tasks.pop(spec["run_key"], None)
            if tid is not None:
                self.progress.remove_task(tid)
            if self.total_task is not None:
                self.progress.advance(self.total_task)
            self.progress.console.print(line)
        else:
            console.print(line)

    def _on_elsewhere(self, d: dict[str, Any]) -> None:
        line = f"[cyan]elsewhere[/] {_label(d['spec'])}: run by another scheduler meanwhile"
        if self.live:
            if self.total_task is not None:
                self.progress.advance(self.total_task)
            self.progress.console.print(line)
        else:
            console.print(line)

    def _on_waiting(self, d: dict[str, Any]) -> None:
        line = (f"[cyan]waiting[/] for {d['n']} run(s) that another scheduler on this database "
                f"is running (taken over if it stops)")
        (self.progress.console if self.live else console).print(line)
