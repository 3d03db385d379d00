"""Runs: every run in the database, failed ones included, searchable."""

import streamlit as st

from dashboard import markup, plots, ui
from dashboard import queries as q
from suite.specs import RUN_STATUSES, TIERS

ctx = ui.context()
st.title("Runs")
runs = ui.runs_frame(ctx)
c1, c2, c3, c4 = st.columns([2, 1.2, 1, 1.2])
search = c1.text_input("Search", placeholder="run key, claim, model, device, message…")
statuses = c2.multiselect("Status", [s for s in RUN_STATUSES if s in set(runs["status"])]
                          + sorted(set(runs["status"]) - set(RUN_STATUSES)),
                          placeholder="any status")
tiers = c3.multiselect("Tier", [t for t in TIERS if t in set(runs["tier"])],
                       placeholder="any tier")
papers = c4.multiselect("Paper", sorted(runs["paper"].unique()), placeholder="any paper")
f = q.filter_runs(runs, search, statuses, tiers, papers)
counts = f["status"].value_counts()
st.caption(f"{len(f):,} of {len(runs):,} runs · " + " · ".join(
    f"{s}: {n:,}" for s, n in counts.items()))
view = f.assign(claim_page=[markup.claim_href(c, t)
                            for c, t in zip(f["claim_id"], f["tier"], strict=True)],
                git=f["git_sha"].fillna("").str[:10])
event = st.dataframe(
    view[["status", "claim_id", "tier", "arm", "seed", "message", "task", "model", "dataset",
          "wall_s", "device_name", "git", "started_at", "attempts", "run_key", "mlflow_run_id",
          "claim_page"]],
    hide_index=True, width="stretch", height=560, on_select="rerun",
    selection_mode="single-row", key="runs_table", column_config={
        "message": st.column_config.TextColumn("message", width="large"),
        "wall_s": st.column_config.NumberColumn("wall s", format="%.1f"),
        "claim_page": st.column_config.LinkColumn("claim page", display_text="open"),
    })
st.caption("Select a row for the run's metrics, curves, provenance and config.")
picked = event.selection.rows if event is not None else []
if picked:
    run = view.iloc[picked[0]]
    st.subheader(f"{run['claim_id']} · {run['tier']} · {run['arm']} · seed {run['seed']}")
    st.markdown(f"`{run['run_key']}` · **{run['status']}** "
                f"{markup.link(run['claim_id'], run['tier'], 'open the claim page')}",
                unsafe_allow_html=True)
    if run["message"]:
        st.code(run["message"], language=None, wrap_lines=True)
    left, right = st.columns([1, 1.4])
    mets = ui.cached(q.run_metrics, ctx, (int(run["id"]),))
    with left:
        st.dataframe(mets[["name", "value"]], hide_index=True, width="stretch")
    with right:
        curves = ui.cached(q.series_frame, ctx, (int(run["id"]),))
        if len(curves):
            ui.show_chart(plots.series_chart(curves.assign(arm=run["arm"], seed=run["seed"]),
                                             columns=2))
    detail = ui.cached(q.run_detail, ctx, int(run["id"]))
    st.json(detail, expanded=1)
