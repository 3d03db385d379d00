"""Claims × verdicts: join the plan with the stored runs and judge each claim.

Pure queries over the results DB (no torch), shared by the CLI's ``report`` and the
dashboard.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from suite import db
from suite.plan import PlannedClaim, make_plan
from suite.specs import Claim
from suite.verdict import Observation, Verdict, judge


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
        }


def _expected(e: Any) -> str:
    if e is None:
        return ""
    if e.kind == "absolute":
        sym = {"higher": "≥", "lower": "≤", "equal": "="}[e.direction]
        tol = f" ± {e.tolerance:g}" if e.tolerance else ""
        return f"{sym} {e.value:g}{tol}{(' ' + e.unit) if e.unit else ''}"
    sym = {"higher": f"Δ ≥ {e.min_diff:+g}", "lower": f"Δ ≤ {-e.min_diff:+g}",
           "equal": f"|Δ| ≤ {e.tolerance:g}"}[e.direction]
    base = ", ".join(f"{k}={v}" for k, v in e.baseline.items())
    return f"{sym} vs {base}"


def observations(runs: list[Any]) -> list[Observation]:
    return [Observation(r.seed, r.status, r.metric_dict(), r.message) for r in runs]


def judge_planned(pc: PlannedClaim, by_key: dict[str, Any]) -> ClaimRow:
    if pc.form is None:
        status = "skipped" if pc.skipped else "pending"
        return ClaimRow(pc.claim, pc.tier, Verdict(status, pc.reason), ())
    t = [by_key[r.run_key] for r in pc.arm("treatment") if r.run_key in by_key]
    b = [by_key[r.run_key] for r in pc.arm("baseline") if r.run_key in by_key]
    v = judge(pc.form.expect, observations(t), observations(b), pc.form.min_runs)
    return ClaimRow(pc.claim, pc.tier, v, tuple(t + b))


def claim_rows(engine, claims: list[Claim], tier: str,
               seeds: tuple[int, ...] | None = None,
               tunings: dict[str, str] | None = None) -> list[ClaimRow]:
    """Judge each claim at ``tier``. ``tunings``: claim id -> how its arms were tuned (the
    claims are then the tuned ones, :func:`suite.sweep.tuned_claims`); said in the verdict."""
    plan = make_plan(claims, tier, seeds)
    by_key = db.runs_by_key(engine, [r.run_key for r in plan.runs])
    rows = [judge_planned(pc, by_key) for pc in plan.claims]
    notes = tunings or {}
    return [replace(r, tuning=notes[r.claim.id],
                    verdict=replace(r.verdict, message=f"{notes[r.claim.id]}. "
                                                       f"{r.verdict.message}"))
            if r.claim.id in notes else r for r in rows]


def fmt_num(x: float | None, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and (math.isnan(x) or math.isinf(x))):
        return "–"
    return f"{x:.{digits}g}"


def table_rows(rows: list[ClaimRow]) -> list[list[str]]:
    out = []
    for r in rows:
        s = r.verdict.summary
        d = r.as_dict()
        out.append([
            r.claim.id, r.tier, d["metric"] or "", d["expected"],
            fmt_num(s.mean) if s else "–",
            f"[{fmt_num(s.lo)}, {fmt_num(s.hi)}]" if s and s.n > 1 else "–",
            str(s.n) if s else "0", r.verdict.status + (" (tuned)" if r.tuning else ""),
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


HEADERS = ["claim", "tier", "metric", "expected", "mean (Δ)", "95% CI", "n", "verdict"]


def markdown(rows: list[ClaimRow]) -> str:
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for cells in table_rows(rows):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)
