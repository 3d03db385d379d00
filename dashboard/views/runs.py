"""Runs: every run in the database, failed ones included, searchable."""

import streamlit as st

from dashboard import markup, ui
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
st.dataframe(view[["status", "claim_id", "tier", "arm", "seed", "message", "task", "model",
                   "dataset", "wall_s", "device_name", "git", "started_at", "attempts",
                   "run_key", "mlflow_run_id", "claim_page"]],
             hide_index=True, width="stretch", height=620, column_config={
                 "message": st.column_config.TextColumn("message", width="large"),
                 "wall_s": st.column_config.NumberColumn("wall s", format="%.1f"),
                 "claim_page": st.column_config.LinkColumn("claim page", display_text="open"),
             })
