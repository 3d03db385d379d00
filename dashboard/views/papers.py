"""Papers: each paper's published tables (registry/published.toml) with our numbers beside
them, cell by cell, through the claims' ``published.ref`` / ``published.refs``."""

import pandas as pd
import streamlit as st

from dashboard import markup, plots, ui
from dashboard import queries as q
from registry import published as pub
from suite.specs import TIERS

ctx = ui.context(require_db=False)
st.title("Published tables beside our numbers")
papers = sorted({q.paper_of_ref(r["ref"]) for r in pub.rows()})
want = st.query_params.get("paper")
paper = st.radio("Paper", papers, index=papers.index(want) if want in papers else 0,
                 horizontal=True, format_func=lambda p: ctx.papers[p].title[:60] + " …"
                 if p in ctx.papers and len(ctx.papers[p].title) > 60 else
                 (ctx.papers[p].title if p in ctx.papers else p))
st.query_params["paper"] = paper
info = ctx.papers.get(paper)
if info is not None:
    links = " · ".join(x for x in (info.venue, f"[arXiv {info.arxiv}](https://arxiv.org/abs/"
                                              f"{info.arxiv})" if info.arxiv else "",
                                   f"[paper]({info.url})" if info.url else "") if x)
    st.caption(f"**{paper}** — {info.title} · {links}")

have = ui.tiers_with_runs(ctx) if ctx.ok else []
tier = st.radio("Our numbers at tier", list(TIERS),
                index=list(TIERS).index("mini" if "mini" in have else (have[0] if have
                                                                        else "mini")),
                horizontal=True, help="mini numbers come from scaled recipes on Fashion-MNIST "
                                      "(see each claim): they check an effect's direction, "
                                      "not the paper's number")
rows = ui.verdict_rows(ctx, (tier,)) if ctx.ok else []
if not ctx.ok:
    st.info("No results database: the published numbers are shown without ours.")
cells = q.cells_frame(q.paper_cells(paper, ctx.claims, rows, tier))
mapped = cells[cells["claim"] != ""]
measured = mapped.dropna(subset=["ours"])
st.markdown(f"**{len(cells)}** published numbers · **{len(mapped)}** measured by a claim "
            f"(`published.ref`/`refs` in tasks.toml) · **{len(measured)}** with our number at "
            f"the {tier} tier.")
if len(measured):
    ui.show_chart(plots.published_scatter(measured))
    st.caption("Each dot: one published number (x) against ours (y); dashed: y = x. Our "
               "metric is the published one's counterpart (error → top1_err, params → "
               "params_m, ...).")

for table, part in cells.groupby("table", sort=False):
    st.subheader(table)
    st.markdown(markup.paper_table(part), unsafe_allow_html=True)
    first = pub.by_ref()[part["ref"].iloc[0]]
    with st.expander("source, recipe and notes"):
        st.markdown(f"**Source:** {first.get('source', '')}  \n**Recipe:** "
                    f"{first.get('recipe', '')}")
        notes = part[part["note"] != ""][["model", "dataset", "metric", "note"]]
        if len(notes):
            st.dataframe(notes, hide_index=True, width="stretch")
st.caption("* unverified: read off a plot or quoted by a secondary source.")

loose = q.unmapped_claims(paper, ctx.claims)
if loose:
    st.subheader("Claims of this paper that cite no published row")
    judged = {r.claim.id: r.verdict.status for r in rows}
    st.markdown(" ".join(f"{markup.link(c.id, tier)} {markup.badge(judged.get(c.id, 'pending'))}"
                         for c in loose), unsafe_allow_html=True)
    st.caption("Add `published.ref = \"<ref>\"` (or `refs = [treatment, baseline]` for a delta "
               "claim) in tasks.toml to put their numbers into the tables above.")
with st.expander("every published row of this paper"):
    st.dataframe(pd.DataFrame([r for r in pub.rows() if q.paper_of_ref(r["ref"]) == paper]),
                 hide_index=True, width="stretch")
