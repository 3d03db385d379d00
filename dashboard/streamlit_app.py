"""The dashboard's entry: ``streamlit run dashboard`` from the repository root.

``streamlit run <folder>`` runs ``<folder>/streamlit_app.py`` and reads
``<folder>/.streamlit/config.toml`` (which binds to localhost). Options for the app go after
``--`` (see :mod:`dashboard.settings`)::

    streamlit run dashboard                                # ./results.db, ./tasks.toml
    streamlit run dashboard -- --db sqlite:///out/results.db --optuna sqlite:///optuna.db

Read-only: the database is opened with a read-only connection and never migrated. Each page
is a thin script in ``dashboard/views``; the data comes from :mod:`dashboard.queries`.
"""

import sys
from pathlib import Path

# Streamlit puts this script's folder on sys.path, not the repository root; the app imports
# the suite (and this package) from the checkout it lives in.
ROOT = Path(__file__).resolve().parent.parent
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import ui  # noqa: E402
from dashboard.markup import CSS  # noqa: E402

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="poolrepro results", page_icon=":bar_chart:", layout="wide")
pages = [
    st.Page(VIEWS / "overview.py", title="Overview", icon=":material/fact_check:", default=True),
    st.Page(VIEWS / "claim.py", title="Claim", icon=":material/insights:"),
    st.Page(VIEWS / "papers.py", title="Papers", icon=":material/table_chart:"),
    st.Page(VIEWS / "analysis.py", title="Analysis", icon=":material/analytics:"),
    st.Page(VIEWS / "sweeps.py", title="Sweeps", icon=":material/tune:"),
    st.Page(VIEWS / "cost.py", title="Cost", icon=":material/timer:"),
    st.Page(VIEWS / "kernels.py", title="Kernels", icon=":material/speed:"),
    st.Page(VIEWS / "runs.py", title="Runs", icon=":material/list:"),
]
page = st.navigation(pages)
st.markdown(CSS, unsafe_allow_html=True)
ui.sidebar()
page.run()
