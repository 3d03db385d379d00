"""Every run (the Runs page) and what runs cost (the Cost page): measured device-seconds and
the estimated device-hours of full-tier claims."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dashboard.queries.claim import RUN_COLUMNS
from suite import db
from suite.plan import baseline_form, plan_claim
from suite.specs import Claim


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
