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
                "pruned": "blue",
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
    t.add_column("claim / metric, expected", overflow="fold", min_width=46, max_width=46)
    t.add_column("mean (Δ)", justify="right", no_wrap=True)
    t.add_column("95% CI", overflow="fold", min_width=10, max_width=16)
    t.add_column("n", justify="right", no_wrap=True)
    t.add_column("verdict", overflow="fold", min_width=12, max_width=18)
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


class _LiveBars:
    """Rich progress bars (spinner, bar, n/m, elapsed, ETA, an ``info`` field) on a terminal,
    plain lines elsewhere; a context manager that starts and stops the live display."""

    def __init__(self, enabled: bool = True):
        self.live = enabled and console.is_terminal
        self.progress = Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=console, transient=False,
        )
        self.lock = threading.Lock()

    def __enter__(self):
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live:
            self.progress.stop()


class RunProgress(_LiveBars):
    """Receives scheduler events; one overall bar plus one epoch bar per run in flight."""

    def __init__(self, enabled: bool = True):
        super().__init__(enabled)
        self.total_task = None
        self.tasks: dict[str, Any] = {}

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

class SweepProgress(_LiveBars):
    """Receives :class:`suite.sweep.Sweeper` events: one bar of finished trials per arm (with
    its ETA), an epoch bar for the trial in flight, and one line per finished trial."""

    OUTCOME_STYLE = {"complete": "green", "pruned": "blue", "diverged": "yellow",
                     "failed": "red", "skipped": "yellow"}

    def __init__(self, enabled: bool = True):
        super().__init__(enabled)
        self.arms: dict[str, Any] = {}
        self.epochs: dict[str, Any] = {}

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        with self.lock:
            getattr(self, f"_on_{kind}")(data)

    def _print(self, line: str) -> None:
        (self.progress.console if self.live else console).print(line)

    def _on_recovered(self, d: dict[str, Any]) -> None:
        self._print(f"[yellow]{d['n']} trial(s) of {escape(d['study'])} were left running by "
                    f"a sweep that died; retrying them[/]")

    def _on_begin(self, d: dict[str, Any]) -> None:
        for arm, name, done in d["studies"]:
            self._print(f"study {escape(name)}: {done} of {d['trials']} trials finished")
            if self.live:
                self.arms[arm] = self.progress.add_task(f"{arm} trials", total=d["trials"],
                                                        completed=min(done, d["trials"]),
                                                        info="")

    @staticmethod
    def _point(point: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in point.items())

    def _on_start(self, d: dict[str, Any]) -> None:
        label = escape(f"  trial {d['trial']} [{d['arm']}] {self._point(d['point'])}")
        if self.live:
            self.epochs[d["run_key"]] = self.progress.add_task(label, total=None, info="")
        else:
            console.print(f"start {label.strip()} ({d['run_key']})")

    def _on_epoch(self, d: dict[str, Any]) -> None:
        info = "" if d["value"] is None else f"objective={d['value']:.4g}"
        if self.live and d["run_key"] in self.epochs:
            self.progress.update(self.epochs[d["run_key"]], completed=d["epoch"],
                                 total=d["total"], info=info)
        elif not self.live:
            console.print(escape(f"  trial {d['trial']} [{d['arm']}] epoch {d['epoch']}/"
                                 f"{d['total']} {info}"))

    def _on_done(self, d: dict[str, Any]) -> None:
        outcome = d["outcome"]
        style = self.OUTCOME_STYLE.get(outcome, "")
        value = "" if d["value"] is None else f" → {d['value']:.4g}"
        why = f" — {escape(d['message'])}" if outcome != "complete" and d["message"] else ""
        line = (f"[{style}]{outcome}[/] " + escape(f"trial {d['trial']} [{d['arm']}] "
                                                   f"{self._point(d['point'])}")
                + f"{value} ({d.get('wall_s') or 0:.1f} s){why}")
        if self.live:
            tid = self.epochs.pop(d["run_key"], None)
            if tid is not None:
                self.progress.remove_task(tid)
            if outcome in ("complete", "pruned", "diverged") and d["arm"] in self.arms:
                self.progress.advance(self.arms[d["arm"]])
        self._print(line)
