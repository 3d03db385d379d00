"""Claims × verdicts: join the plan with the stored runs and judge each claim.

Pure queries over the results DB (no torch), shared by the CLI's ``report`` / ``show`` and
the dashboard.

* :func:`claim_rows` — one :class:`ClaimRow` per claim at a tier. A claim with no form at the
  tier is ``n/a`` (the tier says nothing about it), a skipped tier ``skipped``. A claim that
  ``run --until-decided`` extended is judged on all its seeds at its sequential look's level
  (:mod:`suite.sequential`).
* :func:`table_rows` / :data:`HEADERS` — the terminal table (fits 100 columns);
  :func:`markdown` — the README table; :func:`write_readme` puts it between markers.
* :func:`context_rows` — ``[[context]]`` entries (published numbers shown, never run).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from suite import db
from suite.plan import PlannedClaim, make_plan, plan_claim
from suite.specs import VERDICT_LABELS, Claim, ContextEntry
from suite.verdict import ALPHA, Observation, Verdict, judge, level


@dataclass(frozen=True)
class ClaimRow:
    claim: Claim
    tier: str
    verdict: Verdict
    runs: tuple[Any, ...]  # db.Run rows of both arms
    tuning: str = ""  # how the arms were tuned (``run --use-best``), else ""

    def as_dict(self) -> dict[str, Any]:
        form = self.claim.form(self.tier)
        e = form.expect if form else None
        return {
            "claim": self.claim.id, "paper": self.claim.paper, "tier": self.tier,
            "source": self.claim.source, "verdict": self.verdict.status,
            "message": self.verdict.message, "metric": e.metric if e else None,
            "kind": e.kind if e else None, "expected": _expected(e),
            "published": self.claim.published, "stats": self.verdict.to_dict(),
            "seeds": sorted({r.seed for r in self.runs}),
            "run_keys": [r.run_key for r in self.runs], "tuning": self.tuning,
            "needed_seeds": self.verdict.needed, "look": self.verdict.look,
            "alpha": self.verdict.alpha, "unconfirmed_refs": unconfirmed_refs(self.claim),
        }


def published_refs(claim: Claim) -> list[str]:
    """The rows of registry/published.toml a claim maps (``published.ref`` then ``refs``)."""
    p = claim.published
    refs = ([p["ref"]] if isinstance(p.get("ref"), str) else []) + list(p.get("refs") or [])
    return list(dict.fromkeys(refs))


def unconfirmed_refs(claim: Claim) -> list[str]:
    """Mapped rows marked ``verified = false`` (read off a plot, or found in no source)."""
    from registry import published as pub

    rows = pub.by_ref()
    return [r for r in published_refs(claim) if rows.get(r, {}).get("verified") is False]


def _expected(e: Any, long: bool = True) -> str:
    if e is None:
        return ""
    if e.kind == "absolute":
        sym = {"higher": "≥", "lower": "≤", "equal": "="}[e.direction]
        tol = f" ± {e.tolerance:g}" if e.tolerance else ""
        return f"{sym} {e.value:g}{tol}{(' ' + e.unit) if e.unit and long else ''}"
    sym = {"higher": f"Δ ≥ {e.min_diff:+g}", "lower": f"Δ ≤ {-e.min_diff + 0.0:+g}",
           "equal": f"|Δ| ≤ {e.tolerance:g}"}[e.direction]
    if not long:
        return sym
    base = ", ".join(f"{k}={v}" for k, v in e.baseline.items())
    return f"{sym} vs {base}"


def observations(runs: list[Any]) -> list[Observation]:
    return [Observation(r.seed, r.status, r.metric_dict(), r.message) for r in runs]


def judge_planned(pc: PlannedClaim, by_key: dict[str, Any], alpha: float = ALPHA,
                  look: int = 0) -> ClaimRow:
    if pc.form is None:  # no form at this tier: the tier says nothing about the claim
        status = "skipped" if pc.skipped else "n/a"
        return ClaimRow(pc.claim, pc.tier, Verdict(status, pc.reason), ())
    t = [by_key[r.run_key] for r in pc.arm("treatment") if r.run_key in by_key]
    b = [by_key[r.run_key] for r in pc.arm("baseline") if r.run_key in by_key]
    v = judge(pc.form.expect, observations(t), observations(b), pc.form.min_runs, alpha, look)
    return ClaimRow(pc.claim, pc.tier, v, tuple(t + b))


def straddles(row: ClaimRow) -> bool:
    """Inconclusive with enough runs: the interval straddles a border (more seeds may help)."""
    form = row.claim.form(row.tier)
    s = row.verdict.summary
    return (row.verdict.status == "inconclusive" and row.verdict.region is not None
            and form is not None and s is not None and s.n >= max(2, form.min_runs))


def extended_plan(claim: Claim, tier: str) -> PlannedClaim:
    """``claim``'s plan at ``tier`` with its committed seeds and every extra seed ``run
    --until-decided`` could have added (:func:`suite.sequential.extension_seeds`)."""
    from suite.sequential import PROBE_SEEDS, extension_seeds

    seeds = tuple(claim.form(tier).seeds)
    return plan_claim(claim, tier, seeds + tuple(extension_seeds(seeds, PROBE_SEEDS)))


def with_extensions(rows: list[ClaimRow],
                    fetch: Callable[[list[str]], Mapping[str, Any]]) -> list[ClaimRow]:
    """Re-judge claims that ``run --until-decided`` gave extra seeds, at their look's level.
    ``fetch(run_keys)`` returns the stored runs among those keys, by key (the report reads
    them from the DB; the dashboard passes the run records it already holds)."""
    from suite.sequential import look_alpha, look_index

    wide = {i: extended_plan(row.claim, row.tier)
            for i, row in enumerate(rows) if straddles(row)}
    if not wide:
        return rows
    by_key = fetch([r.run_key for pc in wide.values() for r in pc.runs])
    out = list(rows)
    for i, pc in wide.items():
        n0 = len(pc.form.seeds)
        first = judge_planned(pc, by_key)  # all stored seeds, to count them
        n = first.verdict.summary.n if first.verdict.summary else 0
        if n <= n0:
            continue  # no extra seeds stored: the committed verdict stands
        k = look_index(n0, n)
        row = judge_planned(pc, by_key, look_alpha(k), k)
        msg = (f"sequential look {k} ({n} seeds, {level(row.verdict.alpha)} interval; "
               f"see suite/sequential.py): {row.verdict.message}")
        out[i] = replace(row, verdict=replace(row.verdict, message=msg))
    return out


def claim_rows(engine, claims: list[Claim], tier: str,
               seeds: tuple[int, ...] | None = None, sequential: bool = True,
               tunings: dict[str, str] | None = None) -> list[ClaimRow]:
    """Every claim judged at ``tier``. ``seeds`` overrides the claims' seeds (then extension
    seeds are not looked for); ``sequential=False`` judges the committed seeds only.
    ``tunings``: claim id -> how its arms were tuned (the claims are then the tuned ones,
    :func:`suite.sweep.tuned_claims`); said in the verdict."""
    plan = make_plan(claims, tier, seeds)
    by_key = db.runs_by_key(engine, [r.run_key for r in plan.runs])
    rows = [judge_planned(pc, by_key) for pc in plan.claims]
    if sequential and seeds is None:
        rows = with_extensions(rows, lambda keys: db.runs_by_key(engine, keys))
    notes = tunings or {}
    return [replace(r, tuning=notes[r.claim.id],
                    verdict=replace(r.verdict, message=f"{notes[r.claim.id]}. "
                                                       f"{r.verdict.message}"))
            if r.claim.id in notes else r for r in rows]


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    return f"{x:.{digits}g}"


def verdict_label(v: Verdict) -> str:
    """The verdict as a table shows it: ``n/a at this tier``, ``inconclusive (≈9 seeds)``,
    ``reproduced (look 1)``."""
    text = VERDICT_LABELS.get(v.status, v.status)
    if v.status == "inconclusive" and v.needed is not None:
        text += f" (≈{v.needed} seeds)" if v.needed <= 10_000 else " (>10k seeds)"
    if v.look:
        text += f" (look {v.look})"
    return text


def _interval(r: ClaimRow) -> str:
    s = r.verdict.summary
    if not s or s.n < 2:
        return "–"
    if s.std == 0:
        return "exact"
    ci = f"[{fmt_num(s.lo)}, {fmt_num(s.hi)}]"
    return ci if r.verdict.alpha == ALPHA else f"{ci} @{level(r.verdict.alpha)}"


HEADERS = ["claim", "metric", "expected", "mean (Δ)", "95% CI", "n", "verdict"]


def table_rows(rows: list[ClaimRow], long: bool = False) -> list[list[str]]:
    """Cells of :data:`HEADERS` per claim; ``long`` spells out a delta's baseline."""
    out = []
    for r in rows:
        s = r.verdict.summary
        form = r.claim.form(r.tier)
        e = form.expect if form else None
        out.append([
            r.claim.id, e.metric if e else "", _expected(e, long),
            fmt_num(s.mean) if s else "–", _interval(r), str(s.n) if s else "0",
            verdict_label(r.verdict) + (" (tuned)" if r.tuning else ""),
        ])
    return out


def metric_table(row: ClaimRow) -> list[list[str]]:
    """Rows ``[arm, metric, mean, std, n]`` over the ok runs of a claim, per arm."""
    import statistics

    by: dict[tuple[str, str], list[float]] = {}
    for r in row.runs:
        if r.status != "ok":
            continue
        for name, value in r.metric_dict().items():
            by.setdefault((r.arm, name), []).append(value)
    out = []
    for (arm, name), vals in sorted(by.items()):
        std = statistics.stdev(vals) if len(vals) > 1 else float("nan")
        out.append([arm, name, fmt_num(statistics.fmean(vals)), fmt_num(std, 3), str(len(vals))])
    return out


def markdown(rows: list[ClaimRow], hide: tuple[str, ...] = ()) -> str:
    """The verdict table in Markdown (claim ids in code spans, verdicts in bold); rows whose
    verdict status is in ``hide`` (e.g. ``("n/a", "skipped")``) are left out."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for cells, r in zip(table_rows(rows, long=True), rows, strict=True):
        if r.verdict.status in hide:
            continue
        cells = [f"`{cells[0]}`", *cells[1:-1], f"**{cells[-1]}**"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


# -- context entries --------------------------------------------------------------------
def context_rows(context: list[ContextEntry], claims: list[Claim] | None = None
                 ) -> list[list[str]]:
    """``[id, published, model (dataset), beside, source]`` per row of each entry shown beside
    ``claims`` (all entries when None, or those of the claims' papers)."""
    import fnmatch

    from registry import published as pub

    rows = pub.by_ref()
    ids = [c.id for c in claims] if claims is not None else None
    papers = {c.paper for c in claims} if claims is not None else None
    out = []
    for e in context:
        if ids is not None and e.paper not in papers and not any(
                fnmatch.fnmatchcase(i, b) for i in ids for b in e.beside):
            continue
        for ref in e.refs:
            r = rows[ref]
            value = f"{r.get('value', '–')} {r.get('unit', '')} {r.get('metric', '')}".strip()
            out.append([e.id, value, f"{r.get('model', '')} ({r.get('dataset', '')})",
                        ", ".join(e.beside), f"{r.get('table', '')}: {e.source}"])
    return out


CONTEXT_HEADERS = ["context (published, not run)", "value", "model (dataset)", "beside",
                   "source"]


# -- README -----------------------------------------------------------------------------
BEGIN = ("<!-- verdicts:begin (generated by `python -m suite report --markdown --write-readme`;"
         " do not edit) -->")
END = "<!-- verdicts:end -->"


def write_readme(path: str | Path, table: str) -> bool:
    """Replace the text between :data:`BEGIN` and :data:`END` in ``path`` with ``table``.
    Returns whether the file changed; raises ValueError when the markers are missing."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{p} needs exactly one pair of markers, in order:\n{BEGIN}\n{END}")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    new = f"{head}{BEGIN}\n{table.strip()}\n{END}{tail}"
    if new == text:
        return False
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(p)
    return True
