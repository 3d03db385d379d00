"""Sweeps: the Optuna studies in the Optuna storage (best value per arm, trials over time,
parameter importances), read through the Optuna API."""

import altair as alt
import streamlit as st

from dashboard import plots, studies, ui

ctx = ui.context(require_db=False)
st.title("Sweeps")
url = ctx.settings.optuna
st.caption(f"Optuna storage (read-only): `{url}`")


@st.cache_data(show_spinner=False, ttl=30)
def load(url: str):
    storage = studies.open_storage(url)
    return studies.list_studies(storage)


try:
    table = load(url)
except studies.NoStorage as e:
    table = None
    st.info(f"No sweeps yet ({e}).")
except Exception as e:  # not an Optuna storage, unreachable server
    table = None
    st.error(f"Cannot read the Optuna storage {url!r}: {e}")
if table is None or table.empty:
    if table is not None:
        st.info("The Optuna storage holds no study yet.")
    st.markdown("Run a sweep (each claim and arm gets a study, the same budget per arm):\n\n"
                "```bash\npython -m suite sweep CLAIM_ID --arm both --trials 20\n```\n\n"
                "then open this page again, or point the dashboard at another storage with "
                "`streamlit run dashboard -- --optuna sqlite:///optuna.db` "
                "(or `$POOLREPRO_OPTUNA`).")
    st.stop()

st.subheader("Best value per claim and arm")
best = table.dropna(subset=["best_value"])
if len(best):
    arms = list(dict.fromkeys(["treatment", "baseline", *sorted(best["arm"].unique())]))
    arms = [a for a in arms if a in set(best["arm"])]
    ui.show_chart(alt.Chart(best).mark_circle(size=110, opacity=0.9).encode(
        y=alt.Y("claim:N", title=None, axis=alt.Axis(labelLimit=320)),
        x=alt.X("best_value:Q", title="best objective", scale=alt.Scale(zero=False)),
        color=alt.Color("arm:N", scale=alt.Scale(domain=arms, range=[
            plots.ARM_COLORS.get(a, "#57606a") for a in arms]),
            legend=alt.Legend(orient="bottom")),
        tooltip=["study", "claim", "arm", "direction", "best_value", "complete", "trials"],
    ).properties(height=alt.Step(28)))
st.dataframe(table.assign(best_params=table["best_params"].map(str)), hide_index=True,
             width="stretch")

name = st.selectbox("Study", list(table["study"]))
row = table[table["study"] == name].iloc[0]
storage = studies.open_storage(url)
trials = studies.trials_frame(storage, name)
left, right = st.columns([1.6, 1])
with left:
    st.subheader("Trials")
    if trials["value"].notna().any():
        ui.show_chart(plots.trials_chart(trials.assign(params=trials["params"].map(str)),
                                         row["direction"]))
    else:
        st.caption("No complete trial yet.")
with right:
    st.subheader("Parameter importances")
    imp = studies.importances(storage, name)
    if imp.empty:
        st.caption("Needs at least two complete trials with varied parameters.")
    else:
        ui.show_chart(plots.importance_chart(imp))
st.dataframe(trials.assign(params=trials["params"].map(str)), hide_index=True, width="stretch")
