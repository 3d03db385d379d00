"""Charts over the results DB, one module per paper (``dashboard/charts/<paper>.py``).

A chart builder takes the read-only results engine and the loaded claims and returns an
Altair chart, or ``None`` when the database holds no data for it yet. The same builders feed
the dashboard's Analysis page and the PNG figures the README shows::

    python -m dashboard.charts                       # every chart -> dashboard/figures/*.png
    python -m dashboard.charts --only 'poolskip/*'   # a subset, by glob on the chart name
    python -m dashboard.charts --list

Register a builder with :func:`chart`; its module is found by :func:`load_all` (every
module in this package is imported). No torch: Altair, pandas and ``suite`` queries only.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIGURES = Path(__file__).resolve().parent.parent / "figures"


@dataclass(frozen=True)
class ChartSpec:
    name: str  # "<paper>/<what>", also the PNG's file name (slashes become "__")
    paper: str
    title: str
    build: Callable[[Any, list], Any]  # (engine, claims) -> alt.Chart | None
    readme: bool = True  # rendered to dashboard/figures/ for the README

    @property
    def filename(self) -> str:
        return self.name.replace("/", "__") + ".png"


CHARTS: dict[str, ChartSpec] = {}


def chart(name: str, *, title: str, readme: bool = True):
    """Decorator: register ``fn(engine, claims) -> alt.Chart | None`` under ``name``."""
    def deco(fn):
        if name in CHARTS:
            raise ValueError(f"chart {name!r} is registered twice")
        CHARTS[name] = ChartSpec(name, name.split("/")[0], title, fn, readme)
        return fn
    return deco


def load_all() -> dict[str, ChartSpec]:
    """Import every chart module of this package (each registers its charts)."""
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    return CHARTS


def render(spec: ChartSpec, engine, claims, out_dir: Path) -> Path | None:
    """Build one chart and save it as PNG (vl-convert); ``None`` when it has no data."""
    c = spec.build(engine, claims)
    if c is None:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / spec.filename
    c.save(str(path), scale_factor=2)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m dashboard.charts",
        description="Render the README's charts from the results DB to PNG files.",
        epilog="examples:\n  python -m dashboard.charts\n"
               "  python -m dashboard.charts --only 'poolskip/*' --db sqlite:///results.db\n"
               "  python -m dashboard.charts --list",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", default=None, help="results DB URL (default $POOLREPRO_DB or "
                                               "sqlite:///results.db)")
    ap.add_argument("--tasks", default="tasks.toml", help="claims file")
    ap.add_argument("--out", default=str(FIGURES), help="output folder (dashboard/figures)")
    ap.add_argument("--only", default="*", help="glob on chart names, e.g. 'poolskip/*'")
    ap.add_argument("--list", action="store_true", help="list the registered charts")
    args = ap.parse_args(argv)
    specs = [s for n, s in sorted(load_all().items()) if fnmatch.fnmatchcase(n, args.only)]
    if args.list:
        for s in specs:
            print(f"{s.name:40s} {s.title}")
        return 0
    from suite import db
    from suite.claims import load_claims
    from suite.errors import SuiteError

    try:
        engine = db.connect(args.db, readonly=True)
        _, claims = load_claims(args.tasks)
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for s in specs:
        if not s.readme:
            continue
        path = render(s, engine, claims, Path(args.out))
        print(f"{s.name}: " + (f"wrote {path}" if path else "no data yet, skipped"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
