"""Overview: every claim × tier with its verdict, n, ours vs published; counts per paper."""

import streamlit as st

from dashboard import markup, plots, ui
from dashboard import queries as q
from suite.specs import TIERS, VERDICTS

PAGE_ROWS = 250

ctx = ui.context()
st.title("Claims and verdicts")
caption = st.empty()
main = ui.main_tier(ctx)
defined = [t for t in TIERS if any(t in c.tiers or t in c.skip for c in ctx.claims)]

c1, c2, c3, c4, c5 = st.columns([1.2, 1, 1.4, 1.2, 1.4])
tiers = c2.multiselect("Tier", defined, default=[main] if main in defined else None,
                       placeholder="all tiers",
                       help="default: the tier with the most ok runs")
df = ui.overview(ctx, tiers or defined)
caption.caption(
    f"{df['claim'].nunique()} claims from {df['paper'].nunique()} papers · "
    f"{ctx.status.n_runs:,} runs (ok runs by tier: "
    + ", ".join(f"{t} {n:,}" for t, n in ui.ok_runs_by_tier(ctx).items())
    + ") · a verdict needs the 95% interval of the mean over seeds (stricter for seeds added "
    "by `run --until-decided`: 97.5% at look 1) wholly inside (reproduced) or outside (not "
    "reproduced) the accepted region.")
papers = c1.multiselect("Paper", sorted(df["paper"].unique()), placeholder="all papers")
verdicts = c3.multiselect("Verdict", [v for v in VERDICTS if v in set(df["verdict"])],
                          placeholder="all verdicts")
tags = c4.multiselect("Tag", sorted({t for ts in df["tags"] for t in ts}),
                      placeholder="any tag")
search = c5.text_input("Search", placeholder="claim id or title")
f = q.filter_overview(df, papers, tiers, verdicts, tags, search)

counts = q.verdict_counts(f)
left, right = st.columns([1.15, 2])
with left:
    totals = f["verdict"].value_counts()
    st.markdown(markup.counts({v: int(totals[v]) for v in VERDICTS if totals.get(v, 0)}),
                unsafe_allow_html=True)
    per_paper = f.groupby("paper").agg(
        claims=("claim", "nunique"),
        decided=("verdict", lambda v: v.isin(["reproduced", "not reproduced"]).sum()),
        reproduced=("verdict", lambda v: (v == "reproduced").sum()))
    st.dataframe(per_paper, width="stretch", column_config={
        "decided": st.column_config.NumberColumn(
            help="reproduced or not reproduced: the interval lies wholly on one side")})
with right:
    if len(counts):
        ui.show_chart(plots.verdict_bar(counts, "claims" if len(set(f["tier"])) == 1
                                        else "claims × tiers"))

if f.empty:
    st.info("No claim matches these filters.")
else:
    shown = f
    if len(f) > PAGE_ROWS:
        pages = (len(f) + PAGE_ROWS - 1) // PAGE_ROWS
        page = st.number_input(f"{len(f)} rows; page", 1, pages, 1)
        shown = f.iloc[(page - 1) * PAGE_ROWS: page * PAGE_ROWS]
    st.markdown(markup.overview_table(shown), unsafe_allow_html=True)
    st.caption("n = ok seeds (paired seeds for a delta claim) / planned seeds. ours = mean ± "
               "half-width of the verdict's t-interval (95%, or the level named after it at "
               "a sequential look); Δ = treatment − baseline, paired by seed. "
               "Hover a number for the verdict's reasoning; click a claim for its runs.")
