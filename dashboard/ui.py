"""Streamlit glue shared by the pages: settings, the read-only engine, cached queries, the
empty state. The queries themselves are the pure functions of :mod:`dashboard.queries`.

Caching: every cached call is keyed on the database URL and its fingerprint (run count,
newest run id, claim definitions, newest finish time) plus the claims file's path and mtime,
so a new run or an edited tasks.toml shows up on the next rerun, and an unchanged database is
never queried twice.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import queries as q
from dashboard import settings as settings_mod
from suite.errors import SuiteError
from suite.specs import Claim, Paper

ENTRY = "streamlit_app.py"


def settings() -> settings_mod.Settings:
    """Flags after ``--`` when run as ``streamlit run dashboard``, else the environment."""
    argv = sys.argv[1:] if Path(sys.argv[0]).name == ENTRY else []
    return settings_mod.from_args(argv)


@dataclass
class Ctx:
    """What every page needs: where the data is, the engine, the claims."""

    settings: settings_mod.Settings
    engine: Any = None
    status: q.DbStatus | None = None
    db_error: str = ""
    missing: bool = False
    papers: dict[str, Paper] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    claims_note: str = ""
    claims_key: tuple = ()  # changes when the claims do
    key: tuple = ()  # changes when the claims or the database do

    @property
    def ok(self) -> bool:
        return self.engine is not None and self.status is not None and not self.status.empty


@st.cache_resource(show_spinner=False, max_entries=4)
def _engine(url: str):
    return q.open_readonly(url)


@st.cache_resource(show_spinner=False, max_entries=8)
def _claims(tasks: str, mtime: float | None, url: str, fp: tuple, _engine: Any
            ) -> tuple[dict[str, Paper], list[Claim], str, tuple]:
    """(papers, claims, where they came from, a cache key of the claims)."""
    from suite.claims import load_claims

    note = ""
    if mtime is not None:
        try:
            papers, claims = load_claims(tasks)
            return papers, claims, f"claims from {tasks}", (tasks, mtime)
        except SuiteError as e:
            note = f"{tasks} is invalid, so claims come from the database instead:\n\n{e}"
    else:
        note = f"no {tasks} here; claims come from the database's claim definitions"
    if _engine is None:
        return {}, [], note, ("none",)
    papers, claims = q.claims_from_db(_engine)
    return papers, claims, note, (url, fp)


def context(require_db: bool = True) -> Ctx:
    """Open everything once per rerun (cheap: engines and claims are cached). With
    ``require_db`` a missing or empty database renders the empty state and stops the page."""
    s = settings()
    ctx = Ctx(settings=s)
    try:
        ctx.engine = _engine(s.db)
        ctx.status = q.db_status(ctx.engine)
    except q.NoDatabase as e:
        ctx.db_error, ctx.missing = str(e), True
    except SuiteError as e:
        ctx.db_error = str(e)
    try:
        mtime = os.path.getmtime(s.tasks)
    except OSError:
        mtime = None
    fp = ctx.status.fingerprint if ctx.status else ()
    ctx.papers, ctx.claims, ctx.claims_note, ctx.claims_key = _claims(
        s.tasks, mtime, s.db, fp, ctx.engine)
    ctx.key = (s.db, fp, ctx.claims_key)
    if require_db and not ctx.ok:
        empty_state(ctx)
        st.stop()
    return ctx


def empty_state(ctx: Ctx) -> None:
    """How to get results into the database, instead of a traceback."""
    s = ctx.settings
    if ctx.db_error and not ctx.missing:
        st.error(f"The results database cannot be read: {ctx.db_error}")
    elif ctx.missing:
        st.info(f"No results database yet ({ctx.db_error}).")
    else:
        st.info(f"The results database `{s.db}` holds no runs yet.")
    st.markdown(
        "**Produce results**, from the repository root:\n\n"
        "```bash\n"
        "python -m suite run --tier smoke --claim 'suite/*' --no-mlflow  # seconds\n"
        "python3 -m nox -s reproduce                     # every claim at the mini tier\n"
        "python -m suite import results.jsonl            # the committed results\n"
        "```\n\n"
        "**Or point the dashboard at another database**:\n\n"
        "```bash\n"
        "streamlit run dashboard -- --db sqlite:///out/results.db\n"
        "POOLREPRO_DB=postgresql+psycopg://me@host/poolrepro streamlit run dashboard\n"
        "```")


# ------------------------------------------------------------------------------ cached
@st.cache_resource(show_spinner=False, max_entries=8)
def _runs_lite(key: tuple, _ctx: Ctx) -> dict[str, q.RunLite]:
    return q.load_runs(_ctx.engine, q.judged_metrics(_ctx.claims))


@st.cache_resource(show_spinner=False, max_entries=16)
def _plan_index(claims_key: tuple, tier: str, _ctx: Ctx) -> q.PlanIndex:
    return q.plan_index(_ctx.claims, tier)


@st.cache_resource(show_spinner=False, max_entries=16)
def _verdict_rows(key: tuple, tiers: tuple[str, ...], _ctx: Ctx):
    runs = _runs_lite(key, _ctx)
    return [r for t in tiers for r in q.judge_index(_plan_index(_ctx.claims_key, t, _ctx), runs)]


def verdict_rows(ctx: Ctx, tiers) -> list:
    return _verdict_rows(ctx.key, tuple(tiers), ctx)


@st.cache_data(show_spinner=False, max_entries=8)
def _ok_by_tier(key: tuple, _ctx: Ctx) -> dict[str, int]:
    return q.ok_runs_by_tier(_ctx.engine)


def tiers_with_runs(ctx: Ctx) -> list[str]:
    return list(_ok_by_tier(ctx.key, ctx))


def main_tier(ctx: Ctx) -> str | None:
    counts = _ok_by_tier(ctx.key, ctx)
    return max(counts, key=counts.get) if counts else None


@st.cache_data(show_spinner=False, max_entries=16)
def _overview(key: tuple, tiers: tuple[str, ...], _ctx: Ctx):
    return q.overview_frame(_verdict_rows(key, tiers, _ctx))


def overview(ctx: Ctx, tiers) -> Any:
    return _overview(ctx.key, tuple(tiers), ctx)


@st.cache_data(show_spinner=False, max_entries=4)
def _runs_frame(key: tuple, _ctx: Ctx):
    return q.runs_frame(_ctx.engine, _ctx.claims)


def runs_frame(ctx: Ctx):
    return _runs_frame(ctx.key, ctx)


def cached(fn, ctx: Ctx, *args):
    """``fn(engine, *args)`` cached on the data's key and the (hashable) args."""
    return _cached(ctx.key, fn.__module__ + "." + fn.__qualname__, args, ctx, fn)


@st.cache_data(show_spinner=False, max_entries=64)
def _cached(key: tuple, name: str, args: tuple, _ctx: Ctx, _fn):
    return _fn(_ctx.engine, *args)


def cached_with_claims(fn, ctx: Ctx):
    """``fn(engine, claims)`` cached on the data's key (which covers the claims)."""
    return _cached_claims(ctx.key, fn.__module__ + "." + fn.__qualname__, ctx, fn)


@st.cache_data(show_spinner=False, max_entries=16)
def _cached_claims(key: tuple, name: str, _ctx: Ctx, _fn):
    return _fn(_ctx.engine, _ctx.claims)


def claim_by_id(ctx: Ctx) -> dict[str, Claim]:
    return {c.id: c for c in ctx.claims}


def papers_of(ctx: Ctx) -> list[str]:
    return sorted({c.paper for c in ctx.claims})


def show_chart(chart, **kw) -> None:
    st.altair_chart(chart, width="stretch", **kw)


def sidebar() -> None:
    """Where the data comes from, on every page."""
    ctx = context(require_db=False)
    with st.sidebar:
        st.caption("Results database (read-only)")
        st.code(ctx.settings.db, language=None, wrap_lines=True)
        if ctx.status is not None:
            s = ctx.status
            st.caption(f"{s.n_runs:,} runs · schema {s.revision or '?'}"
                       + (f" · last run {s.last_finished}" if s.last_finished else ""))
        elif ctx.db_error:
            st.caption(f":red[{ctx.db_error}]")
        st.caption(ctx.claims_note.split("\n")[0] if ctx.claims_note else "")
        if st.button("Reload data", help="clear the dashboard's caches and query again"):
            st.cache_data.clear()
            st.cache_resource.clear()
            st.rerun()


def ok_runs_by_tier(ctx: Ctx) -> dict[str, int]:
    return _ok_by_tier(ctx.key, ctx)
