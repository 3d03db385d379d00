"""A machine-wide shared/exclusive lock around runs: timing claims run alone.

Every run on this machine holds the lock *shared*; a run whose task is registered with
``exclusive=True`` (the kernel and loader benchmarks: their numbers are ratios of timings
that any other run on the same cores would distort) holds it *exclusive*, so it starts only
when the runs in flight have finished and no other run starts until it is done. This works
across slots of one scheduler and across schedulers (two ``run`` commands) on one machine.

It is two ``flock(2)`` files, so a process that dies releases its locks. Writer preference:
an exclusive run first takes the *gate* and keeps it while it waits, and a shared run passes
the gate before it takes the lock, so a stream of short runs cannot starve a benchmark.

The files live in ``$POOLREPRO_RUN_LOCK`` (a directory) or ``<tmp>/poolrepro-<uid>/``.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV = "POOLREPRO_RUN_LOCK"


def lock_dir() -> Path:
    d = os.environ.get(ENV) or os.path.join(tempfile.gettempdir(), f"poolrepro-{os.getuid()}")
    Path(d).mkdir(parents=True, exist_ok=True)
    return Path(d)


@contextmanager
def hold(exclusive: bool) -> Iterator[None]:
    """Hold the machine's run lock for one run: shared, or exclusive (alone)."""
    d = lock_dir()
    gate = os.open(d / "gate.lock", os.O_RDWR | os.O_CREAT, 0o666)
    runs = os.open(d / "runs.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(gate, fcntl.LOCK_EX)
        if exclusive:
            fcntl.flock(runs, fcntl.LOCK_EX)  # waits for the runs in flight; gate still held
        else:
            fcntl.flock(runs, fcntl.LOCK_SH)
            fcntl.flock(gate, fcntl.LOCK_UN)
        yield
    finally:
        os.close(runs)  # closing releases the flocks
        os.close(gate)
