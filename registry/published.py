"""The papers' published numbers as the project keeps them (``registry/published.toml``).

A copy of the research notes' table of published numbers, with their sources, in which
every row has a stable ``ref`` (``<paper>/<table>/<dataset>/<model>/<metric>``). Claims in
tasks.toml point at rows with ``published.ref`` (one row) or ``published.refs`` (several,
e.g. both arms of a delta claim). Standard library only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import tomllib

PATH = Path(__file__).with_name("published.toml")


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    with PATH.open("rb") as f:
        return tomllib.load(f)


def rows() -> list[dict[str, Any]]:
    """Every published number (one dict per row, with its ``ref``)."""
    return list(_load()["row"])


def by_ref() -> dict[str, dict[str, Any]]:
    return {r["ref"]: r for r in rows()}


def recipes() -> list[dict[str, Any]]:
    """Training recipes and module definitions read from the authors' code."""
    return list(_load().get("recipe", []))
