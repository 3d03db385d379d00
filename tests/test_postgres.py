"""The results DB on a real PostgreSQL server (a throwaway cluster on a loopback port).

Skipped where the PostgreSQL server binaries or psycopg are missing; `.ci/run` installs both.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from suite import db
from suite.specs import blob

pytest.importorskip("psycopg")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    bindir = Path(bins[-1]).parent
    data = tempfile.mkdtemp(prefix="poolrepro-pg-", dir="/tmp")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", data, "-A", "trust", "-U",
                    "postgres"], check=True, capture_output=True)
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", data, "-w", "-l",
                    f"{data}/log", "-o", f"-p {port} -k {data} -c listen_addresses=127.0.0.1",
                    "start"], check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", data, "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def _result(key: str, status: str = "ok", top1: float = 50.0) -> dict:
    spec = {"run_key": key, "claim_id": "demo/x", "tier": "smoke", "arm": "treatment",
            "seed": 0, "task": "train_eval", "model": "test_cnn", "dataset": "synthetic"}
    return {"spec": spec, "status": status, "message": "", "metrics": {"top1": top1},
            "series": {"train_loss": [2.0, 1.0]}, "provenance": {"git_sha": "abc"}}


def test_postgres_schema_and_runs(pg_url: str) -> None:
    engine = db.connect(pg_url)
    with engine.connect() as c:
        from sqlalchemy import text

        assert c.execute(text("select version_num from alembic_version")).scalar() == \
            db.head_revision()
    db.record_run(engine, _result("k1", "error"))
    ok = _result("k1", "ok", 61.5)
    ok["artifacts"] = {"table": {"a": [1, 2]}, "img": blob(b"\x89PNG\r\n\x00\xff")}
    db.record_run(engine, ok)
    runs = db.runs_by_key(engine)
    assert runs["k1"].status == "ok" and runs["k1"].attempts == 2
    assert runs["k1"].metric_dict() == {"top1": 61.5}
    assert db.run_to_result(runs["k1"])["series"] == {"train_loss": [2.0, 1.0]}
    assert db.run_to_result(runs["k1"])["artifacts"] == ok["artifacts"]
    db.connect(pg_url)  # migrating an up-to-date DB again is a no-op


def test_postgres_batch_is_all_or_nothing(pg_url: str) -> None:
    engine = db.connect(pg_url)
    bad = _result("k3")
    del bad["spec"]["model"]
    with pytest.raises(KeyError):
        db.record_runs(engine, [_result("k2"), bad])
    assert "k2" not in db.runs_by_key(engine)


def test_postgres_unreachable_gives_clear_error() -> None:
    from suite.errors import DatabaseError

    with pytest.raises(DatabaseError, match="cannot reach"):
        db.connect(f"postgresql+psycopg://postgres@127.0.0.1:{_free_port()}/nope")


def _fresh_database(pg_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text

    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


def test_postgres_leases(pg_url: str) -> None:
    """Claim / held / done and a race of eight owners, on PostgreSQL's own locking."""
    import threading

    from suite.leases import Claim, Leases

    engine = db.connect(_fresh_database(pg_url, "leases"))
    a, b = Leases(engine), Leases(engine)
    assert a.claim("k1", None) is Claim.CLAIMED and b.claim("k1", None) is Claim.HELD
    a.record(_result("k1"))
    assert b.claim("k1", None) is Claim.DONE
    owners = [Leases(engine) for _ in range(8)]
    wins: list[tuple[int, int]] = []

    def race(i: int) -> None:
        wins.extend((k, i) for k in range(10) if owners[i].claim(f"r{k}", None) is Claim.CLAIMED)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(k for k, _ in wins) == list(range(10)), "one winner per key"


def test_two_scheduler_processes_on_one_postgres_db(pg_url: str, two_schedulers) -> None:
    """Two real `python -m suite run` processes at once: every run_key runs exactly once."""
    from conftest import check_two_schedulers

    url = _fresh_database(pg_url, "two_schedulers")
    procs = two_schedulers(url)
    check_two_schedulers(db.connect(url), procs)
