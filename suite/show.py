"""``python -m suite show CLAIM_ID``: everything behind one verdict.

    python -m suite show allconv/c10/all_cnn_c-vs-model_c
    python -m suite show 'allconv/c10/*-vs-*' --tier smoke

For each matching claim: its source and published rows (with the context entries shown beside
it), the resolved recipe at the tier (and what the baseline arm changes), the verdict, every
run with its per-seed value, the provenance of those runs (git sha and dirty flag, Python and
torch versions, device) and their cost: device-seconds from the run rows, plus any cost
metrics a task reports (FLOPs, throughput, a cost estimate) when present.
"""

from __future__ import annotations

import fnmatch
import json
import statistics
from collections import Counter
from typing import Any

from suite.errors import SuiteError

#: Metric names (substrings) shown under "cost" when a task reports them.
COST_METRIC_MARKERS = ("flop", "throughput", "images_per_s", "samples_per_s", "cost",
                       "latency", "memory", "mem_", "params_m")


def add_show_parser(sub, verb_factory):
    """Register ``show`` on the CLI's subparsers."""
    from suite.specs import TIERS

    p = verb_factory("show", "everything behind one claim's verdict: recipe, seeds, per-seed "
                             "values, provenance and cost")
    p.add_argument("claim_id", metavar="CLAIM_ID", help="a claim id, or a glob such as "
                                                        "'allconv/c10/*'")
    p.add_argument("--tier", choices=TIERS, default="mini", help="default mini")
    return p


def _match(claims: list[Any], pattern: str) -> list[Any]:
    exact = [c for c in claims if c.id == pattern]
    if exact:
        return exact
    found = [c for c in claims if fnmatch.fnmatchcase(c.id, pattern)]
    if found:
        return found
    from registry import did_you_mean

    hint = did_you_mean(pattern, [c.id for c in claims])
    raise SuiteError(f"show: no claim {pattern!r}"
                     + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
                     + " (`python -m suite ls claims` lists them)")


def _kv(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, (dict, list)) \
        else str(value)


def recipe_lines(form: Any) -> list[tuple[str, str]]:
    rows = [("task", form.task), ("model", form.model), ("dataset", form.dataset)]
    for name in ("model_args", "dataset_args", "params"):
        value = getattr(form, name)
        if value:
            rows.append((name, _kv(value)))
    rows += [("seeds", ", ".join(map(str, form.seeds))), ("min_runs", str(form.min_runs)),
             ("device", form.device), ("timeout_s", f"{form.timeout_s:g}")]
    if form.expect is not None:
        e = form.expect
        what = {k: v for k, v in e.to_dict().items() if v not in (None, "", {})}
        what.pop("baseline", None)
        rows.append(("expect", _kv(what)))
        if e.kind == "delta":
            rows.append(("baseline arm", _kv(e.baseline) + "  (merged onto the recipe above)"))
    return rows


def cost_lines(runs: list[Any]) -> list[tuple[str, str]]:
    """Device-seconds per arm and in total; cost metrics' means when tasks report them."""
    rows: list[tuple[str, str]] = []
    by_arm: dict[str, float] = {}
    for r in runs:
        if r.wall_s is not None:
            by_arm[r.arm] = by_arm.get(r.arm, 0.0) + float(r.wall_s)
    devices = Counter(r.device_name for r in runs if r.device_name)
    where = ", ".join(devices) or "unknown device"
    for arm, secs in sorted(by_arm.items()):
        rows.append((f"device-seconds ({arm})", f"{secs:,.1f} s on {where}"))
    if by_arm:
        rows.append(("device-seconds (total)", f"{sum(by_arm.values()):,.1f} s "
                                               f"({sum(by_arm.values()) / 3600:.3g} h)"))
    metrics: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        if r.status != "ok":
            continue
        for name, value in r.metric_dict().items():
            if any(m in name.lower() for m in COST_METRIC_MARKERS):
                metrics.setdefault((r.arm, name), []).append(value)
    for (arm, name), vals in sorted(metrics.items()):
        rows.append((f"{name} ({arm})", f"{statistics.fmean(vals):.4g}"
                                        + (f" ± {statistics.stdev(vals):.2g}"
                                           if len(vals) > 1 else "") + f" (n={len(vals)})"))
    return rows


def provenance_lines(runs: list[Any]) -> list[tuple[str, str]]:
    def count(values) -> str:
        c = Counter(v for v in values if v not in (None, ""))
        return "; ".join(f"{k} ×{n}" for k, n in c.most_common()) or "–"

    shas = [f"{r.git_sha[:10]}{' (dirty)' if r.git_dirty else ''}" for r in runs if r.git_sha]
    rows = [("git sha", count(shas)), ("python", count(r.python_version for r in runs)),
            ("torch", count(r.torch_version for r in runs)),
            ("device", count(r.device_name for r in runs))]
    for key in ("loader", "amp", "pool_paths", "selected_epoch"):
        vals = [_kv(r.provenance.get(key)) for r in runs if (r.provenance or {}).get(key)
                not in (None, "", {})]
        if vals:
            rows.append((key, count(vals)))
    finished = sorted(r.finished_at for r in runs if r.finished_at)
    if finished:
        rows.append(("finished", f"{finished[0]:%Y-%m-%d %H:%M} … {finished[-1]:%Y-%m-%d %H:%M}"
                                 " (UTC)"))
    return rows


def run_cells(row: Any) -> list[list[str]]:
    """``[arm, seed, status, metric value, wall s, run_key, git]`` per run of a claim row."""
    form = row.claim.form(row.tier)
    metric = form.expect.metric if form is not None and form.expect is not None else None
    out = []
    for r in sorted(row.runs, key=lambda r: (r.arm != "treatment", r.seed)):
        m = r.metric_dict()
        value = f"{m[metric]:.4g}" if metric and metric in m else (
            (r.message or "").splitlines()[0][:40] if r.status != "ok" else "–")
        out.append([r.arm, str(r.seed), r.status, value,
                    f"{r.wall_s:.1f}" if r.wall_s is not None else "–", r.run_key,
                    f"{r.git_sha[:8]}{'+' if r.git_dirty else ''}" if r.git_sha else "–"])
    return out


def cmd_show(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from registry import published as pub
    from suite import db, report
    from suite.claims import load_catalog
    from suite.ui import STATUS_STYLE, out

    cat = load_catalog(args.tasks)
    chosen = _match(cat.claims, args.claim_id)
    engine = db.connect(args.db)
    rows = report.claim_rows(engine, chosen, args.tier)
    refs = pub.by_ref()
    for row in rows:
        c = row.claim
        paper = cat.papers.get(c.paper)
        out.rule(f"[bold]{escape(c.id)}[/] — tier {args.tier}")
        facts = [("title", c.title), ("paper", f"{c.paper}: {paper.title if paper else ''}"),
                 ("source", c.source), ("tags", ", ".join(c.tags)), ("note", c.status_note)]
        pubd = {k: v for k, v in c.published.items() if k not in ("ref", "refs")}
        if pubd:
            facts.append(("published", _kv(pubd)))
        for ref in report.published_refs(c):
            r = refs.get(ref, {})
            facts.append(("published row", f"{ref}: {r.get('value')} {r.get('unit', '')} "
                                           f"({r.get('table', '')}, {r.get('source_kind', '')}"
                                           f"{'' if r.get('verified', True) else ', UNVERIFIED'})"))
        for e in cat.context_beside(c.id):
            for ref in e.refs:
                r = refs.get(ref, {})
                facts.append(("context", f"{r.get('model')} {r.get('value')} "
                                         f"{r.get('unit', '')} {r.get('metric', '')} — "
                                         f"{e.source} (not run: {e.reason or 'context'})"))
        tiers = [t for t in ("smoke", "mini", "full") if t in c.tiers]
        facts.append(("forms", ", ".join(tiers) + "".join(
            f"; {t} skipped: {why}" for t, why in c.skip.items())))
        _kv_table(out, "claim", [(k, v) for k, v in facts if v])
        form = c.form(args.tier)
        if form is None:
            out.print(f"[dim]no {args.tier} form: {escape(row.verdict.message)}[/]")
            continue
        _kv_table(out, f"recipe at tier {args.tier}", recipe_lines(form))
        style = STATUS_STYLE.get(row.verdict.status, "")
        out.print(f"verdict: [{style}]{escape(report.verdict_label(row.verdict))}[/] — "
                  f"{escape(row.verdict.message)}")
        if not row.runs:
            out.print("[dim]no runs stored yet: `python -m suite run --tier "
                      f"{args.tier} --claim '{escape(c.id)}'`[/]")
            continue
        t = Table(title="runs (per-seed values)")
        for h in ("arm", "seed", "status", form.expect.metric if form.expect else "value",
                  "wall s", "run_key", "git"):
            t.add_column(h, overflow="fold")
        for cells in run_cells(row):
            t.add_row(*[escape(x) for x in cells])
        out.print(t)
        _kv_table(out, "provenance", provenance_lines(list(row.runs)))
        _kv_table(out, "cost", cost_lines(list(row.runs)))
    return 0


def _kv_table(out, title: str, rows: list[tuple[str, str]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    t = Table(title=title, show_header=False, title_justify="left")
    t.add_column("field", style="bold", no_wrap=True)
    t.add_column("value", overflow="fold")
    for k, v in rows:
        t.add_row(escape(k), escape(str(v)))
    out.print(t)
