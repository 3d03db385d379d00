"""Leases (suite/leases.py): two schedulers on one results database never run a run_key
twice. Unit checks of claim / held / done / expiry / takeover on a real SQLite file, then
two real `python -m suite run` processes at once on one database (PostgreSQL: the same
test in tests/test_postgres.py)."""

from __future__ import annotations

import subprocess
import threading
import time

from conftest import check_two_schedulers
from sqlalchemy import func, select

from suite import db
from suite.leases import Claim, Leases


def result(key: str, status: str = "ok") -> dict:
    spec = {"run_key": key, "claim_id": "demo/x", "tier": "smoke", "arm": "treatment",
            "seed": 0, "task": "train_eval", "model": "test_cnn", "dataset": "synthetic"}
    return {"spec": spec, "status": status, "message": "", "metrics": {"top1": 1.0},
            "series": {}, "provenance": {}}


def n_leases(engine) -> int:
    with db.session(engine) as s:
        return s.execute(select(func.count()).select_from(db.Lease)).scalar_one()


def test_claim_held_done(db_url) -> None:
    engine = db.connect(db_url)
    a, b = Leases(engine), Leases(engine)
    assert a.claim("k1", None) is Claim.CLAIMED
    assert b.claim("k1", None) is Claim.HELD, "another live scheduler holds it"
    assert a.claim("k1", None) is Claim.HELD, "one scheduler never runs a key twice at once"
    a.record(result("k1"))
    assert n_leases(engine) == 0, "recording gives the lease back in the same transaction"
    assert b.claim("k1", None) is Claim.DONE, "the row appeared since b looked: not rerun"
    assert n_leases(engine) == 0


def test_a_retry_sees_a_failed_row_change(db_url) -> None:
    """b planned to retry an error row; a retried it meanwhile: b does not run it again."""
    engine = db.connect(db_url)
    db.record_run(engine, result("k2", "error"))
    row = db.runs_by_key(engine)["k2"]
    seen = (row.id, row.status, row.attempts, row.finished_at)
    a, b = Leases(engine), Leases(engine)
    assert a.claim("k2", seen) is Claim.CLAIMED
    a.record(result("k2", "error"))
    assert b.claim("k2", seen) is Claim.DONE
    c = Leases(engine)
    row = db.runs_by_key(engine)["k2"]
    assert c.claim("k2", (row.id, row.status, row.attempts, row.finished_at)) is Claim.CLAIMED


def test_expired_lease_is_taken_over_and_heartbeat_keeps_it(db_url) -> None:
    engine = db.connect(db_url)
    a, b = Leases(engine, ttl=2.0), Leases(engine, ttl=2.0)
    assert a.claim("k3", None) is Claim.CLAIMED
    time.sleep(1.2)
    a.beat()
    time.sleep(1.2)  # 2.4 s after the claim, 1.2 s after the beat
    assert b.claim("k3", None) is Claim.HELD
    time.sleep(1.0)  # 2.2 s after the last beat: expired
    assert b.claim("k3", None) is Claim.CLAIMED
    b.record(result("k3"))
    a.close()  # a's lease is gone already; closing deletes nothing of b's
    assert db.runs_by_key(engine)["k3"].status == "ok"


def test_lease_of_a_dead_scheduler_on_this_machine_is_taken_over_at_once(db_url) -> None:
    engine = db.connect(db_url)
    me = Leases(engine)
    gone = subprocess.Popen(["true"])
    gone.wait()
    now = db.utcnow()
    far = now.replace(year=now.year + 1)
    with db.session(engine) as s:
        s.add(db.Lease(run_key="k4", owner=f"{me.machine}:{gone.pid}:dead", acquired_at=now,
                       heartbeat_at=now, expires_at=far))
        s.add(db.Lease(run_key="k5", owner="0123456789ab:1:elsewhere", acquired_at=now,
                       heartbeat_at=now, expires_at=far))
    assert me.claim("k4", None) is Claim.CLAIMED, "its process is gone: no need to wait"
    assert me.claim("k5", None) is Claim.HELD, "another machine's live lease is respected"


def test_close_gives_back_unfinished_leases(db_url) -> None:
    engine = db.connect(db_url)
    a = Leases(engine)
    a.start()
    assert a.claim("k6", None) is Claim.CLAIMED and a.claim("k7", None) is Claim.CLAIMED
    assert n_leases(engine) == 2
    a.close()
    assert n_leases(engine) == 0 and a.held == set()


def test_concurrent_claims_one_winner(db_url) -> None:
    """Eight schedulers' threads race for the same keys: each key has exactly one winner."""
    engine = db.connect(db_url)
    owners = [Leases(engine) for _ in range(8)]
    wins: dict[str, list[int]] = {}
    lock = threading.Lock()

    def race(i: int) -> None:
        for k in range(10):
            if owners[i].claim(f"r{k}", None) is Claim.CLAIMED:
                with lock:
                    wins.setdefault(f"r{k}", []).append(i)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [f"r{k}" for k in range(10)]
    assert all(len(w) == 1 for w in wins.values()), wins


def test_two_scheduler_processes_on_one_sqlite_db(two_schedulers, db_url) -> None:
    procs = two_schedulers(db_url)
    check_two_schedulers(db.connect(db_url), procs)
