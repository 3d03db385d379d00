"""The results database: SQLAlchemy 2.0 typed models, Alembic-managed schema, one transaction
per run.

Default URL ``sqlite:///results.db`` (WAL mode); any SQLAlchemy URL via ``--db`` or
``$POOLREPRO_DB`` (e.g. ``postgresql+psycopg://user@localhost/poolrepro``). The schema is
created and upgraded by Alembic migrations in ``suite/migrations`` (never ``create_all``).

Tables:

* ``claims``  — claim definitions with history: a new row whenever a claim's definition hash
  changes.
* ``runs``    — one row per ``run_key`` (status ok / error / skipped / timeout) with provenance
  (git sha + dirty flag, versions, device, resolved config, claim hash, timings) and the
  MLflow run id. A retry replaces a failed row in the same transaction; ``attempts`` counts.
* ``metrics`` — final metrics of a run (name → value).
* ``series``  — per-epoch values of a run (name, step → value), for curves.
* ``artifacts`` — small files and JSON a run produced (PNG saliency maps, per-layer tables),
  name → (media type, bytes); at most ``suite.specs.MAX_ARTIFACT_BYTES`` each.
* ``leases``  — the run_keys a scheduler is running right now (owner, heartbeat, expiry), so
  two schedulers on one database never run the same key twice (:mod:`suite.leases`).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from suite.errors import DatabaseError
from suite.specs import MAX_ARTIFACT_BYTES, artifact_bytes, artifact_value

DEFAULT_URL = "sqlite:///results.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class ClaimDef(Base):
    __tablename__ = "claims"
    __table_args__ = (UniqueConstraint("claim_id", "definition_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    claim_id: Mapped[str] = mapped_column(String(200), index=True)
    paper: Mapped[str] = mapped_column(String(100))
    definition_hash: Mapped[str] = mapped_column(String(32))
    definition: Mapped[dict] = mapped_column(JSON)
    first_seen: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(40), unique=True, index=True)
    claim_id: Mapped[str] = mapped_column(String(200), index=True)
    claim_hash: Mapped[str] = mapped_column(String(32), default="")
    tier: Mapped[str] = mapped_column(String(10))
    arm: Mapped[str] = mapped_column(String(20))
    seed: Mapped[int] = mapped_column(Integer)
    task: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    dataset: Mapped[str] = mapped_column(String(100))
    config: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    wall_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    git_sha: Mapped[str] = mapped_column(String(40), default="")
    git_dirty: Mapped[bool] = mapped_column(Boolean, default=False)
    python_version: Mapped[str] = mapped_column(String(20), default="")
    torch_version: Mapped[str] = mapped_column(String(40), default="")
    device_name: Mapped[str] = mapped_column(String(200), default="")
    provenance: Mapped[dict] = mapped_column(JSON, default=dict)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)

    metrics: Mapped[list[Metric]] = relationship(back_populates="run", cascade="all, delete-orphan")
    series: Mapped[list[SeriesPoint]] = relationship(back_populates="run",
                                                     cascade="all, delete-orphan")
    artifacts: Mapped[list[Artifact]] = relationship(back_populates="run",
                                                     cascade="all, delete-orphan")

    def metric_dict(self) -> dict[str, float]:
        return {m.name: m.value for m in self.metrics}


class Metric(Base):
    __tablename__ = "metrics"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    run: Mapped[Run] = relationship(back_populates="metrics")


class SeriesPoint(Base):
    __tablename__ = "series"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    step: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    run: Mapped[Run] = relationship(back_populates="series")


class Artifact(Base):
    __tablename__ = "artifacts"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"),
                                        primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    media_type: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    run: Mapped[Run] = relationship(back_populates="artifacts")

    def value(self) -> Any:
        return artifact_value(self.media_type, self.data)


class Lease(Base):
    __tablename__ = "leases"

    run_key: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner: Mapped[str] = mapped_column(String(120), index=True)
    acquired_at: Mapped[datetime] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


# --------------------------------------------------------------------------------------
def resolve_url(url: str | None = None) -> str:
    """``url``, else ``$POOLREPRO_DB``, else ``sqlite:///results.db``. A bare path means SQLite."""
    url = url or os.environ.get("POOLREPRO_DB") or DEFAULT_URL
    if "://" not in url:
        url = f"sqlite:///{url}"
    try:
        make_url(url)
    except ArgumentError as e:
        raise DatabaseError(
            f"database URL {url!r} is not a SQLAlchemy URL ({e}). Use e.g. "
            f"'sqlite:///results.db' or 'postgresql+psycopg://user@host/db' (--db or "
            f"$POOLREPRO_DB)."
        ) from e
    return url


def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def connect(url: str | None = None, *, upgrade: bool = True, readonly: bool = False) -> Engine:
    """An engine on the results DB, its schema upgraded to the newest migration."""
    url = resolve_url(url)
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        parent = Path(u.database).expanduser().resolve().parent
        if not parent.is_dir():
            raise DatabaseError(f"database directory {parent} does not exist (from URL {url!r})")
        if readonly:
            url = f"sqlite:///file:{Path(u.database).resolve()}?mode=ro&uri=true"
    try:
        engine = create_engine(url, future=True)
    except Exception as e:  # unknown dialect, missing driver, bad option
        raise DatabaseError(
            f"cannot open database {url!r}: {e}. Use e.g. 'sqlite:///results.db' or "
            f"'postgresql+psycopg://user@host/db' (PostgreSQL needs the 'postgres' extra) via "
            f"--db or $POOLREPRO_DB."
        ) from e
    if engine.dialect.name == "sqlite" and not readonly:
        event.listen(engine, "connect", _sqlite_pragmas)
    if upgrade and not readonly:
        migrate(engine)
    return engine


def head_revision() -> str:
    """The newest schema revision among the migrations shipped with this code."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """One migrating process at a time (two schedulers may create one new DB at once): a
    lock file named after the SQLite file's path, in the per-user lock directory of
    :mod:`suite.runlock` (never the DB file itself: closing any descriptor of it would drop
    SQLite's own POSIX locks); PostgreSQL takes an advisory lock in the migration's own
    transaction instead."""
    db_path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not db_path or db_path == ":memory:" or db_path.startswith("file:"):
        yield
        return
    import fcntl
    import hashlib

    from suite.runlock import lock_dir

    tag = hashlib.sha256(str(Path(db_path).resolve()).encode()).hexdigest()[:16]
    lock = lock_dir() / f"migrate-{tag}.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def migrate(engine: Engine) -> None:
    """Run Alembic migrations up to head on ``engine``."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = None
    try:
        with _migration_lock(engine), engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(5810993)"))  # any constant
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as e:
        raise DatabaseError(f"cannot reach or write database {engine.url!r}: {e.orig}") from e
    except Exception as e:
        if "Can't locate revision" in str(e):
            raise DatabaseError(
                f"{engine.url!r} was written by a newer poolrepro (unknown schema revision); "
                f"upgrade poolrepro or use another --db"
            ) from e
        raise


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """One transaction: commits on success, rolls back everything on any exception."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        yield s


# --------------------------------------------------------------------------------------
def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def record_claims(engine: Engine, claims: list[Any]) -> int:
    """Store each claim definition whose hash is new (history is kept). Returns rows added.

    Another scheduler may store the same definitions at the same moment: the loser of that
    race rolls back and looks again."""
    for attempt in range(3):
        added = 0
        try:
            with session(engine) as s:
                have = set(s.execute(select(ClaimDef.claim_id, ClaimDef.definition_hash)))
                for c in claims:
                    if (c.id, c.definition_hash) in have:
                        continue
                    definition = json.loads(json.dumps(_claim_json(c), default=str))
                    s.add(ClaimDef(claim_id=c.id, paper=c.paper,
                                   definition_hash=c.definition_hash, definition=definition))
                    added += 1
            return added
        except IntegrityError:
            if attempt == 2:
                raise
    return 0


def _claim_json(c: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(c)


def record_run(engine: Engine, result: dict[str, Any]) -> Run:
    """Write one worker result (the ``RESULT`` JSON) in a single transaction.

    An existing row for the same run_key is replaced (its metrics and series with it) and
    ``attempts`` carried over + 1; an existing ``ok`` row is never overwritten by a non-ok one.
    """
    with session(engine) as s:
        return write_run(s, result)


def record_runs(engine: Engine, results: list[dict[str, Any]]) -> int:
    """Write many results in one transaction (all or nothing), e.g. for ``import``."""
    with session(engine) as s:
        for r in results:
            write_run(s, r)
            s.flush()
    return len(results)


def write_run(s: Session, result: dict[str, Any]) -> Run:
    spec = result["spec"]
    status = result["status"]
    old = s.execute(select(Run).where(Run.run_key == spec["run_key"])).scalar_one_or_none()
    attempts = int(result.get("attempts") or 1)
    if old is not None:
        if old.status == "ok" and status != "ok":
            return old
        attempts = int(result.get("attempts") or old.attempts + 1)
        s.delete(old)
        s.flush()
    prov = dict(result.get("provenance") or {})
    run = Run(
        run_key=spec["run_key"], claim_id=spec["claim_id"], claim_hash=spec.get("claim_hash", ""),
        tier=spec["tier"], arm=spec["arm"], seed=int(spec["seed"]), task=spec["task"],
        model=spec["model"], dataset=spec["dataset"], config=spec, status=status,
        message=str(result.get("message", ""))[:4000], attempts=attempts,
        started_at=_parse_time(result.get("started_at")),
        finished_at=_parse_time(result.get("finished_at")),
        wall_s=_finite(result.get("wall_s")),
        git_sha=str(prov.get("git_sha", "")), git_dirty=bool(prov.get("git_dirty", False)),
        python_version=str(prov.get("python", "")), torch_version=str(prov.get("torch", "")),
        device_name=str(prov.get("device_name", "")), provenance=prov,
        mlflow_run_id=result.get("mlflow_run_id"),
    )
    for name, value in (result.get("metrics") or {}).items():
        v = _finite(value)
        if v is not None:
            run.metrics.append(Metric(name=name, value=v))
    for name, values in (result.get("series") or {}).items():
        for step, value in enumerate(values):
            v = _finite(value)
            if v is not None:
                run.series.append(SeriesPoint(name=name, step=step, value=v))
    dropped = []
    for name, value in (result.get("artifacts") or {}).items():
        media_type, data = artifact_bytes(value)
        if len(data) > MAX_ARTIFACT_BYTES:
            dropped.append(f"{name} ({len(data)} bytes)")
            continue
        run.artifacts.append(Artifact(name=str(name)[:200], media_type=media_type, data=data))
    if dropped:
        run.provenance = {**prov, "artifacts_dropped": dropped}
    s.add(run)
    return run


def _parse_time(x: Any) -> datetime | None:
    if not x:
        return None
    try:
        return datetime.fromisoformat(str(x))
    except ValueError:
        return None


def set_mlflow_id(engine: Engine, run_key: str, mlflow_run_id: str) -> None:
    with session(engine) as s:
        run = s.execute(select(Run).where(Run.run_key == run_key)).scalar_one()
        run.mlflow_run_id = mlflow_run_id


def runs_by_key(engine: Engine, keys: list[str] | None = None) -> dict[str, Run]:
    """Runs (with metrics and series loaded) by run_key; all runs when ``keys`` is None."""
    from sqlalchemy.orm import selectinload

    q = select(Run).options(selectinload(Run.metrics), selectinload(Run.series),
                            selectinload(Run.artifacts))
    out: dict[str, Run] = {}
    with Session(engine, expire_on_commit=False) as s:
        if keys is None:
            rows = s.execute(q).scalars().all()
        else:
            rows = []
            for i in range(0, len(keys), 500):
                rows += s.execute(q.where(Run.run_key.in_(keys[i:i + 500]))).scalars().all()
        for r in rows:
            out[r.run_key] = r
    return out


def run_to_result(r: Run) -> dict[str, Any]:
    """A stored run in the worker's ``RESULT`` shape (the export / import format)."""
    points: dict[str, dict[int, float]] = {}
    for p in r.series:
        points.setdefault(p.name, {})[p.step] = p.value
    # a dropped (non-finite) epoch stays a gap (None), so later epochs keep their steps
    series = {name: [pts.get(i) for i in range(max(pts) + 1)]
              for name, pts in sorted(points.items())}
    return {
        "spec": r.config, "status": r.status, "message": r.message,
        "metrics": r.metric_dict(), "series": series, "provenance": r.provenance,
        "artifacts": {a.name: a.value() for a in sorted(r.artifacts, key=lambda a: a.name)},
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "wall_s": r.wall_s, "mlflow_run_id": r.mlflow_run_id, "attempts": r.attempts,
    }
