"""Leases: two schedulers on one results database never run the same run_key twice.

Before a run starts, its scheduler *claims* the run_key: one row in the ``leases`` table
(owner, heartbeat, expiry), written in one transaction that begins with a write, so SQLite
serialises claims on its write lock and PostgreSQL on the row (``INSERT ... ON CONFLICT DO
NOTHING`` and a conditional ``UPDATE``). The result is recorded and the lease deleted in one
transaction (:meth:`Leases.record`), so another scheduler sees either the lease or the run.

A claim answers one of:

* ``CLAIMED`` — ours: run it;
* ``HELD`` — another live scheduler is running it: try again later (the scheduler polls,
  so both commands end with every run recorded);
* ``DONE`` — the run's row changed since this scheduler looked (another scheduler ran it
  meanwhile): do not run it again.

A lease is kept alive by a heartbeat thread (every ``ttl / 4`` s) and expires ``ttl`` s
(default 60) after the last beat, after which any scheduler takes it over. A lease whose
owner ran on this machine and has exited (a SIGKILLed scheduler) is taken over at once, so
rerunning a killed command resumes immediately. Owners are ``<machine tag>:<pid>:<nonce>``;
the machine tag hashes hostname, boot id and PID namespace (no hostname is stored).
Expiry uses the schedulers' clocks: keep the machines' clocks in sync (NTP), as usual.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Engine

from suite import db

log = logging.getLogger(__name__)


class Claim(enum.Enum):
    CLAIMED = "claimed"
    HELD = "held"
    DONE = "done"


Fingerprint = tuple | None  # what a run row looked like; None: no row


def _machine_tag() -> str:
    parts = [socket.gethostname()]
    for p in ("/proc/sys/kernel/random/boot_id",):
        try:
            parts.append(Path(p).read_text().strip())
        except OSError:
            pass
    try:
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        pass
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine (one we may not signal counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fingerprints(engine: Engine, keys: list[str]) -> dict[str, Fingerprint]:
    """A comparable snapshot of each key's run row (absent keys are missing)."""
    out: dict[str, Fingerprint] = {}
    cols = (db.Run.run_key, db.Run.id, db.Run.status, db.Run.attempts, db.Run.finished_at)
    with db.session(engine) as s:
        for i in range(0, len(keys), 500):
            for row in s.execute(select(*cols).where(db.Run.run_key.in_(keys[i:i + 500]))):
                out[row[0]] = tuple(row[1:])
    return out


class Leases:
    """This scheduler's leases on one database (thread-safe)."""

    def __init__(self, engine: Engine, ttl: float = 60.0):
        self.engine = engine
        self.ttl = float(ttl)
        self.machine = _machine_tag()
        self.owner = f"{self.machine}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._beat is None:
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="leases")
            self._beat.start()

    def close(self) -> None:
        """Stop the heartbeat and give back every lease still held (unfinished runs)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with db.session(self.engine) as s:
            s.execute(delete(db.Lease).where(db.Lease.owner == self.owner))
        with self._lock:
            self._held.clear()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 4):
            try:
                self.beat()
            except Exception as e:  # a DB hiccup: the next beat tries again
                log.warning("lease heartbeat failed: %s", e)

    def beat(self) -> None:
        now = db.utcnow()
        with db.session(self.engine) as s:
            s.execute(update(db.Lease).where(db.Lease.owner == self.owner)
                      .values(heartbeat_at=now, expires_at=now + timedelta(seconds=self.ttl)))

    # -- claiming ----------------------------------------------------------------------------
    def claim(self, run_key: str, seen: Fingerprint) -> Claim:
        """Try to lease ``run_key``; ``seen`` is its run row's fingerprint when this scheduler
        decided to run it (a different one now means someone else ran it meanwhile)."""
        with self._lock:
            if run_key in self._held:  # another thread of this scheduler runs it
                return Claim.HELD
        now = db.utcnow()
        expires = now + timedelta(seconds=self.ttl)
        L = db.Lease
        with db.session(self.engine) as s:
            # a write first: SQLite takes its write lock here, for the whole transaction
            got = s.execute(update(L).where(L.run_key == run_key)
                            .where((L.owner == self.owner) | (L.expires_at < now))
                            .values(owner=self.owner, acquired_at=now, heartbeat_at=now,
                                    expires_at=expires)).rowcount
            if not got:  # RETURNING: rowcount is not reliable for ON CONFLICT inserts
                got = s.execute(self._insert(run_key, now, expires)).first() is not None
            if not got:
                holder = s.execute(select(L.owner).where(L.run_key == run_key)).scalar()
                if holder is None or not self._owner_gone(holder):
                    return Claim.HELD
                got = s.execute(update(L).where(L.run_key == run_key, L.owner == holder)
                                .values(owner=self.owner, acquired_at=now, heartbeat_at=now,
                                        expires_at=expires)).rowcount
                if not got:
                    return Claim.HELD
            if fingerprints_in(s, run_key) != seen:
                s.execute(delete(L).where(L.run_key == run_key, L.owner == self.owner))
                return Claim.DONE
        with self._lock:
            self._held.add(run_key)
        return Claim.CLAIMED

    def _insert(self, run_key: str, now: Any, expires: Any) -> Any:
        values = dict(run_key=run_key, owner=self.owner, acquired_at=now, heartbeat_at=now,
                      expires_at=expires)
        name = self.engine.dialect.name
        if name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        elif name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            raise NotImplementedError(f"leases need SQLite or PostgreSQL, not {name}")
        return (insert(db.Lease).values(**values).on_conflict_do_nothing()
                .returning(db.Lease.run_key))

    def _owner_gone(self, owner: str) -> bool:
        """True when ``owner`` ran on this machine and that process has exited."""
        machine, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        return machine == self.machine and pid.isdigit() and not pid_alive(int(pid))

    def release(self, run_key: str) -> None:
        with db.session(self.engine) as s:
            s.execute(delete(db.Lease).where(db.Lease.run_key == run_key,
                                             db.Lease.owner == self.owner))
        with self._lock:
            self._held.discard(run_key)

    def record(self, result: dict[str, Any]) -> None:
        """Write a run's result and give back its lease, in one transaction."""
        key = result["spec"]["run_key"]
        with db.session(self.engine) as s:
            db.write_run(s, result)
            s.execute(delete(db.Lease).where(db.Lease.run_key == key,
                                             db.Lease.owner == self.owner))
        with self._lock:
            self._held.discard(key)

    @property
    def held(self) -> set[str]:
        with self._lock:
            return set(self._held)


def fingerprints_in(s: Any, run_key: str) -> Fingerprint:
    row = s.execute(select(db.Run.id, db.Run.status, db.Run.attempts, db.Run.finished_at)
                    .where(db.Run.run_key == run_key)).first()
    return tuple(row) if row is not None else None
