"""Analysis: every chart registered in ``dashboard.charts`` for a paper, and the images runs
produced (saliency maps, ...) with their run's scores."""

import traceback

import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard import queries as q

ctx = ui.context()
st.title("Analysis")
registered = charts.load_all()
papers = sorted({s.paper for s in registered.values()} | set(ui.papers_of(ctx)))
want = st.query_params.get("paper")
paper = st.radio("Paper", papers, index=papers.index(want) if want in papers else 0,
                 horizontal=True)
st.query_params["paper"] = paper


@st.cache_resource(show_spinner="building chart…", max_entries=64)
def build(key: tuple, name: str, _ctx: ui.Ctx):
    """The chart, or None (no data yet), or the traceback text of a failing builder."""
    try:
        return registered[name].build(_ctx.engine, _ctx.claims)
    except Exception:
        return traceback.format_exc()


specs = [s for n, s in sorted(registered.items()) if s.paper == paper]
if not specs:
    st.info(f"No analysis chart is registered for {paper} yet (paper helpers add them in "
            f"`dashboard/charts/{paper}.py` with `@chart(...)`).")
for spec in specs:
    st.subheader(spec.title)
    out = build(ctx.key, spec.name, ctx)
    if out is None:
        st.caption(f"`{spec.name}`: the database holds no data for this chart yet.")
    elif isinstance(out, str):
        st.error(f"`{spec.name}` failed to build")
        st.code(out, language=None)
    else:
        ui.show_chart(out)

# --------------------------------------------------------------------------- images
runs = ui.runs_frame(ctx)
mine = runs[runs["paper"] == paper]
imgs = ui.cached(q.artifact_index, ctx, tuple(mine["id"]), "image/")
st.subheader("Images from runs")
if imgs.empty:
    st.caption("No run of this paper stored an image artifact yet (e.g. saliency maps: a "
               "task returns `artifacts={name: suite.specs.blob(png_bytes)}`).")
else:
    imgs = imgs.merge(mine[["id", "claim_id", "tier", "arm", "seed"]],
                      left_on="run_id", right_on="id")
    claim_ids = sorted(imgs["claim_id"].unique())
    pick = st.selectbox("Claim", claim_ids)
    sel = imgs[imgs["claim_id"] == pick]
    mets = ui.cached(q.run_metrics, ctx, tuple(sel["run_id"].unique()))
    grid = st.columns(3)
    for i, a in enumerate(sel.itertuples()):
        with grid[i % 3]:
            media, data = q.artifact(ctx.engine, a.run_id, a.name)
            st.image(data, caption=f"{a.name} · {a.tier} · {a.arm} · seed {a.seed}",
                     width="stretch")
            scores = mets[mets["run_id"] == a.run_id][["name", "value"]]
            if len(scores):
                st.dataframe(pd.DataFrame(scores).set_index("name").T, width="stretch")
