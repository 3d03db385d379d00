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
                "inconclusive": "yellow", "pending": "dim", "skipped_claim": "yellow",
                "n/a": "dim"}


#: The widest terminal the verdict table is laid out for (it must stay readable at 100).
TABLE_WIDTH = 100


def verdict_table(rows: list[Any], title: str):
    """The claims × verdicts table (suite.report rows), laid out to fit :data:`TABLE_WIDTH`
    columns: each claim's id, then its metric and expectation on a second, dim line."""
    from rich import box
    from rich.table import Table

    from suite import report

    t = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    t.add_column("claim / metric, expected", overflow="fold", min_width=48, max_width=48)
    t.add_column("mean (Δ)", justify="right", no_wrap=True)
    t.add_column("95% CI", overflow="fold", min_width=10, max_width=16)
    t.add_column("n", justify="right", no_wrap=True)
    t.add_column("verdict", overflow="fold", min_width=12, max_width=16)
    for cells, r in zip(report.table_rows(rows), rows, strict=True):
        claim, metric, expected, mean, ci, n, verdict = (escape(c) for c in cells)
        sub = f"{metric} {expected}".strip()
        style = STATUS_STYLE.get(r.verdict.status, "")
        t.add_row(f"{claim}\n[dim]  {sub}[/]" if sub else claim, mean, ci, n,
                  f"[{style}]{verdict}[/]")
    return t


def context_table(cells: list[list[str]]):
    """``[[context]]`` rows (published numbers shown beside ours, never run); None if none."""
    from rich import box
    from rich.table import Table

    from suite import report

    if not cells:
        return None
    t = Table(title="context: published by the papers from other works (shown, not run)",
              box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1))
    for h in report.CONTEXT_HEADERS:
        t.add_column(h, overflow="fold", max_width=34 if h == "context (published, not run)"
                     else 22)
    for row in cells:
        t.add_row(*[escape(c) for c in row])
    return t


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
        with self.lock:
            getattr(self, f"_on_{kind}")(data)

    def _on_start(self, d: dict[str, Any]) -> None:
        msg = f"{d['total']} run(s) to do, {d['already_ok']} already ok (skipped)"
        if self.live:
            self.total_task = self.progress.add_task("runs", total=d["total"], info="")
        console.print(msg)

    def _on_launch(self, d: dict[str, Any]) -> None:
        spec = d["spec"]
        if self.live:
            self.tasks[spec["run_key"]] = self.progress.add_task(
                f"  {_label(spec)} on {d['device']}", total=None, info="")
        else:
            console.print(f"start {_label(spec)} on {d['device']} ({spec['run_key']})")

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
