"""SoftPool charts (Stergiou et al., ICCV 2021): information retention by pool, the
pooling-method ranking and the per-family accuracy deltas, each with 95% t-intervals over
seeds (image shards for retention). Data: the mini tier's runs of the ``softpool/*`` claims.
"""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Any

import altair as alt
import pandas as pd

from dashboard.charts import chart
from suite.report import claim_rows
from suite.verdict import Summary

TIER = "mini"
SOFTPOOL_COLOR = "#d62728"
OTHER_COLOR = "#4c78a8"
VERDICT_SCALE = alt.Scale(domain=["reproduced", "inconclusive", "not reproduced"],
                          range=["#2ca02c", "#7f7f7f", "#d62728"])


def _rows(engine, claims: list, pattern: str, tier: str = TIER) -> list:
    chosen = [c for c in claims if fnmatch.fnmatchcase(c.id, pattern)]
    return claim_rows(engine, chosen, tier) if chosen else []


def _ok_runs(rows: list) -> dict[str, Any]:
    """Every ok run of these claims once (claims share runs by run key)."""
    return {r.run_key: r for row in rows for r in row.runs if r.status == "ok"}


def _interval(values: list[float]) -> dict[str, float]:
    s = Summary.of(values)
    lo = s.lo if math.isfinite(s.lo) else s.mean
    hi = s.hi if math.isfinite(s.hi) else s.mean
    return {"mean": s.mean, "lo": lo, "hi": hi, "n": s.n}


def _pool_color(domain: list[str]) -> alt.Scale:
    return alt.Scale(domain=domain, range=[SOFTPOOL_COLOR if p == "softpool" else OTHER_COLOR
                                           for p in domain])


def retention_table(engine, claims: list, tier: str = TIER) -> pd.DataFrame:
    """Per dataset, kernel, score and pool: mean and 95% CI over image shards."""
    runs = _ok_runs(_rows(engine, claims, "softpool/retention/*", tier))
    by: dict[tuple[str, int, str, str], list[float]] = {}
    for r in runs.values():
        for name, value in r.metric_dict().items():
            m = re.fullmatch(r"k(\d+)\.(ssim|psnr)\.([a-z_]+)", name)
            if m and "_minus_" not in m.group(3):
                by.setdefault((r.dataset, int(m.group(1)), m.group(2), m.group(3)),
                              []).append(value)
    recs = [{"dataset": d, "kernel": f"{k}×{k}", "score": s.upper(), "pool": p,
             **_interval(v)} for (d, k, s, p), v in sorted(by.items())]
    return pd.DataFrame(recs)


@chart("softpool/retention", title="Information retention: SSIM and PSNR of pooled images")
def retention(engine, claims):
    df = retention_table(engine, claims)
    if df.empty:
        return None
    order = (df[(df.score == "SSIM")].groupby("pool")["mean"].mean()
             .sort_values(ascending=False).index.tolist())
    base = alt.Chart().encode(
        y=alt.Y("pool:N", sort=order, title=None),
        color=alt.Color("pool:N", scale=_pool_color(order), legend=None))
    points = base.mark_point(filled=True, size=50).encode(
        x=alt.X("mean:Q", title=None, scale=alt.Scale(zero=False)),
        tooltip=["dataset", "kernel", "score", "pool", alt.Tooltip("mean:Q", format=".4f"),
                 alt.Tooltip("lo:Q", format=".4f"), alt.Tooltip("hi:Q", format=".4f"), "n"])
    bars = base.mark_rule().encode(x="lo:Q", x2="hi:Q")
    return (alt.layer(bars, points, data=df)
            .properties(width=170, height=130)
            .facet(row=alt.Row("dataset:N", title=None),
                   column=alt.Column("score_kernel:N", title=None))
            .transform_calculate(score_kernel="datum.score + ' ' + datum.kernel")
            .resolve_scale(x="independent")
            .properties(title="SoftPool information retention (mean, 95% CI over image shards; "
                              "higher = more retained)"))


def ranking_table(engine, claims: list, tier: str = TIER) -> pd.DataFrame:
    """Top-1 per pool of the pooling-method comparison: mean and 95% CI over seeds."""
    runs = _ok_runs(_rows(engine, claims, "softpool/compare/*", tier))
    by: dict[str, list[float]] = {}
    for r in runs.values():
        pool = (r.config.get("model_args") or {}).get("pool")
        if pool and "top1" in r.metric_dict():
            by.setdefault(pool, []).append(r.metric_dict()["top1"])
    recs = [{"pool": p, **_interval(v)} for p, v in by.items()]
    df = pd.DataFrame(recs)
    if not df.empty:
        df = df.sort_values("mean", ascending=False).reset_index(drop=True)
        df.insert(0, "rank", range(1, len(df) + 1))
    return df


@chart("softpool/ranking", title="Pooling-method comparison: VGG16-BN top-1 per pool")
def ranking(engine, claims):
    df = ranking_table(engine, claims)
    if df.empty:
        return None
    order = df["pool"].tolist()
    base = alt.Chart(df).encode(
        y=alt.Y("pool:N", sort=order, title=None),
        color=alt.Color("pool:N", scale=_pool_color(order), legend=None))
    bars = base.mark_rule(strokeWidth=2).encode(x=alt.X("lo:Q", title="test top-1 (%)",
                                                        scale=alt.Scale(zero=False)),
                                                x2="hi:Q")
    points = base.mark_point(filled=True, size=70).encode(
        x="mean:Q", tooltip=["rank", "pool", alt.Tooltip("mean:Q", format=".2f"),
                             alt.Tooltip("lo:Q", format=".2f"),
                             alt.Tooltip("hi:Q", format=".2f"), "n"])
    return (bars + points).properties(
        width=420, height=22 * len(df),
        title="Pooling methods in VGG16-BN's five pools (mini: Fashion-MNIST 32×32, "
              "mean and 95% CI over seeds)")


def _judged(row) -> dict:
    """A judged claim row's verdict, mean and 95% interval (a single seed: the mean), n."""
    s = row.verdict.summary
    return {"verdict": row.verdict.status, "mean": s.mean,
            "lo": s.lo if math.isfinite(s.lo) else s.mean,
            "hi": s.hi if math.isfinite(s.hi) else s.mean, "n": s.n}


def deltas_table(engine, claims: list, tier: str = TIER) -> pd.DataFrame:
    """Paired top-1 difference SoftPool − baseline per accuracy family claim."""
    recs = []
    for pattern in ("softpool/imagenet/*", "softpool/ucf101/*", "softpool/video/*"):
        for row in _rows(engine, claims, pattern, tier):
            s = row.verdict.summary
            form = row.claim.form(tier)
            if s is None or not s.n or form is None or form.expect is None:
                continue
            base = form.expect.baseline.get("model_args", {}).get("pool", "?")
            recs.append({"claim": row.claim.id, "model": form.model,
                         "comparison": f"{form.model}: softpool − {base}",
                         **_judged(row)})
    return pd.DataFrame(recs)


@chart("softpool/family-deltas", title="SoftPool − original pooling, top-1, per family")
def family_deltas(engine, claims):
    df = deltas_table(engine, claims)
    if df.empty:
        return None
    base = alt.Chart(df).encode(y=alt.Y("comparison:N", title=None, sort=None))
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("lo:Q", title="paired top-1 difference (pp)"), x2="hi:Q",
        color=alt.Color("verdict:N", scale=VERDICT_SCALE, legend=alt.Legend(title="verdict")))
    points = base.mark_point(filled=True, size=70).encode(
        x="mean:Q", color=alt.Color("verdict:N", scale=VERDICT_SCALE),
        tooltip=["claim", "verdict", alt.Tooltip("mean:Q", format="+.2f"),
                 alt.Tooltip("lo:Q", format="+.2f"), alt.Tooltip("hi:Q", format="+.2f"), "n"])
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(color="gray").encode(x="x:Q")
    return (zero + bars + points).properties(
        width=420, height=30 * len(df),
        title="SoftPool substitution per family (mini; mean and the verdict's CI of the paired "
              "difference over seeds: 95%, 97.5% at sequential look 1)")


def retention_deltas_table(engine, claims: list, tier: str = TIER) -> pd.DataFrame:
    """The retention claims as judged: mean paired difference SoftPool − pool over image shards
    with its 95% CI and verdict."""
    recs = []
    for row in _rows(engine, claims, "softpool/retention/*", tier):
        s = row.verdict.summary
        form = row.claim.form(tier)
        if s is None or not s.n or form is None or form.expect is None:
            continue
        k, score, diff = form.expect.metric.split(".")
        recs.append({"claim": row.claim.id, "dataset": form.dataset,
                     "score": score.upper(), "kernel": k[1:] + "×" + k[1:],
                     "comparison": f"{form.dataset} {k[1:]}×{k[1:]}: "
                                   f"{diff.replace('_minus_', ' − ')}",
                     **_judged(row)})
    return pd.DataFrame(recs)


@chart("softpool/retention-deltas", title="Information retention: SoftPool − max / avg, paired")
def retention_deltas(engine, claims):
    df = retention_deltas_table(engine, claims)
    if df.empty:
        return None
    base = alt.Chart().encode(y=alt.Y("comparison:N", title=None, sort=None))
    bars = base.mark_rule(strokeWidth=2).encode(
        x=alt.X("lo:Q", title="paired difference (SSIM units / dB)"), x2="hi:Q",
        color=alt.Color("verdict:N", scale=VERDICT_SCALE, legend=alt.Legend(title="verdict")))
    points = base.mark_point(filled=True, size=60).encode(
        x="mean:Q", color=alt.Color("verdict:N", scale=VERDICT_SCALE),
        tooltip=["claim", "verdict", alt.Tooltip("mean:Q", format="+.4f"),
                 alt.Tooltip("lo:Q", format="+.4f"), alt.Tooltip("hi:Q", format="+.4f"), "n"])
    zero = alt.Chart().mark_rule(color="gray").encode(x="zero:Q")
    return (alt.layer(zero, bars, points, data=df.assign(zero=0.0))
            .properties(width=300, height=24 * 6)
            .facet(column=alt.Column("score:N", title=None))
            .resolve_scale(x="independent", y="independent")
            .properties(title="SoftPool − other pool, mean and 95% CI over image shards "
                              "(claims softpool/retention/*; > 0 = SoftPool retains more)"))
