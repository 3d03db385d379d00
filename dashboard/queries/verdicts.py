"""Every claim judged at a tier, as ``python -m suite report`` judges it, over light run
records; the overview's rows, filters and counts."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from dashboard.queries.source import chunks
from suite import db
from suite.plan import PlannedClaim, make_plan
from suite.report import ClaimRow, _expected, judge_planned, observations, with_extensions
from suite.specs import TIERS, VERDICTS, Claim, Expect
from suite.verdict import Summary, judge, level


class RunLite(NamedTuple):
    """A run as the judge and the overview need it: no config, no curves, chosen metrics."""

    id: int
    run_key: str
    claim_id: str
    tier: str
    arm: str
    seed: int
    status: str
    message: str
    metrics: dict[str, float]

    def metric_dict(self) -> dict[str, float]:
        return dict(self.metrics)

def load_runs(engine: Engine, metric_names: Iterable[str]) -> dict[str, RunLite]:
    """Every run by ``run_key``, with only the metrics named (the judged ones)."""
    names = sorted(set(metric_names))
    by_id: dict[int, dict[str, float]] = defaultdict(dict)
    with engine.connect() as conn:
        rows = conn.execute(select(db.Run.id, db.Run.run_key, db.Run.claim_id, db.Run.tier,
                                   db.Run.arm, db.Run.seed, db.Run.status,
                                   db.Run.message)).all()
        for part in chunks(names, 200):
            for run_id, name, value in conn.execute(
                    select(db.Metric.run_id, db.Metric.name, db.Metric.value)
                    .where(db.Metric.name.in_(part))):
                by_id[run_id][name] = value
    return {key: RunLite(rid, key, cid, tier, arm, seed, status, msg or "", by_id.get(rid, {}))
            for rid, key, cid, tier, arm, seed, status, msg in rows}


#: Our metric for a published row's metric name (``registry/published.toml``).
METRIC_FOR_PUBLISHED = {"error": "top1_err", "top1_error": "top1_err", "top1_acc": "top1",
                        "accuracy": "top1", "params": "params_m"}


def judged_metrics(claims: list[Claim]) -> set[str]:
    """The metrics the overview and the papers page need: every claim's expect metric at every
    tier, and our counterparts of the published rows' metrics."""
    names = set(METRIC_FOR_PUBLISHED.values())
    for c in claims:
        for form in c.tiers.values():
            if form.expect is not None:
                names.add(form.expect.metric)
    return names


def ok_runs_by_tier(engine: Engine) -> dict[str, int]:
    """How many ok runs each tier has (tiers with runs only, in TIERS order)."""
    with engine.connect() as conn:
        have = dict(conn.execute(select(db.Run.tier, func.count(db.Run.id))
                                 .where(db.Run.status == "ok").group_by(db.Run.tier)).all())
    return {t: have[t] for t in [*TIERS, *sorted(set(have) - set(TIERS))] if t in have}


def tiers_with_runs(engine: Engine) -> list[str]:
    return list(ok_runs_by_tier(engine))


def main_tier(engine: Engine) -> str | None:
    """The tier with the most ok runs: what a visitor most likely came to see."""
    counts = ok_runs_by_tier(engine)
    return max(counts, key=counts.get) if counts else None


PlanIndex = list[tuple[PlannedClaim, tuple[tuple[str, str], ...]]]


def plan_index(claims: list[Claim], tier: str) -> PlanIndex:
    """Each claim's plan at a tier with its runs' (arm, run_key), hashed once: the part of
    judging that depends on the claims only (cached per claims file by the app). A claim with
    no form and no skip reason at the tier has nothing to show there and is left out."""
    return [(pc, tuple((r.arm, r.run_key) for r in pc.runs))
            for pc in make_plan(claims, tier).claims if pc.form is not None or pc.skipped]


def judge_index(index: PlanIndex, runs: dict[str, RunLite]) -> list[ClaimRow]:
    """:func:`suite.report.judge_planned` over a :func:`plan_index` (the same verdicts), then
    the seeds ``run --until-decided`` added, judged at their look's level as the report does
    (:func:`suite.report.with_extensions`)."""
    out = []
    for pc, keys in index:
        if pc.form is None:
            out.append(judge_planned(pc, runs))
            continue
        t = [runs[k] for a, k in keys if a == "treatment" and k in runs]
        b = [runs[k] for a, k in keys if a == "baseline" and k in runs]
        v = judge(pc.form.expect, observations(t), observations(b), pc.form.min_runs)
        out.append(ClaimRow(pc.claim, pc.tier, v, tuple(t + b)))
    return with_extensions(out, lambda _keys: runs)


def verdicts(claims: list[Claim], runs: dict[str, RunLite], tiers: Iterable[str]
             ) -> list[ClaimRow]:
    """Each claim judged at each tier where it has a form or a skip reason."""
    return [r for tier in tiers for r in judge_index(plan_index(claims, tier), runs)]


def _fmt(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}g}"


def interval_text(s: Summary | None, unit: str = "", delta: bool = False) -> str:
    """``mean ± half-width`` of a 95% interval (``mean`` alone for one run)."""
    if s is None or s.n == 0:
        return "–"
    mean = f"{s.mean:+.4g}" if delta else _fmt(s.mean)
    if s.n > 1 and math.isfinite(s.hi) and math.isfinite(s.lo):
        mean += f" ± {_fmt((s.hi - s.lo) / 2, 2)}"
    return f"{'Δ ' if delta else ''}{mean}{(' ' + unit) if unit else ''}"


def expected_text(e: Expect | None) -> str:
    """The expectation as the CLI report prints it (``≥ 30 %``, ``Δ ≥ +0 vs pool=max``)."""
    return _expected(e)


def published_rows_of(claim: Claim) -> list[dict[str, Any]]:
    """The rows of ``registry/published.toml`` a claim points at (``published.ref/refs``)."""
    from registry import published as pub

    refs = claim_refs(claim)
    known = pub.by_ref()
    return [known[r] for r in refs if r in known]


def claim_refs(claim: Claim) -> list[str]:
    p = claim.published or {}
    refs = [p["ref"]] if isinstance(p.get("ref"), str) else []
    return refs + [r for r in (p.get("refs") or []) if isinstance(r, str) and r not in refs]


def published_text(claim: Claim) -> str:
    """The published number a claim is about, as the overview shows it."""
    p = claim.published or {}
    if isinstance(p.get("value"), (int, float)):
        unit = p.get("unit", "")
        txt = f"{p['value']:g}{(' ' + unit) if unit else ''}"
    else:
        rows = published_rows_of(claim)
        txt = "; ".join(f"{r['model']}: {r['value']:g}{r.get('unit', '')}"
                        for r in rows if isinstance(r.get("value"), (int, float))) or "–"
    if p.get("verified") is False:
        txt += " (unverified)"
    return txt


def overview_frame(rows: list[ClaimRow]) -> pd.DataFrame:
    """One row per claim × tier: verdict, n, ours, published, expectation, filters' fields."""
    out = []
    for r in rows:
        form = r.claim.form(r.tier)
        e = form.expect if form else None
        v = r.verdict
        delta = bool(e and e.kind == "delta")
        planned = len(form.seeds) if form else 0
        ok_seeds = {x.seed for x in r.runs if x.status == "ok" and x.arm == "treatment"}
        s = v.summary
        if v.look and s:  # extended by run --until-decided: its seeds are the ones planned now
            planned = max(planned, s.n)
        out.append({
            "claim": r.claim.id, "title": r.claim.title, "paper": r.claim.paper,
            "tier": r.tier, "tags": list(r.claim.tags), "verdict": v.status,
            "message": v.message, "kind": e.kind if e else "", "metric": e.metric if e else "",
            "n": s.n if s else len(ok_seeds), "planned": planned,
            "runs": len(r.runs),
            "ours": (interval_text(s, e.unit if e and not delta else "", delta)
                     + (f" ({level(v.alpha)}, look {v.look})" if v.look else "")) if s else "–",
            "mean": s.mean if s and s.n else math.nan,
            "lo": s.lo if s and s.n > 1 else math.nan,
            "hi": s.hi if s and s.n > 1 else math.nan,
            "published": published_text(r.claim), "expected": _expected(e),
        })
    df = pd.DataFrame(out, columns=[
        "claim", "title", "paper", "tier", "tags", "verdict", "message", "kind", "metric", "n",
        "planned", "runs", "ours", "mean", "lo", "hi", "published", "expected"])
    if len(df):
        df["_t"] = df["tier"].map({t: i for i, t in enumerate(TIERS)}).fillna(9)
        df = df.sort_values(["paper", "claim", "_t"], kind="stable").drop(columns="_t")
    return df.reset_index(drop=True)


def filter_overview(df: pd.DataFrame, papers=(), tiers=(), verdicts=(), tags=(),
                    search: str = "") -> pd.DataFrame:
    """The overview rows matching every non-empty filter (``tags``: any of them)."""
    m = pd.Series(True, index=df.index)
    if papers:
        m &= df["paper"].isin(list(papers))
    if tiers:
        m &= df["tier"].isin(list(tiers))
    if verdicts:
        m &= df["verdict"].isin(list(verdicts))
    if tags:
        want = set(tags)
        m &= df["tags"].map(lambda ts: bool(want & set(ts)))
    if search:
        s = search.lower()
        m &= (df["claim"].str.lower().str.contains(s, regex=False)
              | df["title"].str.lower().str.contains(s, regex=False))
    return df[m]


def verdict_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Claims per paper and verdict (long form, for a stacked bar)."""
    if df.empty:
        return pd.DataFrame(columns=["paper", "verdict", "claims"])
    c = df.groupby(["paper", "verdict"]).size().reset_index(name="claims")
    c["order"] = c["verdict"].map({v: i for i, v in enumerate(VERDICTS)})
    return c.sort_values(["paper", "order"]).drop(columns="order").reset_index(drop=True)
