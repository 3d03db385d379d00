"""Kernels: pooling benchmark ratios (``kernel_bench`` runs) by shape and device."""

import pandas as pd
import streamlit as st

from dashboard import plots, ui
from dashboard import queries as q
from suite.specs import artifact_value

ctx = ui.context()
st.title("Pooling kernels")
df = ui.cached(q.kernel_frame, ctx)
if df.empty:
    st.info("No kernel benchmark has run yet. Run it with `python3 -m nox -s bench` or "
            "`python -m suite run --tag bench --tier mini`.")
    st.stop()

stats = sorted(df["stat"].unique())
default = "fwdbwd_ratio_vs_avg" if "fwdbwd_ratio_vs_avg" in stats else stats[0]
c1, c2, c3 = st.columns([1.2, 1.5, 1.5])
stat = c1.selectbox("Statistic", stats, index=stats.index(default),
                    help="*_ratio_vs_avg: time (or memory) relative to avg pooling on the same "
                         "tensor in the same process; speedup_vs_*: fused SoftPool vs the plain "
                         "formula")
devices = c2.multiselect("Device", sorted(df["device"].unique()), placeholder="all devices")
pools = c3.multiselect("Pools", sorted(df["pool"].unique()), placeholder="all pools")
d = df[df["device"].isin(devices)] if devices else df
d = d[d["pool"].isin(pools)] if pools else d
summary = q.kernel_summary(d, stat)
if summary.empty:
    st.info(f"No run reports {stat} for this selection.")
else:
    ratio = "ratio" in stat or "speedup" in stat
    ui.show_chart(plots.kernel_chart(summary, stat, 1.0 if ratio else None,
                                     log=bool((summary["min"] > 0).all())))
    st.caption(f"Dots: mean of {stat} over the benchmark's runs (seeds); lines: min to max; "
               f"log axis. Red dashed: 1 (as costly as the reference)." if ratio else
               f"Dots: mean of {stat}; lines: min to max over runs.")
    pivot = summary.pivot_table(index=["device", "family"], columns="shape", values="mean")
    st.dataframe(pivot.style.format("{:.3g}"), width="stretch")

st.subheader("Raw timings of one run")
runs = df[["run_id", "run_key", "claim_id", "tier", "seed", "device"]].drop_duplicates()
label = {r.run_id: f"{r.claim_id} · {r.tier} · seed {r.seed} · {r.device} · {r.run_key}"
         for r in runs.itertuples()}
run_id = st.selectbox("Run", list(label), format_func=label.get)
art = q.artifact(ctx.engine, int(run_id), "rows")
if art is None:
    st.caption("This run stored no `rows` artifact; its metrics:")
    st.dataframe(df[df["run_id"] == run_id].pivot_table(index=["shape", "pool"],
                                                        columns="stat", values="value"),
                 width="stretch")
else:
    st.dataframe(pd.DataFrame(artifact_value(*art)), hide_index=True, width="stretch")
