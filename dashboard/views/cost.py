"""Cost: device-seconds per paper, claim and device (measured wall time of every run), and
the estimated device-hours of the full-tier claims where throughput has been measured."""

import streamlit as st

from dashboard import plots, ui
from dashboard import queries as q

ctx = ui.context()
st.title("Cost")
runs = ui.runs_frame(ctx)
total_h = runs["wall_s"].sum() / 3600
failed_h = runs.loc[runs["status"] != "ok", "wall_s"].sum() / 3600
c = st.columns(4)
c[0].metric("Device-hours (all runs)", f"{total_h:.3g}")
c[1].metric("Runs", f"{len(runs):,}")
c[2].metric("Spent on runs that did not finish ok", f"{failed_h:.3g} h")
c[3].metric("Devices", runs["device_name"].nunique())

left, right = st.columns(2)
with left:
    st.subheader("Per paper and tier")
    by_paper = q.cost_by(runs, ["paper", "tier"])
    ui.show_chart(plots.bar(by_paper, y="paper", x="device_h", color="tier",
                            x_title="device-hours", tooltip=["paper", "tier", "device_h",
                                                             "runs"]))
with right:
    st.subheader("Per device")
    by_dev = q.cost_by(runs, ["device_name"])
    ui.show_chart(plots.bar(by_dev, y="device_name", x="device_h", x_title="device-hours",
                            tooltip=["device_name", "device_h", "runs"]))

st.subheader("Per claim")
top = st.slider("Claims shown", 5, 100, 30)
by_claim = q.cost_by(runs, ["claim_id", "paper"])
ui.show_chart(plots.bar(by_claim.head(top), y="claim_id", x="device_s", color="paper",
                        x_title="device-seconds (all tiers)",
                        tooltip=["claim_id", "paper", "device_s", "device_h", "runs"]))
with st.expander("per claim and tier (table)"):
    st.dataframe(q.cost_by(runs, ["claim_id", "paper", "tier"]), hide_index=True,
                 width="stretch", column_config={
                     "device_s": st.column_config.NumberColumn("device-s", format="%.1f"),
                     "device_h": st.column_config.NumberColumn("device-h", format="%.4f")})

st.subheader("Full tier: what the paper recipes would cost")
est = ui.cached_with_claims(q.full_estimates, ctx)
if est.empty:
    st.caption("No full-tier training claim.")
else:
    known = est.dropna(subset=["est_device_h"])
    flops = est.dropna(subset=["train_pflop"])
    c = st.columns(4)
    c[0].metric("Full-tier training arms", len(est))
    c[1].metric("With a throughput measurement", len(known))
    c[2].metric("Estimated device-hours of those", f"{known['est_device_h'].sum():.4g}")
    c[3].metric("Training compute where FLOPs are known",
                f"{flops['train_pflop'].sum():,.0f} PFLOP", help=f"{len(flops)} arms; 3 × "
                "forward FLOPs per training image (forward + backward), all seeds")
    if len(known):
        per = known.groupby("paper")["est_device_h"].sum().reset_index()
        ui.show_chart(plots.bar(per, y="paper", x="est_device_h",
                                x_title="estimated device-hours (full tier)"))
    st.dataframe(est, hide_index=True, width="stretch", column_config={
        "epochs": st.column_config.NumberColumn("epochs", format="%d"),
        "train_images": st.column_config.NumberColumn("images seen / seed", format="compact"),
        "gflops": st.column_config.NumberColumn("GFLOPs / image (fwd)", format="%.3f"),
        "train_pflop": st.column_config.NumberColumn("training PFLOP (3× fwd, all seeds)",
                                                     format="%.1f"),
        "images_per_s": st.column_config.NumberColumn("images/s", format="%.1f"),
        "est_device_h": st.column_config.NumberColumn("est. device-h", format="%.2f"),
        "measured_device_h": st.column_config.NumberColumn("measured device-h",
                                                           format="%.3f"),
    })
    st.caption("Estimate per arm = seeds × epochs × training images / measured images/s of "
               "the same model, model args and dataset (a throughput probe or a finished run, "
               "full tier preferred; the device is named in 'throughput_from'). FLOPs come from "
               "any run of the same model that reports `gflops` (e.g. its parameter-count "
               "claim).")
