"""Opening the results database read-only, what it holds, and the claims it stores."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import create_engine, func, inspect, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from suite import db
from suite.errors import DatabaseError
from suite.specs import Claim, Expect, Paper, TierForm

#: Tables the dashboard reads (``artifacts`` arrived with migration 0002; older DBs lack it).
TABLES = ("claims", "runs", "metrics", "series", "artifacts")


class NoDatabase(DatabaseError):
    """The results database does not exist (yet)."""


def open_readonly(url: str) -> Engine:
    """An engine that cannot write: SQLite through a ``mode=ro`` URI (``immutable`` where even
    the WAL index cannot be created), PostgreSQL in read-only transactions. Never migrates.

    Raises :class:`NoDatabase` for a SQLite file that does not exist, :class:`DatabaseError`
    for anything else that cannot be opened.
    """
    url = db.resolve_url(url)
    u = make_url(url)
    backend = u.get_backend_name()
    try:
        if backend == "sqlite":
            if not u.database or u.database == ":memory:":
                raise DatabaseError(f"{url!r} is an in-memory database: nothing to show")
            path = Path(u.database).expanduser().resolve()
            if not path.is_file():
                raise NoDatabase(f"no results database at {path}")
            engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
            try:
                with engine.connect() as conn:
                    conn.execute(text("SELECT 1 FROM sqlite_master LIMIT 1"))
            except OperationalError:  # read-only directory: no -shm can be made for WAL
                engine.dispose()
                engine = create_engine(f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true")
        elif backend == "postgresql":
            engine = create_engine(
                url, connect_args={"options": "-c default_transaction_read_only=on"})
        else:
            engine = create_engine(url)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except DatabaseError:
        raise
    except Exception as e:  # missing driver, unreachable server, not a database file
        raise DatabaseError(f"cannot open results database {url!r}: {e}") from e
    return engine


@dataclass(frozen=True)
class DbStatus:
    """What is in the database: table presence, sizes and a fingerprint that changes whenever
    a run is added or replaced (the cache key of every query)."""

    tables: tuple[str, ...]
    n_runs: int
    n_claim_defs: int
    revision: str
    fingerprint: tuple
    last_finished: str = ""

    @property
    def empty(self) -> bool:
        return self.n_runs == 0


def db_status(engine: Engine) -> DbStatus:
    try:
        names = set(inspect(engine).get_table_names())
    except SQLAlchemyError as e:
        raise DatabaseError(f"cannot read {engine.url!r}: {e}") from e
    tables = tuple(t for t in TABLES if t in names)
    n_runs = n_defs = max_id = 0
    last = ""
    revision = ""
    with engine.connect() as conn:
        if "runs" in names:
            n_runs, max_id, last_t = conn.execute(
                select(func.count(db.Run.id), func.max(db.Run.id), func.max(db.Run.finished_at))
            ).one()
            n_runs, max_id = int(n_runs or 0), int(max_id or 0)
            last = str(last_t or "")[:19]
        if "claims" in names:
            n_defs = int(conn.execute(select(func.count(db.ClaimDef.id))).scalar() or 0)
        if "alembic_version" in names:
            revision = str(conn.execute(text("SELECT version_num FROM alembic_version"))
                           .scalar() or "")
    return DbStatus(tables, n_runs, n_defs, revision, (n_runs, max_id, n_defs, last), last)


def claims_from_db(engine: Engine) -> tuple[dict[str, Paper], list[Claim]]:
    """The newest stored definition of every claim (the ``claims`` table keeps history), for a
    database viewed without its tasks.toml."""
    if "claims" not in inspect(engine).get_table_names():
        return {}, []
    latest: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(db.ClaimDef.claim_id, db.ClaimDef.definition)
                            .order_by(db.ClaimDef.first_seen, db.ClaimDef.id)).all()
    for cid, definition in rows:
        latest[cid] = definition
    claims = [claim_from_definition(d) for d in latest.values()]
    papers = {c.paper: Paper(id=c.paper, title=c.paper) for c in claims}
    return papers, claims


def claim_from_definition(d: dict[str, Any]) -> Claim:
    """Rebuild a :class:`Claim` from its stored ``asdict`` form (``claims.definition``)."""
    tiers = {}
    for tier, f in (d.get("tiers") or {}).items():
        f = dict(f)
        e = f.pop("expect", None)
        f["seeds"] = tuple(f.get("seeds") or (0,))
        tiers[tier] = TierForm(**f, expect=Expect(**e) if e else None)
    return Claim(id=d["id"], paper=d.get("paper", ""), source=d.get("source", ""),
                 title=d.get("title", ""), tiers=tiers, tags=tuple(d.get("tags") or ()),
                 published=dict(d.get("published") or {}), status_note=d.get("status_note", ""),
                 skip=dict(d.get("skip") or {}), definition_hash=d.get("definition_hash", ""))


def claim_history(engine: Engine, claim_id: str) -> pd.DataFrame:
    """Every stored definition of one claim: hash and when it was first seen."""
    if "claims" not in inspect(engine).get_table_names():
        return pd.DataFrame(columns=["definition_hash", "first_seen"])
    with engine.connect() as conn:
        rows = conn.execute(select(db.ClaimDef.definition_hash, db.ClaimDef.first_seen)
                            .where(db.ClaimDef.claim_id == claim_id)
                            .order_by(db.ClaimDef.first_seen)).all()
    return pd.DataFrame(rows, columns=["definition_hash", "first_seen"])



def chunks(xs: list, n: int = 500) -> Iterable[list]:
    for i in range(0, len(xs), n):
        yield xs[i:i + n]
