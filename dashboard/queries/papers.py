"""The papers' published numbers (``registry/published.toml``) with ours beside them, through
the claims' ``published.ref`` / ``published.refs``."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dashboard.queries.verdicts import METRIC_FOR_PUBLISHED, claim_refs
from suite.report import ClaimRow
from suite.specs import Claim
from suite.verdict import Summary


@dataclass(frozen=True)
class Cell:
    """One published number and ours beside it."""

    ref: str
    table: str
    dataset: str
    model: str
    metric: str
    published: float | None
    unit: str
    verified: bool
    claim: str = ""
    arm: str = ""
    tier: str = ""
    verdict: str = ""
    our_metric: str = ""
    ours: float | None = None
    ours_lo: float | None = None
    ours_hi: float | None = None
    n: int = 0
    note: str = ""


def paper_of_ref(ref: str) -> str:
    return ref.split("/", 1)[0]


def ref_arms(claims: list[Claim]) -> dict[str, list[tuple[Claim, str]]]:
    """ref -> [(claim, arm)]: which arm of which claim measures a published row.

    An absolute claim's refs are all its treatment arm. A delta claim lists its treatment
    row(s) first and the baseline row last: ``refs = [treatment, baseline]``; with a single
    ref it is the treatment.
    """
    out: dict[str, list[tuple[Claim, str]]] = defaultdict(list)
    for c in claims:
        refs = claim_refs(c)
        delta = any(f.expect is not None and f.expect.kind == "delta" for f in c.tiers.values())
        for i, ref in enumerate(refs):
            arm = "baseline" if delta and len(refs) > 1 and i == len(refs) - 1 else "treatment"
            out[ref].append((c, arm))
    return out


def _arm_stats(row: ClaimRow, arm: str, candidates: list[str]) -> tuple[str, list[float]]:
    ok = [r for r in row.runs if r.status == "ok" and r.arm == arm]
    for name in candidates:
        vals = [r.metrics[name] for r in ok if name in r.metrics]
        if vals:
            return name, vals
    return "", []


def paper_cells(paper: str, claims: list[Claim], rows: list[ClaimRow], tier: str) -> list[Cell]:
    """Every published row of a paper with our number at ``tier`` where a claim points at it
    (``published.ref``/``refs``): the mean of the matching metric over the arm's ok seeds."""
    from registry import published as pub

    arms = ref_arms(claims)
    judged = {(r.claim.id, r.tier): r for r in rows}
    cells = []
    for p in pub.rows():
        if paper_of_ref(p["ref"]) != paper:
            continue
        value = p.get("value")
        base = dict(ref=p["ref"], table=p["table"], dataset=p["dataset"], model=p["model"],
                    metric=p["metric"], published=value if isinstance(value, (int, float))
                    else None, unit=p.get("unit", ""), verified=bool(p.get("verified", True)),
                    note=str(p.get("note", "")) or ("" if isinstance(value, (int, float))
                                                    else str(value)))
        mapped = arms.get(p["ref"], [])
        if not mapped:
            cells.append(Cell(**base))
            continue
        c, arm = mapped[0]
        row = judged.get((c.id, tier))
        extra: dict[str, Any] = {"claim": c.id, "arm": arm, "tier": tier,
                                 "verdict": row.verdict.status if row else ""}
        if row is not None:
            form = c.form(tier)
            cands = [METRIC_FOR_PUBLISHED.get(p["metric"], p["metric"]), p["metric"]]
            if form is not None and form.expect is not None:
                cands.append(form.expect.metric)
            name, vals = _arm_stats(row, arm, cands)
            if vals:
                s = Summary.of(vals)
                extra.update(our_metric=name, ours=s.mean, n=s.n,
                             ours_lo=s.lo if s.n > 1 else None,
                             ours_hi=s.hi if s.n > 1 else None)
        cells.append(Cell(**base, **extra))
    return cells


def cells_frame(cells: list[Cell]) -> pd.DataFrame:
    return pd.DataFrame([c.__dict__ for c in cells],
                        columns=list(Cell.__dataclass_fields__))


def unmapped_claims(paper: str, claims: list[Claim]) -> list[Claim]:
    """A paper's claims that point at no published row (no ``published.ref``/``refs``)."""
    return [c for c in claims if c.paper == paper and not claim_refs(c)]
