"""Claim: seeds and interval against the published value and the accepted region, the baseline
arm of a delta claim, training curves, recipe, provenance and cost of every run."""

import pandas as pd
import streamlit as st

from dashboard import markup, plots, ui
from dashboard import queries as q
from suite.specs import TIERS, artifact_value

ctx = ui.context()
claims = ui.claim_by_id(ctx)
if not claims:
    st.info("No claims are defined (tasks.toml is missing and the database stores none).")
    st.stop()
rows = ui.verdict_rows(ctx, TIERS)
ids = sorted(claims)
want = st.query_params.get("claim")
if want not in claims:  # the first claim (overview order) with an ok run, mini tier first
    ran = sorted((r for r in rows if any(x.status == "ok" for x in r.runs)),
                 key=lambda r: (r.tier != "mini", r.claim.paper, r.claim.id))
    want = ran[0].claim.id if ran else ids[0]
top = st.columns([3, 2, 0.8], vertical_alignment="bottom")
claim_id = top[0].selectbox("Claim", ids, index=ids.index(want))
claim = claims[claim_id]
tiers = [t for t in TIERS if claim.form(t) is not None or t in claim.skip]
if not tiers:
    st.warning(f"{claim_id} has no form at any tier.")
    st.stop()
n_ok = {t: sum(x.status == "ok" for x in q.find_row(rows, claim_id, t).runs) for t in tiers}
tier_q = st.query_params.get("tier")
default_tier = tier_q if tier_q in tiers else max(tiers, key=lambda t: (n_ok[t], t == "mini"))
tier = top[1].radio("Tier", tiers, index=tiers.index(default_tier), horizontal=True,
                    format_func=lambda t: f"{t} ({n_ok[t]} ok)")
top[2].page_link("views/overview.py", label="Overview", icon=":material/arrow_back:")
st.query_params.update({"claim": claim_id, "tier": tier})

row = q.find_row(rows, claim_id, tier)
form = claim.form(tier)
e = form.expect if form else None
st.title(claim.title or claim_id)
st.caption(f"`{claim_id}` · paper **{claim.paper}** · tier **{tier}**"
           + (f" · tags: {', '.join(claim.tags)}" if claim.tags else ""))
st.markdown(f"**Source:** {claim.source}")
v = row.verdict
st.markdown(f"{markup.badge(v.status)} &nbsp; {v.message}", unsafe_allow_html=True)
if claim.status_note:
    st.info(claim.status_note)
if e is not None and e.note:
    st.caption(f"Expectation: {e.note}")

runs = ui.cached(q.claim_runs, ctx, claim, tier)
current = runs[runs["current"]]
delta = e is not None and e.kind == "delta"
devices = ", ".join(sorted(set(current["device_name"].dropna()))) or "–"
st.markdown(markup.facts([
    ("ours" + (" (Δ, paired)" if delta else ""), q.interval_text(
        v.summary, "" if delta else (e.unit if e else ""), delta) if v.summary else "–"),
    ("published", q.published_text(claim)),
    ("expected", q.expected_text(e) if e else "–"),
    ("seeds ok / planned", f"{v.summary.n if v.summary else 0} / "
                           f"{len(form.seeds) if form else 0}"),
    ("device-hours", f"{current['device_hours'].sum():.3g} on {devices}"),
]), unsafe_allow_html=True)

# --------------------------------------------------------------------------- seeds plot
st.subheader("Seeds, interval and the accepted region")
points = q.seed_points(row)
intervals = q.interval_frame(row)
if e is None:
    st.info("No expectation at this tier: nothing is judged.")
elif points.empty:
    st.info(f"No ok runs to plot ({v.status}: {v.message}).")
else:
    pub = claim.published.get("value") if isinstance(claim.published.get("value"),
                                                     (int, float)) else None
    unit = f" {e.unit}" if e.unit else ""
    if delta:
        arms = points[points["arm"] != q.DIFF_ARM]
        ui.show_chart(plots.forest(arms, intervals[intervals["arm"] != q.DIFF_ARM],
                                   x_title=e.metric, title="each arm (baseline: "
                                   + ", ".join(f"{k}={v}" for k, v in e.baseline.items())
                                   + ")"))
        refs = [(float(pub), f"published Δ {pub:g}")] if pub is not None else []
        ui.show_chart(plots.forest(points[points["arm"] == q.DIFF_ARM],
                                   intervals[intervals["arm"] == q.DIFF_ARM],
                                   x_title=f"Δ {e.metric} (treatment − baseline, paired)",
                                   region=q.accepted_region(e), refs=refs,
                                   title="paired difference"))
    else:
        if pub is not None:
            refs = [(float(pub), f"published {pub:g}{unit}")]
        else:  # no published number: the expectation's own target
            refs = [(float(e.value), f"target {e.value:g}{unit}")] if e.value is not None else []
        ui.show_chart(plots.forest(points, intervals, x_title=e.metric + unit,
                                   region=q.accepted_region(e), refs=refs))
    st.caption("Dots: seeds. Tick and bar: mean and its 95% t-interval (a single run has no "
               "interval). Green band: the accepted region; red dashed: the published value "
               "(or the claim's target where nothing is published).")

# --------------------------------------------------------------------------- curves
series = ui.cached(q.series_frame, ctx, tuple(current["id"]))
if len(series):
    st.subheader("Training curves")
    meta = current[["id", "arm", "seed"]].rename(columns={"id": "run_id"})
    series = series.merge(meta, on="run_id")
    names = sorted(series["name"].unique())
    pick = st.multiselect("Series", names, default=names)
    ui.show_chart(plots.series_chart(series[series["name"].isin(pick)]))

# --------------------------------------------------------------------------- recipe
left, right = st.columns([1.4, 1])
with left:
    st.subheader("Recipe")
    st.dataframe(q.recipe_table(claim, tier), hide_index=True, width="stretch")
    with st.expander("resolved recipe and expectation (JSON)"):
        st.json(q.recipe(claim, tier), expanded=2)
with right:
    st.subheader("Published")
    if claim.published:
        st.json(claim.published, expanded=True)
    else:
        st.caption("No published number is recorded for this claim (a suite target or an "
                   "effect the paper states in words).")
    pubrows = q.published_rows_of(claim)
    if pubrows:
        st.dataframe(pd.DataFrame(pubrows)[["ref", "table", "dataset", "model", "metric",
                                            "value", "unit", "verified"]],
                     hide_index=True, width="stretch")
    hist = ui.cached(q.claim_history, ctx, claim_id)
    if len(hist) > 1:
        st.caption(f"{len(hist)} definitions of this claim are stored (a changed expectation or "
                   "recipe adds one):")
        st.dataframe(hist, hide_index=True)

# --------------------------------------------------------------------------- provenance
st.subheader("Runs and provenance")
mlflow = ctx.settings.mlflow_ui
prov = runs.assign(
    mlflow=[f"{mlflow}/#/runs/{m}" if isinstance(m, str) and m else None
            for m in runs["mlflow_run_id"]],
    git=[f"{(s or '')[:10]}{' (dirty)' if d else ''}" for s, d in zip(
        runs["git_sha"], runs["git_dirty"], strict=True)],
    metric=[None] * len(runs))
if e is not None:
    mets = ui.cached(q.run_metrics, ctx, tuple(runs["id"]))
    own = mets[mets["name"] == e.metric].set_index("run_id")["value"]
    prov["metric"] = prov["id"].map(own)
cols = ["arm", "seed", "status", "metric", "wall_s", "device_hours", "device_name", "git",
        "python_version", "torch_version", "started_at", "attempts", "mlflow", "run_key",
        "mlflow_run_id", "message"]
config = {
    "metric": st.column_config.NumberColumn(e.metric if e else "metric", format="%.4g"),
    "wall_s": st.column_config.NumberColumn("wall s", format="%.1f"),
    "device_hours": st.column_config.NumberColumn("device-h", format="%.4f"),
    "device_name": st.column_config.TextColumn("device"),
    "python_version": st.column_config.TextColumn("python"),
    "torch_version": st.column_config.TextColumn("torch"),
    "mlflow": st.column_config.LinkColumn("MLflow", display_text="open run"),
    "mlflow_run_id": st.column_config.TextColumn("MLflow run id"),
}
now = prov[prov["current"]]
st.dataframe(now[cols], hide_index=True, width="stretch", column_config=config,
             height=min(38 + 35 * max(len(now), 1), 600))
st.caption(f"MLflow links open {mlflow} (start it with `mlflow ui --backend-store-uri "
           "sqlite:///mlflow.db`, or pass `--mlflow-ui URL`).")
earlier = prov[~prov["current"] & ~prov["trial"]]
if len(earlier):
    with st.expander(f"{len(earlier)} earlier run(s) under this claim id with a recipe that has "
                     "since changed (not judged)"):
        st.dataframe(earlier[cols], hide_index=True, width="stretch", column_config=config)
trials = prov[prov["trial"]]
if len(trials):
    with st.expander(f"{len(trials)} other run(s) recorded under this claim (arm "
                     f"{', '.join(sorted(set(trials['arm'])))}: sweep trials; see Sweeps)"):
        st.dataframe(trials[cols], hide_index=True, width="stretch", column_config=config)
with st.expander("Full provenance and resolved config of each run"):
    for r in runs.itertuples():
        st.markdown(f"**{r.arm} · seed {r.seed}** · `{r.run_key}` · {r.status}")
        st.json({"provenance": r.provenance, "config": r.config}, expanded=False)

# --------------------------------------------------------------------------- artifacts
arts = ui.cached(q.artifact_index, ctx, tuple(runs["id"]))
if len(arts):
    st.subheader("Artifacts")
    info = runs.set_index("id")
    images = arts[arts["media_type"].str.startswith("image/")]
    if len(images):
        cols_ = st.columns(min(4, len(images)))
        for i, a in enumerate(images.itertuples()):
            data = q.artifact(ctx.engine, a.run_id, a.name)
            r = info.loc[a.run_id]
            cols_[i % len(cols_)].image(data[1], caption=f"{a.name} · {r['arm']} · seed "
                                                         f"{r['seed']}")
    for a in arts[~arts["media_type"].str.startswith("image/")].itertuples():
        r = info.loc[a.run_id]
        with st.expander(f"{a.name} · {r['arm']} · seed {r['seed']} ({a.bytes:,} bytes)"):
            media, data = q.artifact(ctx.engine, a.run_id, a.name)
            value = artifact_value(media, data)
            if isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
                st.dataframe(pd.DataFrame(value), hide_index=True)
            else:
                st.json(value, expanded=False)
