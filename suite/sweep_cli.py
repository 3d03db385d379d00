"""``python -m suite sweep``: tune a claim's arms with Optuna (see :mod:`suite.sweep`), and the
``--use-best`` / ``--storage`` options that ``run``, ``plan`` and ``report`` share.

    python -m suite sweep CLAIM_ID [--arm treatment|baseline|both] [--trials N] [--tier T]
"""

from __future__ import annotations

import argparse
from typing import Any

from suite.errors import SuiteError

EXAMPLES = """
        python -m suite sweep suite/mini/tuned-softpool-vs-max     # both arms, the table's budget
        python -m suite sweep suite/mini/tuned-softpool-vs-max --trials 12   # grow both studies
        python -m suite sweep suite/smoke/softpool-vs-max --tier smoke --arm treatment --no-mlflow
        python -m suite sweep CLAIM --storage postgresql+psycopg://me@db/optuna --jobs 2 \\
            --devices cuda:0,cuda:1
        python -m suite run --tier mini --claim 'suite/mini/tuned-*' --use-best  # tuned runs
        python -m suite report --tier mini --claim 'suite/mini/tuned-*' --use-best
        optuna-dashboard sqlite:///optuna.db   # browse the studies (pip install 'poolrepro[sweep]')

Rerunning a killed sweep continues where it stopped: finished trials are kept, the trial in
flight is retried with the same point and its run resumes from its last epoch."""


def add_storage_flags(p: argparse.ArgumentParser, use_best: bool = True) -> None:
    """``--storage`` (and ``--use-best``) for ``sweep``, ``run``, ``plan`` and ``report``."""
    p.add_argument("--storage", default=None,
                   help="Optuna storage, an SQLAlchemy URL (default: $POOLREPRO_OPTUNA or "
                        "sqlite:///optuna.db); never the results DB itself")
    if use_best:
        p.add_argument("--use-best", action="store_true",
                       help="run each arm of a claim with a sweep at its study's best point "
                            "(`python -m suite sweep` first; both arms need equal budgets)")


def add_sweep_parser(sub, verb_factory) -> argparse.ArgumentParser:
    """Register ``sweep`` on the CLI's subparsers."""
    from suite.specs import TIERS

    p = verb_factory("sweep", "tune a claim's arms with Optuna, the same budget per arm, on a "
                              "split held out of the training set")
    p.epilog = "examples:" + EXAMPLES
    p.add_argument("claim_id", metavar="CLAIM_ID", help="the claim to tune (see `ls claims`)")
    p.add_argument("--arm", choices=("treatment", "baseline", "both"), default=None,
                   help="which arm's study to run (default: both for a delta claim, else "
                        "treatment)")
    p.add_argument("--trials", type=int, default=None,
                   help="finished trials per arm (default: the sweep table's `trials`); a "
                        "study that has them already runs nothing")
    p.add_argument("--tier", choices=TIERS, default="mini",
                   help="which tier's recipe and sweep table (default mini)")
    add_storage_flags(p, use_best=False)
    p.add_argument("--devices", default="cpu", help="device pool: cpu, or cuda:0,cuda:1")
    p.add_argument("--jobs", type=int, default=1, help="trials at a time (default 1)")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: warm worker processes (default); ray: each trial a Ray task")
    p.add_argument("--address", default=None,
                   help="--backend ray: 'auto', 'HOST:6379' or 'ray://HOST:10001' "
                        "(default: a private local cluster)")
    p.add_argument("--workdir", default=".cache/poolrepro",
                   help="spec files and checkpoints (default .cache/poolrepro)")
    p.add_argument("--timeout-scale", type=float, default=1.0,
                   help="multiply the claim's timeout_s (slow machines)")
    p.add_argument("--no-mlflow", action="store_true", help="do not mirror trials to MLflow")
    p.add_argument("--mlflow-uri", default=None, help="MLflow tracking URI")
    p.add_argument("--no-progress", action="store_true", help="plain lines, no progress bars")
    return p


def _find(claims: list, claim_id: str):
    by_id = {c.id: c for c in claims}
    if claim_id in by_id:
        return by_id[claim_id]
    from registry import did_you_mean

    hint = did_you_mean(claim_id, list(by_id))
    raise SuiteError(f"sweep: no claim {claim_id!r}"
                     + (f"; did you mean {' or '.join(repr(h) for h in hint)}?" if hint else "")
                     + " (`python -m suite ls claims`)")


def cmd_sweep(args) -> int:
    from suite import db, sweep
    from suite.claims import load_claims
    from suite.scheduler import parse_devices
    from suite.tracking import make_mirror
    from suite.ui import SweepProgress, console

    if args.trials is not None and args.trials < 1:
        raise SuiteError(f"--trials must be ≥ 1, got {args.trials}")
    if args.jobs < 1:
        raise SuiteError(f"--jobs must be ≥ 1, got {args.jobs}")
    try:
        parse_devices(args.devices)
    except ValueError as e:
        raise SuiteError(str(e)) from e
    papers, claims = load_claims(args.tasks)
    claim = _find(claims, args.claim_id)
    sweep.sweep_of(claim, args.tier)  # a clear error before anything is opened
    arms = sweep.arms_of(claim, args.tier)
    if args.arm in ("treatment", "baseline"):
        sweep.arm_form(claim, args.tier, args.arm)  # no baseline in an absolute claim
        arms = (args.arm,)
    storage = sweep.resolve_storage(args.storage, db.resolve_url(args.db))
    engine = db.connect(args.db)
    db.record_claims(engine, [claim])
    mirror = make_mirror(not args.no_mlflow, args.mlflow_uri)
    backend = sweep.TrialBackend(engine, devices=args.devices, jobs=args.jobs,
                                 workdir=args.workdir, mirror=mirror,
                                 timeout_scale=args.timeout_scale,
                                 paper_of=lambda cid: claim.paper,
                                 backend=args.backend, address=args.address)
    trials = args.trials or claim.form(args.tier).sweep.trials
    console.print(f"sweeping {claim.id} at tier {args.tier}: arm(s) {', '.join(arms)}, "
                  f"{trials} trials each, storage {storage}")
    with backend, SweepProgress(enabled=not args.no_progress) as ui:
        sweeper = sweep.Sweeper(claim, args.tier, arms, storage, backend, trials=trials,
                                on_trial=ui)
        sweeper.run()
    print_studies([claim], args.tier, storage)
    return 0


def print_studies(claims: list, tier: str, storage: str | None, results_url: str | None = None,
                  in_report: bool = False) -> None:
    """A table of each study of ``claims`` at ``tier``: trials by state, best value and point,
    and parameter importances (Optuna's default evaluator). ``in_report``: print nothing when
    no study exists, and a one-line note instead of failing when the storage cannot be read."""
    from rich.markup import escape
    from rich.table import Table

    from suite import sweep
    from suite.ui import console, out

    with_sweep = [c for c in claims if c.form(tier) is not None and c.form(tier).sweep]
    if not with_sweep:
        return
    try:
        url = sweep.resolve_storage(storage, results_url)
        infos = [i for c in with_sweep
                 for i in sweep.study_infos(c, tier, url, importances=True)]
    except SuiteError as e:
        if not in_report:
            raise
        console.print(f"[yellow]sweeps not shown[/]: {e}")
        return
    if in_report and not any(i.exists for i in infos):
        return
    t = Table(title=f"sweeps, tier {tier} ({url})")
    for h in ("claim", "arm", "trials ok/pruned/failed", "best", "best point", "importance"):
        t.add_column(h, overflow="fold")
    for i in infos:
        if not i.exists:
            t.add_row(escape(i.claim), i.arm, "not run", "–", "–", "–")
            continue
        best = "–" if i.best_value is None else f"{i.metric} {i.best_value:.4g} (#{i.best_trial})"
        point = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(i.best_params.items()))
        imp = ", ".join(f"{k} {v:.2f}" for k, v in i.importances.items()) or "–"
        t.add_row(escape(i.claim), i.arm, f"{i.complete}/{i.pruned}/{i.failed}", best,
                  escape(point) or "–", escape(imp))
    out.print(t)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def use_best(args, claims: list, tier: str) -> tuple[list, dict[str, Any]]:
    """``claims`` rewritten to each arm's best point when ``--use-best`` is given."""
    if not getattr(args, "use_best", False):
        return claims, {}
    from suite import db, sweep
    from suite.ui import console

    url = sweep.resolve_storage(args.storage, db.resolve_url(args.db))
    tuned, tunings = sweep.tuned_claims(claims, tier, url)
    if not tunings:
        console.print(f"[yellow]--use-best: none of the selected claims has a sweep at tier "
                      f"{tier}; running them as written[/]")
    for cid, t in tunings.items():
        console.print(f"{cid}: {t.note()}")
    return tuned, tunings
