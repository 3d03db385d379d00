"""Read-only queries over the results database, for the dashboard's pages.

Pure functions: an engine (opened read-only by :func:`open_readonly`) and the claims in, plain
data out (pandas frames, :class:`suite.report.ClaimRow`). No Streamlit and no torch here; the
pages in ``dashboard/views`` only lay the results out, and ``dashboard/ui.py`` caches them.

Verdicts are computed exactly as ``python -m suite report`` computes them (the plan of each
claim at a tier, joined with the stored runs, judged by :func:`suite.verdict.judge`), but over
light run records (the columns the judge needs and only the metrics asked for), so a database of
ten thousand runs with long training curves is judged without loading its curves.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from suite import db
from suite.errors import DatabaseError
from suite.plan import PlannedClaim, baseline_form, make_plan, plan_claim
from suite.report import ClaimRow, _expected, judge_planned, observations
from suite.specs import TIERS, VERDICTS, Claim, Expect, Paper, TierForm
from suite.verdict import Summary, judge

#: Tables the dashboard reads (``artifacts`` arrived with migration 0002; older DBs lack it).
TABLES = ("claims", "runs", "metrics", "series", "artifacts")


class NoDatabase(DatabaseError):
    """The results database does not exist (yet)."""


# ------------------------------------------------------------------------------ opening
def open_readonly(url: str) -> Engine:
    """An engine that cannot write: SQLite through a ``mode=ro`` URI (``immutable`` where even
    the WAL index cannot be created), PostgreSQL in read-only transactions. Never migrates.

    Raises :class:`NoDatabase` for a SQLite file that does not exist, :class:`DatabaseError`
    for anything else that cannot be opened.
    """
    url = db.resolve_url(url)
    u = make_url(url)
    backend = u.get_backend_name()
    try:
        if backend == "sqlite":
            if not u.database or u.database == ":memory:":
                raise DatabaseError(f"{url!r} is an in-memory database: nothing to show")
            path = Path(u.database).expanduser().resolve()
            if not path.is_file():
                raise NoDatabase(f"no results database at {path}")
            engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1 FROM sqlite_master LIMIT 1"))
            except OperationalError:  # read-only directory: no -shm can be made for WAL
                engine.dispose()
                engine = create_engine(f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true")
        elif backend == "postgresql":
            engine = create_engine(
                url, connect_args={"options": "-c default_transaction_read_only=on"})
        else:
            engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DatabaseError:
        raise
    except Exception as e:  # missing driver, unreachable server, not a database file
        raise DatabaseError(f"cannot open results database {url!r}: {e}") from e
    return engine


@dataclass(frozen=True)
class DbStatus:
    """What is in the database: table presence, sizes and a fingerprint that changes whenever
    a run is added or replaced (the cache key of every query)."""

    tables: tuple[str, ...]
    n_runs: int
    n_claim_defs: int
    revision: str
    fingerprint: tuple
    last_finished: str = ""

    @property
    def empty(self) -> bool:
        return self.n_runs == 0


def db_status(engine: Engine) -> DbStatus:
    try:
        names = set(inspect(engine).get_table_names())
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot read {engine.url!r}: {e}") from e
    tables = tuple(t for t in TABLES if t in names)
    n_runs = n_defs = max_id = 0
    last = ""
    revision = ""
    with engine.connect() as conn:
        if "runs" in names:
            n_runs, max_id, last_t = conn.execute(
                select(func.count(db.Run.id), func.max(db.Run.id), func.max(db.Run.finished_at))
            ).one()
            n_runs, max_id = int(n_runs or 0), int(max_id or 0)
            last = str(last_t or "")[:19]
        if "claims" in names:
            n_defs = int(conn.execute(select(func.count(db.ClaimDef.id))).scalar() or 0)
        if "alembic_version" in names:
            revision = str(conn.execute(text("SELECT version_num FROM alembic_version"))
                           .scalar() or "")
    return DbStatus(tables, n_runs, n_defs, revision, (n_runs, max_id, n_defs, last), last)


# ------------------------------------------------------------------------------ claims
def claims_from_db(engine: Engine) -> tuple[dict[str, Paper], list[Claim]]:
    """The newest stored definition of every claim (the ``claims`` table keeps history), for a
    database viewed without its tasks.toml."""
    if "claims" not in inspect(engine).get_table_names():
        return {}, []
    latest: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(db.ClaimDef.claim_id, db.ClaimDef.definition)
                            .order_by(db.ClaimDef.first_seen, db.ClaimDef.id)).all()
    for cid, definition in rows:
        latest[cid] = definition
    claims = [claim_from_definition(d) for d in latest.values()]
    papers = {c.paper: Paper(id=c.paper, title=c.paper) for c in claims}
    return papers, claims


def claim_from_definition(d: dict[str, Any]) -> Claim:
    """Rebuild a :class:`Claim` from its stored ``asdict`` form (``claims.definition``)."""
    tiers = {}
    for tier, f in (d.get("tiers") or {}).items():
        f = dict(f)
        e = f.pop("expect", None)
        f["seeds"] = tuple(f.get("seeds") or (0,))
        tiers[tier] = TierForm(**f, expect=Expect(**e) if e else None)
    return Claim(id=d["id"], paper=d.get("paper", ""), source=d.get("source", ""),
                 title=d.get("title", ""), tiers=tiers, tags=tuple(d.get("tags") or ()),
                 published=dict(d.get("published") or {}), status_note=d.get("status_note", ""),
                 skip=dict(d.get("skip") or {}), definition_hash=d.get("definition_hash", ""))


def claim_history(engine: Engine, claim_id: str) -> pd.DataFrame:
    """Every stored definition of one claim: hash and when it was first seen."""
    if "claims" not in inspect(engine).get_table_names():
        return pd.DataFrame(columns=["definition_hash", "first_seen"])
    with engine.connect() as conn:
        rows = conn.execute(select(db.ClaimDef.definition_hash, db.ClaimDef.first_seen)
                            .where(db.ClaimDef.claim_id == claim_id)
                            .order_by(db.ClaimDef.first_seen)).all()
    return pd.DataFrame(rows, columns=["definition_hash", "first_seen"])


# ------------------------------------------------------------------------------ runs
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


def _chunks(xs: list, n: int = 500) -> Iterable[list]:
    for i in range(0, len(xs), n):
        yield xs[i:i + n]


def load_runs(engine: Engine, metric_names: Iterable[str]) -> dict[str, RunLite]:
    """Every run by ``run_key``, with only the metrics named (the judged ones)."""
    names = sorted(set(metric_names))
    by_id: dict[int, dict[str, float]] = defaultdict(dict)
    with engine.connect() as conn:
        rows = conn.execute(select(db.Run.id, db.Run.run_key, db.Run.claim_id, db.Run.tier,
                                   db.Run.arm, db.Run.seed, db.Run.status,
                                   db.Run.message)).all()
        for part in _chunks(names, 200):
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
    """:func:`suite.report.judge_planned` over a :func:`plan_index` (the same verdicts)."""
    out = []
    for pc, keys in index:
        if pc.form is None:
            out.append(judge_planned(pc, runs))
            continue
        t = [runs[k] for a, k in keys if a == "treatment" and k in runs]
        b = [runs[k] for a, k in keys if a == "baseline" and k in runs]
        v = judge(pc.form.expect, observations(t), observations(b), pc.form.min_runs)
        out.append(ClaimRow(pc.claim, pc.tier, v, tuple(t + b)))
    return out


def verdicts(claims: list[Claim], runs: dict[str, RunLite], tiers: Iterable[str]
             ) -> list[ClaimRow]:
    """Each claim judged at each tier where it has a form or a skip reason."""
    return [r for tier in tiers for r in judge_index(plan_index(claims, tier), runs)]


# ------------------------------------------------------------------------------ overview
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
        out.append({
            "claim": r.claim.id, "title": r.claim.title, "paper": r.claim.paper,
            "tier": r.tier, "tags": list(r.claim.tags), "verdict": v.status,
            "message": v.message, "kind": e.kind if e else "", "metric": e.metric if e else "",
            "n": s.n if s else len(ok_seeds), "planned": planned,
            "runs": len(r.runs),
            "ours": interval_text(s, e.unit if e and not delta else "", delta) if s else "–",
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


# ------------------------------------------------------------------------------ one claim
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
        for part in _chunks([k for k in keys if k not in seen]):
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
        for part in _chunks(list(run_ids)):
            out += conn.execute(select(db.Metric.run_id, db.Metric.name, db.Metric.value)
                                .where(db.Metric.run_id.in_(part))).all()
    return pd.DataFrame(out, columns=["run_id", "name", "value"])


def series_frame(engine: Engine, run_ids: list[int]) -> pd.DataFrame:
    """Per-epoch curves of the given runs (run_id, name, step, value)."""
    out = []
    with engine.connect() as conn:
        for part in _chunks(list(run_ids)):
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
            for part in _chunks(list(run_ids)):
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


# ------------------------------------------------------------------------------ all runs
def runs_frame(engine: Engine, claims: list[Claim]) -> pd.DataFrame:
    """Every run (any status) without config or curves: the Runs and Cost pages' table."""
    cols = [c for c in RUN_COLUMNS]
    with engine.connect() as conn:
        rows = conn.execute(select(*[getattr(db.Run, c) for c in cols])).all()
    df = pd.DataFrame([tuple(r) for r in rows], columns=cols)
    paper_of = {c.id: c.paper for c in claims}
    df["paper"] = df["claim_id"].map(lambda c: paper_of.get(c) or c.split("/")[0])
    df["wall_s"] = df["wall_s"].astype(float)
    return df.sort_values("id", ascending=False).reset_index(drop=True)


def run_detail(engine: Engine, run_id: int) -> dict[str, Any]:
    """One run's provenance and resolved config (the spec it ran)."""
    with engine.connect() as conn:
        row = conn.execute(select(db.Run.provenance, db.Run.config, db.Run.started_at,
                                  db.Run.finished_at, db.Run.mlflow_run_id)
                           .where(db.Run.id == run_id)).first()
    if row is None:
        return {}
    return {"provenance": row.provenance, "config": row.config,
            "started_at": str(row.started_at or ""), "finished_at": str(row.finished_at or ""),
            "mlflow_run_id": row.mlflow_run_id}


def filter_runs(df: pd.DataFrame, search: str = "", statuses=(), tiers=(), papers=()
                ) -> pd.DataFrame:
    """Runs matching every non-empty filter; ``search`` is a case-insensitive substring of the
    run key, claim, task, model, dataset, device or message."""
    m = pd.Series(True, index=df.index)
    if statuses:
        m &= df["status"].isin(list(statuses))
    if tiers:
        m &= df["tier"].isin(list(tiers))
    if papers:
        m &= df["paper"].isin(list(papers))
    if search:
        s = search.lower()
        hay = (df["run_key"] + " " + df["claim_id"] + " " + df["task"] + " " + df["model"] + " "
               + df["dataset"] + " " + df["device_name"].fillna("") + " "
               + df["message"].fillna("")).str.lower()
        m &= hay.str.contains(s, regex=False)
    return df[m]


# ------------------------------------------------------------------------------ cost
def cost_by(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Device-seconds (sum of wall time) and run counts grouped by ``keys``."""
    if df.empty:
        return pd.DataFrame(columns=[*keys, "device_s", "device_h", "runs"])
    g = df.groupby(keys, dropna=False).agg(device_s=("wall_s", "sum"), runs=("id", "count"))
    g = g.reset_index()
    g["device_h"] = g["device_s"] / 3600.0
    return g.sort_values("device_s", ascending=False).reset_index(drop=True)


#: Training-set sizes of the datasets a full form names (``dataset_args.train_subset`` wins).
TRAIN_IMAGES = {"cifar10": 50_000, "cifar100": 50_000, "imagenet": 1_281_167,
                "tiny_imagenet": 100_000, "fashion_mnist": 60_000, "fashion_mnist_32": 60_000,
                "fashion_mnist_64": 60_000, "ucf101": 9_537, "hmdb51": 3_570}
#: Metrics that state training throughput (images/s), most specific first.
THROUGHPUT_METRICS = ("train_images_per_s", "images_per_s")
#: Metrics that state forward FLOPs per image.
FLOP_METRICS = ("gflops", "flops")


def _same_model(cfg: dict[str, Any], form_cfg: dict[str, Any]) -> bool:
    return (cfg.get("model") == form_cfg["model"]
            and (cfg.get("model_args") or {}) == (form_cfg["model_args"] or {}))


def _compatible_model(cfg: dict[str, Any], form_cfg: dict[str, Any]) -> bool:
    """The same model whose args agree wherever both set one (``num_classes`` stated by one
    side only, say): close enough for a FLOP count."""
    a, b = cfg.get("model_args") or {}, form_cfg["model_args"] or {}
    return cfg.get("model") == form_cfg["model"] and all(a[k] == b[k] for k in set(a) & set(b))


def full_estimates(engine: Engine, claims: list[Claim]) -> pd.DataFrame:
    """Estimated device-hours of each full-tier training claim, where the database can tell.

    Per arm of the full form: training images = epochs × train-set size; forward GFLOPs per
    image from any run of the same model (model args that agree where both set one) that
    reports ``gflops``/``flops`` (e.g. a ``param_count`` run); throughput from any run of the
    same model, model args and dataset that reports ``train_images_per_s`` or
    ``images_per_s`` (a throughput probe, or a finished run), preferring full-tier runs.
    Estimated hours = images / throughput × seeds; without a throughput the row says so.
    Full-tier runs that actually finished are summed as measured device-hours beside it.
    """
    forms = []  # (claim, arm, form) of every full form
    for c in claims:
        f = c.form("full")
        if f is None or "full" in c.skip or not f.params.get("epochs"):
            continue  # no full form, or nothing trained (parameter counts, benchmarks)
        forms.append((c, "treatment", f))
        if f.expect is not None and f.expect.kind == "delta":
            forms.append((c, "baseline", baseline_form(f)))
    cols = ["claim", "paper", "arm", "model", "dataset", "seeds", "epochs", "train_images",
            "gflops", "train_pflop", "images_per_s", "throughput_from", "est_device_h",
            "measured_device_h"]
    if not forms:
        return pd.DataFrame(columns=cols)
    wanted = THROUGHPUT_METRICS + FLOP_METRICS
    with engine.connect() as conn:
        runs = conn.execute(select(db.Run.id, db.Run.tier, db.Run.config, db.Run.device_name,
                                   db.Run.status, db.Run.wall_s, db.Run.run_key)).all()
        mets: dict[int, dict[str, float]] = defaultdict(dict)
        for rid, name, value in conn.execute(select(db.Metric.run_id, db.Metric.name,
                                                    db.Metric.value)
                                             .where(db.Metric.name.in_(wanted))):
            mets[rid][name] = value
    by_key = {r.run_key: r for r in runs}
    out = []
    for c, arm, f in forms:
        cfg = f.config()
        gflops = ips = None
        source = ""
        # FLOPs: an exact model match first, then a compatible one
        for r in sorted(runs, key=lambda r: (not _same_model(r.config or {}, cfg),
                                             r.tier != "full")):
            m = mets.get(r.id, {})
            rc = r.config or {}
            if not _compatible_model(rc, cfg):
                continue
            if gflops is None:
                if "gflops" in m:
                    gflops = m["gflops"]
                elif "flops" in m:
                    gflops = m["flops"] / 1e9
            if (ips is None and _same_model(rc, cfg) and rc.get("dataset") == cfg["dataset"]
                    and r.status == "ok"):
                for name in THROUGHPUT_METRICS:
                    if m.get(name):
                        ips, source = m[name], f"{name} of run {r.run_key} ({r.device_name})"
                        break
        epochs = float(f.params.get("epochs", 0) or 0)
        n_train = f.dataset_args.get("train_subset") or TRAIN_IMAGES.get(f.dataset)
        images = epochs * n_train if (epochs and n_train) else None
        seeds = len(f.seeds)
        planned = plan_claim(c, "full")
        done = [by_key[s.run_key] for s in planned.arm(arm) if s.run_key in by_key]
        measured = sum(float(r.wall_s or 0) for r in done if r.status == "ok") / 3600.0
        out.append({
            "claim": c.id, "paper": c.paper, "arm": arm, "model": f.model, "dataset": f.dataset,
            "seeds": seeds, "epochs": epochs or None, "train_images": images,
            "gflops": gflops,
            "train_pflop": (3 * gflops * images * seeds / 1e6) if gflops and images else None,
            "images_per_s": ips, "throughput_from": source or "no throughput measured yet",
            "est_device_h": (images / ips * seeds / 3600.0) if images and ips else None,
            "measured_device_h": measured or None,
        })
    return pd.DataFrame(out, columns=cols)


# ------------------------------------------------------------------------------ kernels
KERNEL_METRIC = re.compile(r"^(?P<pool>[A-Za-z0-9_]+)\.(?P<shape>[A-Za-z0-9_]+)\."
                           r"(?P<stat>[A-Za-z0-9_]+)$")


def kernel_frame(engine: Engine, task: str = "kernel_bench") -> pd.DataFrame:
    """Pool benchmark metrics of ok ``kernel_bench`` runs, split into pool / shape / stat
    (``softpool2d.cifar.fwdbwd_ratio_vs_avg`` → softpool2d, cifar, fwdbwd_ratio_vs_avg)."""
    cols = ["run_id", "run_key", "claim_id", "tier", "seed", "device", "pool", "shape", "stat",
            "value"]
    with engine.connect() as conn:
        runs = conn.execute(select(db.Run.id, db.Run.run_key, db.Run.claim_id, db.Run.tier,
                                   db.Run.seed, db.Run.device_name)
                            .where((db.Run.task == task) & (db.Run.status == "ok"))).all()
        info = {r.id: r for r in runs}
        out = []
        for part in _chunks(list(info)):
            for rid, name, value in conn.execute(
                    select(db.Metric.run_id, db.Metric.name, db.Metric.value)
                    .where(db.Metric.run_id.in_(part))):
                m = KERNEL_METRIC.match(name)
                if not m:
                    continue
                r = info[rid]
                out.append((rid, r.run_key, r.claim_id, r.tier, r.seed, r.device_name or "?",
                            m["pool"], m["shape"], m["stat"], value))
    df = pd.DataFrame(out, columns=cols)
    df.insert(6, "family", df["pool"].str.replace(r"[123]d$", "", regex=True))
    return df


def kernel_summary(df: pd.DataFrame, stat: str) -> pd.DataFrame:
    """Mean, min and max of one stat per device, shape and pool over runs (seeds). ``family``
    is the pool without its dimension (softpool2d and softpool3d are both softpool)."""
    d = df[df["stat"] == stat]
    cols = ["device", "shape", "pool", "family", "mean", "min", "max", "n"]
    if d.empty:
        return pd.DataFrame(columns=cols)
    g = d.groupby(["device", "shape", "pool", "family"])["value"].agg(
        ["mean", "min", "max", "count"])
    return g.reset_index().rename(columns={"count": "n"})[cols]


# ------------------------------------------------------------------------------ papers
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

