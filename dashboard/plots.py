"""The dashboard's own Altair charts, built from the tidy frames of :mod:`dashboard.queries`.

Pure (no Streamlit): each builder takes frames and returns an ``alt.Chart`` (or a layered /
concatenated chart), so tests check them through ``chart.to_dict()``. Paper-specific
analysis charts live in ``dashboard/charts/<paper>.py`` instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import altair as alt
import pandas as pd

from suite.specs import VERDICTS

#: One colour per verdict, shared by badges and charts (colour-blind-safe-ish, GitHub-like).
VERDICT_COLORS = {
    "reproduced": "#1a7f37", "not reproduced": "#cf222e", "inconclusive": "#bf8700",
    "pending": "#6e7781", "error": "#8250df", "skipped": "#afb8c1",
    "n/a": "#d0d7de",  # no form at this tier (suite.specs.VERDICTS)
}
ARM_COLORS = {"treatment": "#0969da", "baseline": "#8c959f",
              "Δ (treatment − baseline)": "#24292f"}
REGION_COLOR = "#2da44e"
PUBLISHED_COLOR = "#cf222e"


def verdict_scale() -> alt.Scale:
    return alt.Scale(domain=list(VERDICTS), range=[VERDICT_COLORS[v] for v in VERDICTS])


def verdict_bar(counts: pd.DataFrame, x_title: str = "claims × tiers") -> alt.Chart:
    """Claims per paper, stacked by verdict (``counts``: paper, verdict, claims)."""
    order = {v: i for i, v in enumerate(VERDICTS)}
    d = counts.assign(order=counts["verdict"].map(order))
    return alt.Chart(d).mark_bar().encode(
        y=alt.Y("paper:N", title=None, sort="ascending"),
        x=alt.X("claims:Q", title=x_title, axis=alt.Axis(tickMinStep=1)),
        color=alt.Color("verdict:N", scale=verdict_scale(),  # 7 verdicts: 2 legend rows
                        legend=alt.Legend(orient="bottom", title=None, columns=4)),
        order=alt.Order("order:Q"),
        tooltip=["paper", "verdict", "claims"],
    ).properties(height=alt.Step(26))


def padded_domain(values: Sequence[float], pad: float = 0.08) -> tuple[float, float]:
    """(low, high) of the finite ``values``, widened by ``pad`` of their span on each side, so
    marks at the extremes are drawn whole."""
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return 0.0, 1.0
    lo, hi = min(vals), max(vals)
    span = hi - lo or max(abs(hi) * 0.05, 1e-3)
    return lo - pad * span, hi + pad * span


def forest(points: pd.DataFrame, intervals: pd.DataFrame, *, x_title: str,
           region: tuple[float, float] | None = None,
           refs: Sequence[tuple[float, str]] = (), title: str = "") -> alt.LayerChart:
    """Seeds as points, the mean as a tick and its 95% interval as a bar, one row per arm;
    the accepted region as a green band and reference values (the published number) as red
    dashed rules with their labels.

    ``points``: arm, seed, value; ``intervals``: arm, mean, lo, hi, n.
    """
    arms = [a for a in ARM_COLORS if a in set(points["arm"]) | set(intervals["arm"])]
    arms += sorted((set(points["arm"]) | set(intervals["arm"])) - set(arms))
    finite_region = [v for v in (region or ()) if math.isfinite(v)]
    lo, hi = padded_domain(list(points["value"]) + list(intervals["lo"]) + list(intervals["hi"])
                     + finite_region + [v for v, _ in refs])
    x = alt.X("value:Q", title=x_title, axis=alt.Axis(tickCount=8),
              scale=alt.Scale(domain=[lo, hi], nice=False, zero=False))
    y = alt.Y("arm:N", title=None, sort=arms, axis=alt.Axis(labelLimit=220))
    color = alt.Color("arm:N", scale=alt.Scale(domain=arms, range=[
        ARM_COLORS.get(a, "#57606a") for a in arms]), legend=None)
    layers = []
    if region is not None:
        r_lo = max(region[0], lo) if math.isfinite(region[0]) else lo
        r_hi = min(region[1], hi) if math.isfinite(region[1]) else hi
        band = pd.DataFrame([{"value": r_lo, "value2": r_hi, "label": "accepted region",
                              "from": region[0], "to": region[1]}])
        layers.append(alt.Chart(band).mark_rect(color=REGION_COLOR, opacity=0.14).encode(
            x=x, x2="value2:Q", tooltip=[alt.Tooltip("label:N", title=""), "from:Q", "to:Q"]))
        layers.append(alt.Chart(band).mark_text(
            align="left", baseline="top", dx=4, dy=4, color=REGION_COLOR, fontSize=11,
        ).encode(x=x, y=alt.value(0), text="label:N"))
    if refs:
        rd = pd.DataFrame([{"value": v, "label": lab} for v, lab in refs])
        layers.append(alt.Chart(rd).mark_rule(color=PUBLISHED_COLOR, strokeDash=[6, 4],
                                              strokeWidth=2).encode(x=x, tooltip=["label:N",
                                                                                  "value:Q"]))
        layers.append(alt.Chart(rd).mark_text(
            align="left", baseline="bottom", dx=4, color=PUBLISHED_COLOR, fontSize=11,
            fontWeight="bold").encode(x=x, y=alt.value(-2), text="label:N"))
    if len(intervals):
        iv = intervals.rename(columns={"lo": "value", "hi": "value2"})
        layers.append(alt.Chart(iv).mark_rule(strokeWidth=4, opacity=0.45).encode(
            x=x, x2="value2:Q", y=y, color=color,
            tooltip=["arm:N", alt.Tooltip("mean:Q", format=".4g"),
                     alt.Tooltip("value:Q", title="95% CI low", format=".4g"),
                     alt.Tooltip("value2:Q", title="95% CI high", format=".4g"), "n:Q"]))
        layers.append(alt.Chart(intervals.rename(columns={"mean": "value"})).mark_tick(
            thickness=3, size=30).encode(x=x, y=y, color=color))
    if len(points):
        pts = points.assign(label="s" + points["seed"].astype(str))
        tip = ["arm:N", "seed:N", alt.Tooltip("value:Q", format=".5g")]
        layers.append(alt.Chart(pts).mark_circle(size=110, opacity=0.95, stroke="white",
                                                 strokeWidth=1).encode(
            x=x, y=y, color=color, tooltip=tip))
        layers.append(alt.Chart(pts).mark_text(dy=-13, fontSize=10, color="#57606a").encode(
            x=x, y=y, text="label:N", tooltip=tip))
    if not layers:
        layers.append(alt.Chart(pd.DataFrame({"value": []})).mark_point().encode(x=x))
    chart = alt.layer(*layers).properties(height=alt.Step(54) if len(arms) else 80)
    if title:
        chart = chart.properties(title=title)
    return chart


def series_chart(df: pd.DataFrame, columns: int = 3) -> alt.FacetChart:
    """Per-epoch curves (name, step, value, arm, seed), one panel per series name."""
    arms = [a for a in ARM_COLORS if a in set(df["arm"])] + sorted(
        set(df["arm"]) - set(ARM_COLORS))
    base = alt.Chart(df).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=alt.X("step:Q", title="epoch", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
        color=alt.Color("arm:N", scale=alt.Scale(domain=arms, range=[
            ARM_COLORS.get(a, "#57606a") for a in arms]), legend=alt.Legend(orient="top")),
        strokeDash=alt.StrokeDash("seed:N", legend=None),
        detail="seed:N",
        tooltip=["name:N", "arm:N", "seed:N", "step:Q", alt.Tooltip("value:Q", format=".4g")],
    ).properties(width=260, height=170)
    return base.facet(facet=alt.Facet("name:N", title=None), columns=columns).resolve_scale(
        y="independent")


def bar(df: pd.DataFrame, *, y: str, x: str, color: str | None = None, x_title: str = "",
        tooltip: Sequence[str] = (), sort: str = "-x", color_scale=None) -> alt.Chart:
    """A horizontal bar chart (cost per claim or per paper)."""
    enc = {"y": alt.Y(f"{y}:N", title=None, sort=sort, axis=alt.Axis(labelLimit=320)),
           "x": alt.X(f"{x}:Q", title=x_title or x),
           "tooltip": list(tooltip) or [y, x]}
    if color:
        enc["color"] = alt.Color(f"{color}:N", scale=color_scale or alt.Undefined,
                                 legend=alt.Legend(orient="bottom"))
    return alt.Chart(df).mark_bar().encode(**enc).properties(height=alt.Step(20))


def kernel_chart(summary: pd.DataFrame, stat: str, reference: float | None = 1.0,
                 log: bool = True) -> alt.FacetChart:
    """One panel per shape: each pool family's mean over runs (dot) with its min-max range,
    coloured by device, on a log axis for ratios, with a rule at the reference (1 = as costly
    as avg pooling)."""
    order = (summary.groupby("family")["mean"].mean().sort_values().index.tolist()
             if len(summary) else [])
    y = alt.Y("family:N", title=None, sort=order, axis=alt.Axis(labelOverlap=False))
    x = alt.X("mean:Q", title=stat, scale=alt.Scale(type="log" if log else "linear",
                                                    nice=False, padding=12))
    if summary["device"].nunique() > 1:
        color = alt.Color("device:N", legend=alt.Legend(orient="bottom"))
    else:  # one device: SoftPool (the papers' subject) stands out
        summary = summary.assign(pool_kind=summary["family"].map(
            lambda f: "softpool" if f == "softpool" else "other"))
        color = alt.Color("pool_kind:N", legend=None, scale=alt.Scale(
            domain=["softpool", "other"], range=[PUBLISHED_COLOR, ARM_COLORS["treatment"]]))
    tip = ["device", "shape", "pool", alt.Tooltip("mean:Q", format=".3g"),
           alt.Tooltip("min:Q", format=".3g"), alt.Tooltip("max:Q", format=".3g"), "n"]
    rng = alt.Chart().mark_rule(strokeWidth=2).encode(y=y, x="min:Q", x2="max:Q",
                                                      color=color, tooltip=tip)
    dots = alt.Chart().mark_circle(size=70, opacity=1).encode(y=y, x=x, color=color,
                                                              tooltip=tip)
    layers = [rng, dots]
    if reference is not None:
        layers.insert(0, alt.Chart().mark_rule(color=PUBLISHED_COLOR, strokeDash=[4, 3])
                      .encode(x=alt.datum(reference)))
    return alt.layer(*layers, data=summary).properties(width=250, height=alt.Step(22)).facet(
        column=alt.Column("shape:N", title=None))


def published_scatter(cells: pd.DataFrame) -> alt.HConcatChart:
    """Ours against published for every mapped cell, one panel per metric, with y = x."""
    d = cells.dropna(subset=["published", "ours"]).copy()
    d["label"] = d["model"] + " · " + d["dataset"]
    panels = []
    for metric, part in d.groupby("metric", sort=False):
        lo, hi = padded_domain(list(part["published"]) + list(part["ours"]))
        scale = alt.Scale(domain=[lo, hi], nice=False, zero=False)
        diag = alt.Chart(pd.DataFrame({"published": [lo, hi], "ours": [lo, hi]})).mark_line(
            color="#8c959f", strokeDash=[4, 4], clip=True).encode(
            x=alt.X("published:Q", scale=scale), y=alt.Y("ours:Q", scale=scale))
        ours = ", ".join(part["our_metric"].unique())
        pts = alt.Chart(part).mark_circle(size=90, opacity=0.9).encode(
            x=alt.X("published:Q", scale=scale, title=f"published {metric}"),
            y=alt.Y("ours:Q", scale=scale, title=f"ours ({ours})"),
            color=alt.Color("verdict:N", scale=verdict_scale(),
                            legend=alt.Legend(orient="bottom")),
            tooltip=["label", "claim", "tier", "metric", "our_metric", "published",
                     alt.Tooltip("ours:Q", format=".4g"), "n", "verdict"])
        panels.append(alt.layer(diag, pts).properties(width=240, height=220, title=metric))
    return alt.hconcat(*panels)


def trials_chart(trials: pd.DataFrame, direction: str) -> alt.LayerChart:
    """Objective of each finished trial in trial order (the order they started), with the
    best-so-far line."""
    d = trials.dropna(subset=["value"]).sort_values("number").copy()
    best = d["value"].cummax() if direction == "maximize" else d["value"].cummin()
    d["best so far"] = best
    x = alt.X("number:Q", title="trial (in the order started)", axis=alt.Axis(tickMinStep=1))
    pts = alt.Chart(d).mark_circle(size=50, opacity=0.7).encode(
        x=x, y=alt.Y("value:Q", title="objective", scale=alt.Scale(zero=False)),
        color=alt.Color("state:N", legend=alt.Legend(orient="bottom")),
        tooltip=["number", "state", alt.Tooltip("value:Q", format=".4g"),
                 alt.Tooltip("datetime_complete:T", format="%Y-%m-%d %H:%M:%S"), "params"])
    line = alt.Chart(d).mark_line(interpolate="step-after", color="#24292f").encode(
        x=x, y="best so far:Q")
    return alt.layer(pts, line).properties(height=240)


def importance_chart(imp: pd.DataFrame) -> alt.Chart:
    return alt.Chart(imp).mark_bar().encode(
        y=alt.Y("param:N", sort="-x", title=None), x=alt.X("importance:Q"),
        tooltip=["param", alt.Tooltip("importance:Q", format=".3f")],
    ).properties(height=alt.Step(22))
