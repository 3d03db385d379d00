"""One claim at one tier: seed points, intervals, the accepted region, its runs with their
provenance, curves and artifacts, and its recipe per arm."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from dashboard.queries.source import chunks
from suite import db
from suite.plan import baseline_form, plan_claim
from suite.report import ClaimRow
from suite.specs import Claim, Expect


def find_row(rows: list[ClaimRow], claim_id: str, tier: str) -> ClaimRow | None:
    return next((r for r in rows if r.claim.id == claim_id and r.tier == tier), None)


def accepted_region(expect: Expect) -> tuple[float, float]:
    """The region the interval must lie in for *reproduced* (as :func:`suite.verdict.judge`):
    of the metric for an absolute claim, of the paired difference for a delta claim."""
    if expect.kind == "absolute":
        v, tol = float(expect.value or 0.0), expect.tolerance
        return {"higher": (v - tol, math.inf), "lower": (-math.inf, v + tol)}.get(
            expect.direction, (v - tol, v + tol))
    return {"higher": (expect.min_diff, math.inf), "lower": (-math.inf, -expect.min_diff)}.get(
        expect.direction, (-expect.tolerance, expect.tolerance))


def seed_points(row: ClaimRow) -> pd.DataFrame:
    """The judged metric per seed and arm (ok runs), plus the paired difference for a delta
    claim (arm ``Δ (treatment − baseline)``)."""
    form = row.claim.form(row.tier)
    e = form.expect if form else None
    cols = ["arm", "seed", "value", "run_key"]
    if e is None:
        return pd.DataFrame(columns=cols)
    pts = [{"arm": r.arm, "seed": r.seed, "value": r.metrics[e.metric], "run_key": r.run_key}
           for r in row.runs if r.status == "ok" and e.metric in r.metrics]
    if e.kind == "delta":
        t = {p["seed"]: p["value"] for p in pts if p["arm"] == "treatment"}
        b = {p["seed"]: p["value"] for p in pts if p["arm"] == "baseline"}
        pts += [{"arm": DIFF_ARM, "seed": s, "value": t[s] - b[s], "run_key": ""}
                for s in sorted(set(t) & set(b))]
    return pd.DataFrame(pts, columns=cols)


DIFF_ARM = "Δ (treatment − baseline)"


def interval_frame(row: ClaimRow) -> pd.DataFrame:
    """Mean and 95% interval per arm (and of the paired difference), from the verdict."""
    v = row.verdict
    form = row.claim.form(row.tier)
    e = form.expect if form else None
    out = []
    parts = ([("treatment", v.treatment), ("baseline", v.baseline), (DIFF_ARM, v.summary)]
             if e is not None and e.kind == "delta" else [("treatment", v.summary)])
    for arm, s in parts:
        if s is None or s.n == 0:
            continue
        lo, hi = (s.lo, s.hi) if s.n > 1 else (s.mean, s.mean)
        out.append({"arm": arm, "mean": s.mean, "lo": lo, "hi": hi, "n": s.n,
                    "std": s.std if s.n > 1 else math.nan})
    return pd.DataFrame(out, columns=["arm", "mean", "lo", "hi", "n", "std"])


def planned_keys(claim: Claim, tier: str) -> dict[str, str]:
    """run_key -> arm of the claim's current plan at ``tier``."""
    return {r.run_key: r.arm for r in plan_claim(claim, tier).runs}


RUN_COLUMNS = ["id", "run_key", "claim_id", "tier", "arm", "seed", "status", "message", "task",
               "model", "dataset", "attempts", "started_at", "finished_at", "wall_s", "git_sha",
               "git_dirty", "python_version", "torch_version", "device_name", "mlflow_run_id"]


def claim_runs(engine: Engine, claim: Claim, tier: str) -> pd.DataFrame:
    """Every run of a claim at a tier with full provenance: the current plan's runs (some may
    have been recorded under another claim with the same recipe) and earlier runs recorded
    under this claim id whose recipe has since changed (``current`` False), or that are not
    an arm of the claim (``trial``: sweep trials recorded under the claim)."""
    keys = planned_keys(claim, tier)
    cols = [getattr(db.Run, c) for c in RUN_COLUMNS] + [db.Run.provenance, db.Run.config]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols).where(
            (db.Run.claim_id == claim.id) & (db.Run.tier == tier))).all()
        seen = {r.run_key for r in rows}
        for part in chunks([k for k in keys if k not in seen]):
            rows += conn.execute(select(*cols).where(db.Run.run_key.in_(part))).all()
    df = pd.DataFrame([r._asdict() for r in rows], columns=RUN_COLUMNS + ["provenance", "config"])
    df["current"] = df["run_key"].isin(list(keys))
    df["trial"] = ~df["arm"].isin(["treatment", "baseline"])  # e.g. sweep trials
    df["device_hours"] = df["wall_s"].astype(float) / 3600.0
    return df.sort_values(["current", "arm", "seed"], ascending=[False, False, True]
                          ).reset_index(drop=True)


def run_metrics(engine: Engine, run_ids: list[int]) -> pd.DataFrame:
    """All final metrics of the given runs (long form: run_id, name, value)."""
    out = []
    with engine.connect() as conn:
        for part in chunks(list(run_ids)):
            out += conn.execute(select(db.Metric.run_id, db.Metric.name, db.Metric.value)
                                .where(db.Metric.run_id.in_(part))).all()
    return pd.DataFrame(out, columns=["run_id", "name", "value"])


def series_frame(engine: Engine, run_ids: list[int]) -> pd.DataFrame:
    """Per-epoch curves of the given runs (run_id, name, step, value)."""
    out = []
    with engine.connect() as conn:
        for part in chunks(list(run_ids)):
            out += conn.execute(select(db.SeriesPoint.run_id, db.SeriesPoint.name,
                                       db.SeriesPoint.step, db.SeriesPoint.value)
                                .where(db.SeriesPoint.run_id.in_(part))).all()
    return pd.DataFrame(out, columns=["run_id", "name", "step", "value"])


def artifact_index(engine: Engine, run_ids: list[int] | None = None,
                   media_prefix: str = "") -> pd.DataFrame:
    """Artifacts (without their bytes): run_id, name, media_type, bytes."""
    cols = ["run_id", "name", "media_type", "bytes"]
    if "artifacts" not in inspect(engine).get_table_names():
        return pd.DataFrame(columns=cols)
    q = select(db.Artifact.run_id, db.Artifact.name, db.Artifact.media_type,
               func.length(db.Artifact.data))
    if media_prefix:
        q = q.where(db.Artifact.media_type.startswith(media_prefix))
    out = []
    with engine.connect() as conn:
        if run_ids is None:
            out = conn.execute(q).all()
        else:
            for part in chunks(list(run_ids)):
                out += conn.execute(q.where(db.Artifact.run_id.in_(part))).all()
    return pd.DataFrame(out, columns=cols).sort_values(["run_id", "name"]).reset_index(drop=True)


def artifact(engine: Engine, run_id: int, name: str) -> tuple[str, bytes] | None:
    """``(media_type, bytes)`` of one artifact; JSON artifacts decode with
    :func:`suite.specs.artifact_value`."""
    with engine.connect() as conn:
        row = conn.execute(select(db.Artifact.media_type, db.Artifact.data).where(
            (db.Artifact.run_id == run_id) & (db.Artifact.name == name))).first()
    return None if row is None else (row[0], bytes(row[1]))


def recipe(claim: Claim, tier: str) -> dict[str, Any]:
    """What each arm runs at a tier (the resolved recipe, baseline overrides applied)."""
    form = claim.form(tier)
    if form is None:
        return {"skip": claim.skip.get(tier, f"no {tier} form")}
    out: dict[str, Any] = {"treatment": form.config(), "seeds": list(form.seeds),
                           "min_runs": form.min_runs, "device": form.device,
                           "timeout_s": form.timeout_s}
    if form.expect is not None:
        out["expect"] = form.expect.to_dict()
        if form.expect.kind == "delta":
            out["baseline"] = baseline_form(form).config()
    return out


def recipe_table(claim: Claim, tier: str) -> pd.DataFrame:
    """The recipe field by field, one column per arm (a delta claim's baseline differs only
    where ``expect.baseline`` overrides it)."""
    import json

    r = recipe(claim, tier)
    arms = [a for a in ("treatment", "baseline") if a in r]
    fields = ["task", "model", "dataset", "model_args", "dataset_args", "params"]
    out = []
    for f in fields:
        vals = {a: r[a].get(f) for a in arms}
        if all(v in (None, "", {}) for v in vals.values()):
            continue
        out.append({"field": f, **{a: v if isinstance(v, str) else json.dumps(v)
                                   for a, v in vals.items()}})
    if arms:
        out.append({"field": "seeds", **{a: ", ".join(map(str, r["seeds"])) for a in arms}})
    return pd.DataFrame(out, columns=["field", *arms])
