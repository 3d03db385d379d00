"""``python -m suite data``: prepare FFCV ``.beton`` files of registry datasets, list them.

    python -m suite data prepare fashion_mnist_32 --dataset-arg train_subset=2000
    python -m suite data prepare --tier mini            # every dataset the mini tier trains on
    python -m suite data ls

The files, their manifests and how a loader finds and verifies them are described in
:mod:`registry.datasets.beton`. ``params.loader = "auto"`` (the default) then trains through
FFCV wherever it imports and the run's exact dataset (name + args) was prepared.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from suite.errors import SuiteError

EXAMPLES = """
        python -m suite data prepare fashion_mnist_32
        python -m suite data prepare fmnist32 -a train_subset=2000 -a test_subset=1000
        python -m suite data prepare cifar10 --dataset-arg root=~/data --cache-dir /fast/beton
        python -m suite data prepare --tier mini --paper poolskip   # what those runs train on
        python -m suite data ls"""


def _dataset_arg(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"--dataset-arg takes KEY=VALUE, got {text!r}")
    try:
        value = json.loads(raw)  # 2000, 0.5, true, null, "x", [1, 2]
    except json.JSONDecodeError:
        value = raw  # a bare string such as a path
    return key.strip(), value


def add_data_parser(sub, verb_factory) -> argparse.ArgumentParser:
    """Register ``data`` (with ``prepare`` and ``ls``) on the CLI's subparsers."""
    p = verb_factory("data", "prepare FFCV .beton files of datasets (fast loaders), list them")
    dsub = p.add_subparsers(dest="data_verb", metavar="ACTION", required=True)

    def cache_flag(q: argparse.ArgumentParser) -> None:
        q.add_argument("--cache-dir", default=None,
                       help="where .beton files live (default: $POOLREPRO_CACHE or "
                            ".cache/poolrepro/beton); training looks in $POOLREPRO_CACHE")

    q = dsub.add_parser("prepare", help="write (or confirm) the .beton of each split",
                        description="Write the .beton of each split of DATASET as the registry "
                                    "builds it with the given args; a file whose source has "
                                    "not changed is only re-verified.",
                        epilog="examples:" + EXAMPLES,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    q.add_argument("dataset", nargs="?", help="registry dataset name (see `ls datasets`)")
    q.add_argument("--dataset-arg", "-a", action="append", type=_dataset_arg, default=[],
                   metavar="KEY=VALUE", help="a dataset argument (repeatable), JSON-typed: "
                                             "train_subset=2000, root=/data, verify=false")
    q.add_argument("--tier", default=None,
                   help="instead of DATASET: every (dataset, args) a tier's train_eval runs use")
    q.add_argument("--paper", help="with --tier: only this paper's claims")
    q.add_argument("--claim", help="with --tier: only claims matching this glob")
    q.add_argument("--workers", type=int, default=None, help="writer processes (default: cores)")
    q.add_argument("--force", action="store_true", help="rewrite even up-to-date files")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    cache_flag(q)
    q = dsub.add_parser("ls", help="list prepared .beton files and whether they verify")
    q.add_argument("--verify", action="store_true", help="also checksum each file")
    cache_flag(q)
    return p


def _targets(args) -> list[tuple[str, dict[str, Any]]]:
    if args.tier:
        if args.dataset or args.dataset_arg:
            raise SuiteError("data prepare: give DATASET [--dataset-arg ...] or --tier, not both")
        from suite.claims import load_claims, select
        from suite.plan import make_plan

        _, claims = load_claims(args.tasks)
        claims = select(claims, paper=args.paper, claim=args.claim, tag=None)
        seen: dict[str, tuple[str, dict[str, Any]]] = {}
        for r in make_plan(claims, args.tier).runs:
            if r.task in ("train_eval", "train", "loader_bench"):
                seen.setdefault(json.dumps([r.dataset, r.dataset_args], sort_keys=True),
                                (r.dataset, dict(r.dataset_args)))
        if not seen:
            raise SuiteError(f"data prepare --tier {args.tier}: no train_eval runs match")
        return list(seen.values())
    if not args.dataset:
        raise SuiteError("data prepare: name a DATASET (see `python -m suite ls datasets`) "
                         "or pass --tier")
    return [(args.dataset, dict(args.dataset_arg))]


def cmd_data(args) -> int:
    from registry import UnknownNameError
    from registry.datasets import beton
    from registry.datasets.base import DatasetError

    try:
        if args.data_verb == "ls":
            return _ls(beton, beton.beton_dir(args.cache_dir), args.verify)
        return _prepare(args, beton)
    except (DatasetError, UnknownNameError) as e:
        raise SuiteError(str(e)) from e
    except TypeError as e:  # a --dataset-arg the factory does not take
        raise SuiteError(f"data prepare: bad --dataset-arg ({e}); see the dataset's "
                         f"arguments in registry/datasets/") from e


def _prepare(args, beton) -> int:
    from rich.markup import escape
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.table import Table

    import registry
    from registry.datasets.base import DatasetError
    from suite.ui import console, out

    targets = _targets(args)
    failed: list[str] = []
    if not beton.ffcv_installed():
        raise SuiteError(f"FFCV is not installed; {beton.ENABLE_HINT}")
    d = beton.beton_dir(args.cache_dir)
    console.print(f"importing ffcv (compiles with numba; a few seconds)… cache: {d.resolve()}")
    beton.import_ffcv()
    t = Table(title=f".beton files in {d}")
    for h in ("dataset", "args", "split", "items", "shape", "status", "file", "sha256"):
        t.add_column(h, overflow="fold")
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                        disable=args.no_progress)
    with progress:
        for name, dargs in targets:
            name = registry.DATASETS.resolve(name)

            def on_split(split: str, n: int, name=name):
                task = progress.add_task(f"{name} {split}", total=n)
                return lambda done, total: progress.update(task, completed=done)

            console.print(f"loading {name} {json.dumps(dargs, sort_keys=True)}")
            try:
                results = beton.prepare(name, dargs, args.cache_dir, args.workers, args.force,
                                        on_split)
            except DatasetError as e:
                if not args.tier:
                    raise
                failed.append(name)  # --tier: prepare what is here, name what is not
                t.add_row(name, json.dumps(dargs, sort_keys=True), "", "", "",
                          f"[yellow]not prepared[/]: {escape(str(e))}", "", "")
                continue
            for r in results:
                t.add_row(r["dataset"], json.dumps(r["dataset_args"], sort_keys=True),
                          r["split"], str(r["count"]), "×".join(map(str, r["item_shape"])),
                          r["status"], os.path.basename(r["path"]), r["sha256"][:12])
    out.print(t)
    env = os.environ.get(beton.CACHE_ENV)
    if args.cache_dir and beton.beton_dir(None).resolve() != d.resolve():
        console.print(f"[yellow]note[/]: runs find these files only with "
                      f"{beton.CACHE_ENV}={d.resolve()} (now: {env or 'unset'})")
    console.print("runs with params.loader = 'auto' (default) or 'ffcv' and these exact "
                  "dataset args now load through FFCV")
    if failed:
        console.print(f"[yellow]{len(failed)} dataset(s) not prepared[/] "
                      f"({', '.join(sorted(set(failed)))}): see the table for the fix")
    return 1 if failed else 0


def _ls(beton, d, verify: bool) -> int:
    from rich.table import Table

    from registry.datasets.base import DatasetError
    from suite.ui import out

    rows = beton.read_manifests(d)
    t = Table(title=f".beton files in {d} ({len(rows)})")
    for h in ("dataset", "args", "split", "items", "MB", "created", "file", "check"):
        t.add_column(h, overflow="fold")
    for path, m in rows:
        check = "–"
        if verify:
            try:
                beton.verify_beton(path, m)
                check = "[green]ok[/]"
            except DatasetError as e:
                check = f"[red]{e}[/]"
        elif not path.is_file():
            check = "[red]missing[/]"
        t.add_row(str(m.get("dataset")), json.dumps(m.get("dataset_args"), sort_keys=True),
                  str(m.get("split")), str(m.get("count")), f"{m.get('size', 0) / 1e6:.1f}",
                  str(m.get("created")), path.name, check)
    out.print(t)
    return 0
