"""Shared test fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `pytest` without an installed package or `python -m`
    sys.path.insert(0, str(REPO))


@pytest.fixture
def repo_root() -> Path:
    return REPO


@pytest.fixture
def db_url(tmp_path) -> str:
    """A fresh SQLite results DB URL in tmp_path (the file does not exist yet)."""
    return f"sqlite:///{tmp_path / 'results.db'}"


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op torch thread for a module of micro workloads: on a shared 2-core machine,
    two OpenMP threads contending with other processes run small convolutions up to 20-30x
    slower, and one thread is deterministic. Use with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
