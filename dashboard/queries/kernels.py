"""Pooling benchmark results (``kernel_bench`` runs) split into pool, shape and statistic."""

from __future__ import annotations

import re

import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Engine

from dashboard.queries.source import chunks
from suite import db

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
        for part in chunks(list(info)):
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
