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
