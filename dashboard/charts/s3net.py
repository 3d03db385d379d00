"""S3Net charts (Fan et al., arXiv 1811.09003): the NTK expressibility curve (Fig. 3) beside
the paper's values, the matched-parameter accuracy grid and the FullGrad saliency scores of
the mini tier, and example saliency maps (the runs' PNG artifacts).

Every chart reads the mini-tier runs of the claims named here (their run keys come from the
plan, so a chart shows exactly what the verdicts were computed from).
"""

from __future__ import annotations

import math
from typing import Any

import altair as alt
import pandas as pd

from dashboard.charts import chart
from dashboard.plots import padded_domain

TIER = "mini"
GRID_CLAIMS = ("s3net/c100/k24_d40-vs-densenet-k12", "s3net/c100/k24_d40-vs-resnet56",
               "s3net/c100/k12_d40-vs-densenet")
ARM_LABELS = {"s3net_k16_d22": "S3Net k=16 (0.154M)", "densenet22_k9": "DenseNet k=9 (0.161M)",
              "cifar_resnet20": "ResNet-20 ×0.75 (0.154M)", "s3net_k9_d22": "S3Net k=9 (0.058M)"}
ARM_ORDER = list(ARM_LABELS.values())
SHORT = {"s3net_k16_d22": "S3Net k=16", "densenet22_k9": "DenseNet k=9",
         "cifar_resnet20": "ResNet-20×0.75", "s3net_k9_d22": "S3Net k=9"}
#: the mini comparison claims whose verdicts the paired-differences chart shows, by metric
DELTA_CLAIMS = ("s3net/c100/*-vs-*", "s3net/saliency/*")
METRIC_TITLES = {"top1_err": "test error (pp)", "loc_energy": "energy share in object mask",
                 "deletion_auc": "deletion AUC", "insertion_auc": "insertion AUC"}
VERDICT_SCALE = alt.Scale(domain=["reproduced", "inconclusive", "not reproduced"],
                          range=["#2ca02c", "#7f7f7f", "#d62728"])
PAPER_FIG3 = "s3net/figure-3-ntk-expressibility/ntk-regression-task-from-repo"


def _runs(engine, claims: list, ids: tuple[str, ...]) -> list[Any]:
    """The stored ok runs of the given claims at the mini tier (shared runs once), with the
    extra seeds ``run --until-decided`` gave them (suite/sequential.py)."""
    from suite import db
    from suite.report import extended_plan

    keys = [r.run_key for c in claims if c.id in ids and c.form(TIER) is not None
            for r in extended_plan(c, TIER).runs]
    return [r for r in db.runs_by_key(engine, keys).values() if r.status == "ok"]


def _t95(n: int) -> float:
    from suite.verdict import t975

    return t975(n - 1) if n > 1 else math.nan


def _mean_ci(df: pd.DataFrame, by: list[str], value: str) -> pd.DataFrame:
    g = df.groupby(by)[value].agg(["mean", "std", "count"]).reset_index()
    g["half"] = [_t95(int(n)) * s / math.sqrt(n) if n > 1 else 0.0
                 for s, n in zip(g["std"], g["count"], strict=True)]
    g["lo"], g["hi"] = g["mean"] - g["half"], g["mean"] + g["half"]
    return g


@chart("s3net/ntk-mse-by-depth", title="S3Net Fig. 3: NTK regression test MSE vs depth K")
def ntk_mse(engine, claims):
    from registry.published import by_ref

    runs = _runs(engine, claims, ("s3net/ntk/residual-k4",))
    if not runs:
        return None
    r = runs[0]
    m = r.metric_dict()
    rows = []
    for k in range(4, 11):
        for topo, name, label in (("residual", "residual", "residual"),
                                  ("sparse", "proposed-sparse-shortcut", "sparse shortcut")):
            if f"{topo}_k{k}" in m:
                rows.append({"K": k, "MSE / n_test": m[f"{topo}_k{k}"], "topology": label,
                             "source": "measured (this suite)"})
            ref = by_ref().get(f"{PAPER_FIG3}/{name}-k{k}/test-mse")
            if ref:
                rows.append({"K": k, "MSE / n_test": ref["value"], "topology": label,
                             "source": "paper (Fig. 3)"})
    df = pd.DataFrame(rows)
    return alt.Chart(df, title="NTK regression on Boston housing (notebook split)").mark_line(
        point=True).encode(
        x=alt.X("K:O", title="depth K", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("MSE / n_test:Q", scale=alt.Scale(zero=False)),
        color=alt.Color("topology:N"),
        strokeDash=alt.StrokeDash("source:N", legend=alt.Legend(symbolType="stroke",
                                                                 symbolStrokeWidth=2)),
        tooltip=["K", "topology", "source", alt.Tooltip("MSE / n_test:Q", format=".4f")],
    ).properties(width=420, height=260)


def _grid_frame(engine, claims) -> pd.DataFrame | None:
    runs = _runs(engine, claims, GRID_CLAIMS)
    if not runs:
        return None
    rows = []
    for r in runs:
        m = r.metric_dict()
        rows.append({"arm": ARM_LABELS.get(r.model, r.model), "seed": r.seed,
                     **{k: m.get(k) for k in ("top1", "loc_energy", "loc_gain",
                                              "deletion_auc", "insertion_auc", "params_m")}})
    return pd.DataFrame(rows)


def _points_and_ci(df: pd.DataFrame, value: str, title: str) -> alt.LayerChart:
    ci = _mean_ci(df, ["arm"], value)
    x = alt.X("arm:N", sort=ARM_ORDER, title=None, axis=alt.Axis(labelAngle=-20))
    pts = alt.Chart(df).mark_circle(size=40, opacity=0.6).encode(
        x=x, y=alt.Y(f"{value}:Q", title=title, scale=alt.Scale(zero=False)),
        tooltip=["arm", "seed", alt.Tooltip(f"{value}:Q", format=".4f")])
    bars = alt.Chart(ci).mark_errorbar(color="black").encode(
        x=x, y=alt.Y("lo:Q", title=title), y2="hi:Q")
    mean = alt.Chart(ci).mark_tick(color="black", thickness=2, size=18).encode(
        x=x, y="mean:Q")
    return (pts + bars + mean).properties(width=260, height=220)


@chart("s3net/matched-params-accuracy",
       title="S3Net vs DenseNet vs ResNet at matched parameters (mini: cluttered Fashion-MNIST)")
def matched_accuracy(engine, claims):
    df = _grid_frame(engine, claims)
    if df is None:
        return None
    return _points_and_ci(df, "top1", "test top-1 (%)").properties(
        title="Test accuracy per seed; mean and 95% t-interval")


@chart("s3net/saliency-scores",
       title="FullGrad saliency scores by model (mini: cluttered Fashion-MNIST)")
def saliency_scores(engine, claims):
    df = _grid_frame(engine, claims)
    if df is None:
        return None
    return alt.hconcat(
        _points_and_ci(df, "loc_energy", "energy share in object mask ↑"),
        _points_and_ci(df, "deletion_auc", "deletion AUC ↓"),
        _points_and_ci(df, "insertion_auc", "insertion AUC ↑"),
    ).properties(title="FullGrad scores per seed; mean and 95% t-interval")


def paired_differences_table(engine, claims: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The mini comparison claims as judged: one row per claim (mean paired difference
    treatment − baseline, 95% CI, verdict, the accepted region's borders) and one row per
    seed's paired difference."""
    import fnmatch

    from suite.report import claim_rows

    chosen = [c for c in claims if any(fnmatch.fnmatchcase(c.id, g) for g in DELTA_CLAIMS)]
    summary, seeds = [], []
    for row in claim_rows(engine, chosen, TIER) if chosen else []:
        s, form = row.verdict.summary, row.claim.form(TIER)
        if s is None or not s.n or form is None or form.expect is None:
            continue
        e = form.expect
        models = {r.arm: r.model for r in row.runs}
        label = (f"{SHORT.get(models.get('treatment'), models.get('treatment'))} − "
                 f"{SHORT.get(models.get('baseline'), models.get('baseline'))}")
        borders = ([-e.tolerance, e.tolerance] if e.direction == "equal"
                   else [e.min_diff if e.direction == "higher" else -e.min_diff])
        summary.append({"claim": row.claim.id, "metric": e.metric, "comparison": label,
                        "verdict": row.verdict.status, "mean": s.mean, "n": s.n,
                        "lo": s.lo if math.isfinite(s.lo) else s.mean,
                        "hi": s.hi if math.isfinite(s.hi) else s.mean,
                        "borders": [b + 0.0 for b in borders]})
        seeds += [{"metric": e.metric, "comparison": label, "diff": v}
                  for v in row.verdict.values]
    return pd.DataFrame(summary), pd.DataFrame(seeds)


@chart("s3net/paired-differences",
       title="S3Net minus DenseNet / ResNet, paired by seed: the mini claims' verdicts")
def paired_differences(engine, claims):
    df, seeds = paired_differences_table(engine, claims)
    if df.empty:
        return None
    panels = []
    for metric in [m for m in METRIC_TITLES if m in set(df["metric"])]:
        d, sd = df[df["metric"] == metric], seeds[seeds["metric"] == metric]
        y = alt.Y("comparison:N", title=None, sort=list(d["comparison"]))
        borders = pd.DataFrame({"x": sorted({b for bs in d["borders"] for b in bs})})
        # one padded domain for every layer, so a seed's dot at the extreme is not cut in half
        xscale = alt.Scale(domain=list(padded_domain(
            [*sd["diff"], *d["lo"], *d["hi"], *borders["x"]])), nice=False)
        rule = alt.Chart(borders).mark_rule(color="gray", strokeDash=[4, 3]).encode(
            x=alt.X("x:Q", scale=xscale))
        pts = alt.Chart(sd).mark_circle(size=30, opacity=0.45, color="black").encode(
            x=alt.X("diff:Q", title=f"Δ {METRIC_TITLES[metric]}", scale=xscale), y=y,
            tooltip=[alt.Tooltip("diff:Q", format="+.4f")])
        ci = alt.Chart(d).mark_rule(strokeWidth=3).encode(
            x="lo:Q", x2="hi:Q", y=y,
            color=alt.Color("verdict:N", scale=VERDICT_SCALE, legend=alt.Legend(title="verdict")))
        mean = alt.Chart(d).mark_tick(thickness=3, size=16).encode(
            x="mean:Q", y=y, color=alt.Color("verdict:N", scale=VERDICT_SCALE),
            tooltip=["claim", "verdict", "n", alt.Tooltip("mean:Q", format="+.4f"),
                     alt.Tooltip("lo:Q", format="+.4f"), alt.Tooltip("hi:Q", format="+.4f")])
        panels.append((rule + pts + ci + mean).properties(width=380, height=26 * len(d)))
    return alt.vconcat(*panels).properties(
        title="Paired difference per seed (dots), mean and the verdict's t-interval (95%; 97.5% "
              "at sequential look 1) coloured by verdict; dashed: border of the accepted region")


@chart("s3net/saliency-examples", title="FullGrad maps of the three matched models (seed 0)")
def saliency_examples(engine, claims):
    import base64

    runs = {r.model: r for r in _runs(engine, claims, GRID_CLAIMS) if r.seed == 0}
    panels = []
    for model in ("s3net_k16_d22", "densenet22_k9", "cifar_resnet20"):
        r = runs.get(model)
        art = {a.name: a.value() for a in r.artifacts} if r else {}
        png = art.get("saliency_png")
        if not png:
            continue
        url = "data:image/png;base64," + png["data_b64"]
        raw = base64.b64decode(png["data_b64"])
        w, h = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
        scale = 900 / w
        df = pd.DataFrame([{"x": 0, "y": 0, "url": url}])
        panels.append(alt.Chart(df, title=ARM_LABELS[model]).mark_image(
            width=900, height=h * scale).encode(
            x=alt.X("x:Q", axis=None), y=alt.Y("y:Q", axis=None), url="url:N").properties(
            width=900, height=h * scale))
    if not panels:
        return None
    return alt.vconcat(*panels).configure_view(strokeWidth=0)
