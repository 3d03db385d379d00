"""``python -m suite``: list, validate, plan, run, report, export and import.

Every verb's ``--help`` ends with worked examples. Errors in input (tasks.toml, flags, DB
URLs, files) print one clear message and exit with status 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.specs import TIERS
from suite.sweep_cli import add_storage_flags, add_sweep_parser, cmd_sweep, use_best

EXAMPLES = {
    "ls": """
        python -m suite ls claims --paper allconv
        python -m suite ls models          # with parameter counts and FLOPs
        python -m suite ls pools
        python -m suite ls papers datasets tasks""",
    "validate": """
        python -m suite validate                 # checks tasks.toml, exit 0 when valid
        python -m suite validate --tasks my.toml --shallow   # names only, no torch import""",
    "plan": """
        python -m suite plan --tier mini --paper poolskip
        python -m suite plan --tier smoke --claim 'allconv/*' --seeds 0,1
        python -m suite plan --tier full --emit specs/   # RunSpec JSON files for a GPU box""",
    "run": """
        python -m suite run --tier mini --paper softpool
        python -m suite run --tier smoke --claim 'smoke/*' --db sqlite:///tmp.db --no-mlflow
        python -m suite run --tier full --devices cuda:0,cuda:1 --jobs 2
        python -m suite run --tier mini --tag table3 --seeds 0,1,2 --export results.jsonl
        python -m suite run --tier smoke --backend ray      # on a private local Ray cluster
        python -m suite run --tier full --backend ray --address auto --gpus-per-run 0.5 \\
            --db postgresql+psycopg://me@dbhost/poolrepro   # a Ray cluster, a shared DB
        python -m suite run --tier mini --paper allconv --until-decided --max-seeds 12""",
    "report": """
        python -m suite report --tier mini
        python -m suite report --tier mini --markdown > verdicts.md
        python -m suite report --paper s3net --json
        python -m suite report --tag bench --metrics   # the kernel benchmark's ratio table
        python -m suite report --tier mini --markdown --write-readme   # README's table
        python -m suite report --paper poolskip --cost   # device-seconds per claim
        python -m suite report --tier full --claim 'poolskip/t1/*' --cost --probe   # est. hours""",
    "export": """
        python -m suite export results.jsonl
        python -m suite export - --db postgresql+psycopg://me@localhost/poolrepro | gzip""",
    "import": """
        python -m suite import results.jsonl              # rebuild a DB from an export
        python -m suite import runs.jsonl --db sqlite:///results.db   # a GPU worker's results""",
    "show": """
        python -m suite show allconv/c10/all_cnn_c-vs-model_c          # mini tier
        python -m suite show 'allconv/c10/*-vs-*' --tier smoke
        python -m suite --db sqlite:///out/results.db show s3net/params/k12_d40""",
    "regression": """
        python -m suite regression check          # rerun the subset, compare (nox -s regression)
        python -m suite regression update         # after a deliberate recipe change
        python -m suite regression show           # the committed reference""",
    "data": """
        python -m suite data prepare fashion_mnist_32 --dataset-arg train_subset=2000
        python -m suite data prepare --tier mini      # every dataset the mini tier trains on
        python -m suite data ls --verify""",
}


def _examples(verb: str) -> str:
    return "examples:" + textwrap.dedent(EXAMPLES.get(verb, ""))  # a verb module sets its own


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--seeds takes comma-separated integers like 0,1,2; got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError("--seeds needs at least one seed")
    return seeds


def _devices(text: str) -> str:
    from suite.scheduler import parse_devices

    try:
        parse_devices(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e).removeprefix("--devices: ")) from None
    return text


def _device(text: str) -> str:
    from suite.claims import DEVICE_RE

    if not DEVICE_RE.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device; use auto, cpu, cuda or "
                                         f"cuda:N")
    return text


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _float_arg(text: str, ok, need: str) -> float:
    """A float CLI value that must satisfy ``ok``; ``need`` says how (``"> 0"``)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not ok(v):  # NaN fails every bound
        raise argparse.ArgumentTypeError(f"expected a number {need}, got {v}")
    return v


def _positive_float(text: str) -> float:
    return _float_arg(text, lambda v: v > 0, "> 0")


def _nonneg_float(text: str) -> float:
    return _float_arg(text, lambda v: v >= 0, "≥ 0")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m suite",
        description="poolrepro: reproduce the published claims of PoolSkip, SoftPool, "
                    "All-CNN and S3Net, record every run, and judge each claim.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m suite ls claims\n  python -m suite run --tier mini\n"
               "  python -m suite report --tier mini\n\nRun `python -m suite VERB --help` "
               "for a verb's options and examples.",
    )
    ap.add_argument("--tasks", default="tasks.toml", help="claims file (default: tasks.toml)")
    ap.add_argument("--db", default=None,
                    help="results DB as an SQLAlchemy URL or a SQLite path (default: "
                         "$POOLREPRO_DB or sqlite:///results.db)")
    sub = ap.add_subparsers(dest="verb", metavar="VERB", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=_examples(name),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.add_argument("--tasks", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.add_argument("--db", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        return p

    def filters(p: argparse.ArgumentParser, tier: bool = True) -> None:
        p.add_argument("--paper", help="only this paper id (see `ls papers`)")
        p.add_argument("--claim", help="only claims whose id matches this glob (comma = or)")
        p.add_argument("--tag", help="only claims with this tag")
        if tier:
            p.add_argument("--tier", choices=TIERS, default="mini",
                           help="smoke (synthetic, seconds), mini (real data on CPU, minutes) "
                                "or full (the paper's recipe); default mini")
            p.add_argument("--seeds", type=_seeds, help="override the claims' seeds, e.g. 0,1,2")

    p = verb("ls", "list papers, claims, models, pools, datasets or tasks")
    p.add_argument("what", nargs="*", default=["claims"],
                   choices=["papers", "claims", "models", "pools", "datasets", "tasks"])
    p.add_argument("--no-count", action="store_true",
                   help="ls models: skip counting parameters and FLOPs (faster)")
    filters(p, tier=False)

    p = verb("validate", "check tasks.toml: schema, names, arguments; exit 0 when valid")
    p.add_argument("--shallow", action="store_true",
                   help="check names only (no torch import, no argument signatures)")

    p = verb("plan", "show the runs a tier would execute (and which are already done)")
    filters(p)
    add_storage_flags(p)
    p.add_argument("--emit", metavar="DIR", help="write one RunSpec JSON per run into DIR")

    p = verb("run", "run the planned runs that are not done yet, record and judge them")
    filters(p)
    p.add_argument("--devices", type=_devices, default="cpu",
                   help="device pool: cpu, or cuda:0,cuda:1")
    p.add_argument("--jobs", type=_positive_int, default=None,
                   help="runs at a time (default: 1 locally; with --backend ray, as many as "
                        "the cluster has room for)")
    p.add_argument("--device", dest="device_override", type=_device, default=None,
                   help="force every run onto this device (default: the claim's, 'auto')")
    p.add_argument("--force", action="store_true", help="rerun even runs that are already ok")
    p.add_argument("--no-mlflow", action="store_true", help="do not mirror runs to MLflow")
    p.add_argument("--mlflow-uri", default=None,
                   help="MLflow tracking URI (default $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    p.add_argument("--workdir", default=".cache/poolrepro",
                   help="spec files and checkpoints (default .cache/poolrepro)")
    p.add_argument("--timeout-scale", type=float, default=1.0,
                   help="multiply every claim's timeout_s (slow machines)")
    p.add_argument("--export", metavar="PATH", help="after running, export all runs to PATH")
    p.add_argument("--no-progress", action="store_true", help="plain lines, no progress bars")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: warm worker processes on this machine (default); ray: one Ray "
                        "task per run on a Ray cluster (the 'ray' extra)")
    p.add_argument("--address", default=None,
                   help="--backend ray: 'auto' (the cluster this machine joined), "
                        "'HOST:6379' (a head node) or 'ray://HOST:10001' (Ray Client); "
                        "default: start a private local cluster")
    p.add_argument("--cpus-per-run", type=_positive_float, default=1.0,
                   help="--backend ray: CPUs each run asks for (default 1)")
    p.add_argument("--gpus-per-run", type=_nonneg_float, default=0.0,
                   help="--backend ray: GPUs each run asks for; 0.5 packs two runs on a GPU "
                        "(default 0)")
    p.add_argument("--cold", action="store_true",
                   help="a fresh worker process for every run (slower; the behaviour before "
                        "warm workers, for chasing state leaking between runs)")
    add_storage_flags(p)
    p.add_argument("--until-decided", action="store_true",
                   help="then give inconclusive claims more seeds, look by look, until decided "
                        "or --max-seeds; later looks use stricter intervals (alpha spending, "
                        "see suite/sequential.py)")
    p.add_argument("--max-seeds", type=_positive_int, default=None,
                   help="with --until-decided: at most this many seeds per claim (required)")

    p = verb("report", "table of claims × verdicts with n, mean and 95%% interval")
    filters(p)
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--json", action="store_true", help="print JSON (one object per claim)")
    p.add_argument("--metrics", action="store_true",
                   help="also print every metric of each claim's ok runs (mean ± std over "
                        "seeds), e.g. the kernel benchmark's ratio table")
    add_storage_flags(p)
    p.add_argument("--write-readme", nargs="?", const="README.md", metavar="PATH",
                   help="with --markdown: write the table between the verdict markers of PATH "
                        "(default README.md) instead of printing it; n/a and skipped rows are "
                        "counted, not listed")
    p.add_argument("--cost", action="store_true",
                   help="also print device-seconds spent per claim and, from a throughput "
                        "probe, the estimated device-hours of its full tier on this device")
    p.add_argument("--probe", action="store_true",
                   help="with --cost: measure each full-tier arm's training step now "
                        "(tasks/throughput.py; results cached in .cache/poolrepro/probe.json)")
    p.add_argument("--probe-device", type=_device, default="auto",
                   help="with --probe: the device to probe (auto = cuda:0 if present, else cpu)")
    p.add_argument("--probe-batch", type=_positive_int, default=128,
                   help="with --probe: largest probe batch (default 128; the recipe's batch "
                        "size when smaller)")

    p = verb("export", "write every run as one JSON line (sorted by run_key)")
    p.add_argument("path", nargs="?", default="results.jsonl", help="file, or - for stdout")

    p = verb("import", "load runs from JSON lines (an export, or a worker's runs.jsonl)")
    p.add_argument("paths", nargs="+", help="JSON-lines files")

    from suite.dataprep import add_data_parser

    add_data_parser(sub, verb)
    add_sweep_parser(sub, verb)
    from suite.show import add_show_parser

    add_show_parser(sub, verb)
    from suite.regression import add_regression_parser

    add_regression_parser(sub, verb)
    from suite.analyze import add_analyze_parser

    add_analyze_parser(sub, verb)
    return ap


# -- verbs ------------------------------------------------------------------------------
def _load(args) -> tuple[dict, list]:
    cat = _load_catalog(args)
    return cat.papers, cat.claims


def _load_catalog(args):
    """The tasks file's catalog with ``claims`` narrowed by --paper/--claim/--tag."""
    from dataclasses import replace

    from suite.claims import load_catalog, select

    cat = load_catalog(args.tasks)
    papers = cat.papers
    chosen = select(cat.claims, paper=getattr(args, "paper", None),
                    claim=getattr(args, "claim", None), tag=getattr(args, "tag", None))
    if getattr(args, "paper", None) and args.paper not in papers:
        from registry import did_you_mean

        hint = did_you_mean(args.paper, list(papers))
        raise SuiteError(f"--paper: no paper {args.paper!r} in {args.tasks}"
                         + (f"; did you mean {hint[0]!r}?" if hint else "")
                         + f" Papers: {', '.join(papers)}")
    return replace(cat, claims=chosen)


def cmd_ls(args) -> int:
    from rich.table import Table

    from suite.ui import out

    for what in args.what:
        if what == "claims":
            _, claims = _load(args)
            t = Table(title=f"claims ({len(claims)})")
            for h in ("id", "paper", "tiers", "source"):
                t.add_column(h, overflow="fold")
            for c in claims:
                t.add_row(c.id, c.paper, ",".join(t for t in TIERS if t in c.tiers), c.source)
            out.print(t)
        elif what == "papers":
            from suite.claims import load_claims

            papers, claims = load_claims(args.tasks)
            t = Table(title="papers")
            for h in ("id", "title", "venue", "claims"):
                t.add_column(h, overflow="fold")
            for p in papers.values():
                t.add_row(p.id, p.title, p.venue, str(sum(c.paper == p.id for c in claims)))
            out.print(t)
        else:
            _ls_registry(what, count=not args.no_count)
    return 0


def _ls_registry(what: str, count: bool) -> None:
    from rich.table import Table

    import registry
    from suite.ui import out
    from tasks import TASKS

    reg = {"models": registry.MODELS, "pools": registry.POOLS, "datasets": registry.DATASETS,
           "tasks": TASKS}[what]
    t = Table(title=f"{what} ({len(reg)})")
    t.add_column("name")
    t.add_column("aliases", overflow="fold")
    if what == "models" and count:
        t.add_column("params", justify="right")
        t.add_column("GFLOPs", justify="right")
        t.add_column("input")
    t.add_column("description", overflow="fold")
    infos = _model_infos(reg) if what == "models" and count else {}
    for e in reg:
        cells = [e.name, ", ".join(e.aliases)]
        if what == "models" and count:
            try:
                info = infos[e.name]
                if "error" in info:
                    raise RuntimeError(info["error"])
                flops = info.get("flops")
                cells += [f"{info.get('params', 0):,}",
                          f"{flops / 1e9:.3g}" if flops else "–",
                          "×".join(map(str, info.get("input_size", ())))]
            except Exception as ex:  # one broken model must not hide the list
                cells += ["error", str(ex)[:40], ""]
        cells.append(e.help)
        t.add_row(*cells)
    out.print(t)


def _model_infos(reg) -> dict[str, dict]:
    """Parameters and FLOPs of every model, cached in .cache/poolrepro/model_info.json and
    recounted whenever a file under registry/models or registry/pools changes."""
    import hashlib

    from rich.progress import track

    from registry.models.info import model_info
    from suite.ui import console

    root = Path(__file__).resolve().parent.parent / "registry"
    h = hashlib.sha256()
    for f in sorted([*root.glob("models/*.py"), *root.glob("pools/*.py")]):
        h.update(f.name.encode() + f.read_bytes())
    key = h.hexdigest()[:16]
    cache = Path(".cache/poolrepro/model_info.json")
    try:
        stored = json.loads(cache.read_text())
        if stored.get("key") == key:
            return stored["models"]
    except (OSError, ValueError):
        pass
    infos: dict[str, dict] = {}
    for e in track(list(reg), description="counting parameters and FLOPs", console=console,
                   transient=True):
        try:
            i = model_info(e.name)
            infos[e.name] = {"params": i["params"], "flops": i["flops"],
                             "input_size": list(i["input_size"])}
        except Exception as ex:  # one broken model must not hide the list
            infos[e.name] = {"error": str(ex)[:80]}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"key": key, "models": infos}))
    except OSError:
        pass
    return infos


def cmd_validate(args) -> int:
    from suite.claims import load_catalog
    from suite.ui import out

    cat = load_catalog(args.tasks)
    papers, claims = cat.papers, cat.claims
    if not args.shallow:
        from suite.deepcheck import deep_check

        deep_check(args.tasks, claims)
    n_forms = {t: sum(t in c.tiers for c in claims) for t in TIERS}
    out.print(f"[green]{args.tasks} is valid[/]: {len(papers)} papers, {len(claims)} claims "
              f"(forms: " + ", ".join(f"{k} {v}" for k, v in n_forms.items()) + ")"
              + (f", {len(cat.context)} context entries" if cat.context else ""))
    return 0


def cmd_plan(args) -> int:
    from rich.table import Table

    from suite import db
    from suite.plan import make_plan
    from suite.ui import out

    _, claims = _load(args)
    claims, _ = use_best(args, claims, args.tier)
    plan = make_plan(claims, args.tier, args.seeds)
    runs = plan.runs
    try:
        engine = db.connect(args.db, readonly=True)
        have = db.runs_by_key(engine, [r.run_key for r in runs])
    except Exception:  # no DB yet: nothing is done
        have = {}
    t = Table(title=f"plan: tier {args.tier}, {len(runs)} run(s)")
    for h in ("run_key", "claim", "arm", "seed", "model", "dataset", "status"):
        t.add_column(h, overflow="fold")
    for r in runs:
        row = have.get(r.run_key)
        t.add_row(r.run_key, r.claim_id, r.arm, str(r.seed), r.model, r.dataset,
                  row.status if row else "todo")
    out.print(t)
    for pc in plan.claims:
        if not pc.runs:
            out.print(f"[yellow]no runs[/] for {pc.claim.id}: {pc.reason}")
    if args.emit:
        d = Path(args.emit)
        d.mkdir(parents=True, exist_ok=True)
        for r in runs:
            (d / f"{r.run_key}.json").write_text(json.dumps(r.to_dict(), indent=1))
        out.print(f"wrote {len(runs)} spec file(s) to {d}/ — run each with "
                  f"`python -m suite.worker {d}/<run_key>.json --jsonl runs.jsonl`")
    return 0


def cmd_run(args) -> int:
    from suite import db
    from suite.plan import make_plan
    from suite.scheduler import Scheduler
    from suite.tracking import make_mirror
    from suite.ui import RunProgress, console

    if args.until_decided and args.max_seeds is None:
        raise SuiteError("--until-decided needs --max-seeds N (the most seeds per claim)")
    if args.max_seeds is not None and not args.until_decided:
        raise SuiteError("--max-seeds only applies with --until-decided")
    if args.until_decided and args.seeds:
        raise SuiteError("--until-decided extends each claim's own seeds (tasks.toml); "
                         "drop --seeds")
    papers, claims = _load(args)
    if not claims:
        console.print("[yellow]no claims match the filters[/]; see `python -m suite ls claims`")
        return 0
    if args.backend != "ray" and (args.address or args.gpus_per_run or
                                  args.cpus_per_run != 1.0):
        raise SuiteError("--address, --cpus-per-run and --gpus-per-run belong to "
                         "--backend ray; locally use --devices and --jobs")
    if args.backend == "ray":
        from suite.ray_backend import import_ray

        import_ray(local=args.address is None)  # a missing extra: an error before any run
    claims, tunings = use_best(args, claims, args.tier)
    plan = make_plan(claims, args.tier, args.seeds, args.device_override)
    engine = db.connect(args.db)
    db.record_claims(engine, claims)
    for pc in plan.claims:
        if not pc.runs:
            console.print(f"[yellow]not run[/] {pc.claim.id}: {pc.reason}")
    mirror = make_mirror(not args.no_mlflow, args.mlflow_uri)
    if mirror is None and not args.no_mlflow:
        console.print("[yellow]MLflow is not installed; runs are not mirrored "
                      "(pip install 'poolrepro[tracking]')[/]")
    paper_of = {c.id: c.paper for c in claims}
    with RunProgress(enabled=not args.no_progress) as ui, \
            Scheduler(engine, devices=args.devices, jobs=args.jobs, workdir=args.workdir,
                      mirror=mirror, paper_of=lambda cid: paper_of.get(cid, ""),
                      on_event=ui, timeout_scale=args.timeout_scale,
                      backend=args.backend, warm=not args.cold, address=args.address,
                      cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run) as sched:
        outcome = sched.run(plan.runs, force=args.force)
        if args.until_decided:
            from suite.sequential import extend_until_decided

            extend_until_decided(engine, sched, claims, args.tier, args.max_seeds,
                                 args.device_override, outcome, console)
    console.print(f"ran {len(outcome.ran)}: " + ", ".join(
        f"{s} {outcome.count(s)}" for s in ("ok", "error", "skipped", "timeout")) +
        f"; {len(outcome.skipped_ok)} already ok" +
        (f"; {len(outcome.elsewhere)} run by another scheduler meanwhile"
         if outcome.elsewhere else ""))
    _print_report(engine, claims, args.tier, args.seeds, tunings=tunings)
    if args.export:
        n = _export(engine, args.export)
        console.print(f"exported {n} run(s) to {args.export}")
    return 1 if outcome.count("error") or outcome.count("timeout") else 0


def _print_report(engine, claims, tier, seeds, markdown=False, as_json=False,
                  tunings=None, context=None) -> None:
    from suite import report
    from suite.ui import out, verdict_table

    notes = {cid: t.note() for cid, t in (tunings or {}).items()}
    rows = report.claim_rows(engine, claims, tier, seeds, tunings=notes)
    if as_json:
        for r in rows:  # one JSON object per line
            print(json.dumps(r.as_dict(), default=str))
        return
    if markdown:
        print(report.markdown(rows))
        return
    out.print(verdict_table(rows, title=f"verdicts, tier {tier}"))
    for r in rows:
        if r.tuning:
            out.print(f"{r.claim.id}: {r.tuning}")
    if context:
        from suite.ui import context_table

        table = context_table(report.context_rows(context, claims))
        if table is not None:
            out.print(table)


def cmd_report(args) -> int:
    from suite import db
    from suite.ui import console

    if args.write_readme and not args.markdown:
        raise SuiteError("--write-readme writes the Markdown table: add --markdown")
    cat = _load_catalog(args)
    written = cat.claims
    claims, tunings = use_best(args, written, args.tier)
    engine = db.connect(args.db)
    if args.write_readme:
        from suite import report

        rows = report.claim_rows(engine, claims, args.tier, args.seeds)
        n_na = sum(r.verdict.status == "n/a" for r in rows)
        n_skip = sum(r.verdict.status == "skipped" for r in rows)
        table = report.markdown(rows, hide=("n/a", "skipped"))
        if n_na or n_skip:
            table += (f"\n\nNot in the table: {n_skip} claim(s) skipped at this tier (their "
                      f"data or hardware is not here; each says why) and {n_na} with no "
                      f"{args.tier} form (n/a at this tier); `python -m suite report --tier "
                      f"{args.tier}` lists them with their reasons.")
        try:
            changed = report.write_readme(args.write_readme, table)
        except (OSError, ValueError) as e:
            raise SuiteError(f"--write-readme: {e}") from e
        console.print(f"{args.write_readme}: verdict table "
                      f"{'updated' if changed else 'already up to date'} "
                      f"({len(rows) - n_na - n_skip} claims, tier {args.tier})")
        return 0
    _print_report(engine, claims, args.tier, args.seeds, args.markdown, args.json,
                  tunings=tunings, context=cat.context)
    if args.metrics:
        _print_metrics(engine, claims, args.tier, args.seeds)
    if not (args.markdown or args.json):
        from suite.sweep_cli import print_studies

        print_studies(written, args.tier, args.storage, db.resolve_url(args.db),
                      in_report=True)
    if args.cost or args.probe:
        _print_cost(engine, claims, args)
    return 0


def _print_cost(engine, claims, args) -> None:
    from rich.table import Table

    from suite.cost import cost_rows, fmt_hours
    from suite.report import fmt_num
    from suite.ui import out

    rows = cost_rows(engine, claims, args.tier, args.seeds, probe=args.probe,
                     device=args.probe_device, batch_cap=args.probe_batch)
    if args.json:
        for r in rows:
            print(json.dumps({"cost": r.as_dict()}, default=str))
        return
    t = Table(title=f"cost, tier {args.tier}: device-seconds spent; full-tier estimate")
    for h in ("claim", "runs", "device-s", "img/s", "GFLOP/img", "full tier (est.)", "how"):
        t.add_column(h, overflow="fold",
                     justify="right" if h in ("runs", "device-s", "img/s", "GFLOP/img") else "left")
    for r in rows:
        t.add_row(r.claim, str(r.runs), f"{r.device_s:.0f}", fmt_num(r.images_per_s, 3),
                  fmt_num(r.gflops_per_image, 3), fmt_hours(r.full_hours), r.full_note)
    out.print(t)
    out.print(f"total device-seconds spent: {sum(r.device_s for r in rows):.0f} "
              f"(a run shared by two claims counts in each)")


def _print_metrics(engine, claims, tier, seeds) -> None:
    from rich.table import Table

    from suite import report
    from suite.ui import out

    for row in report.claim_rows(engine, claims, tier, seeds):
        table = report.metric_table(row)
        if not table:
            continue
        t = Table(title=f"{row.claim.id} — metrics of ok runs (tier {tier})")
        for h in ("arm", "metric", "mean", "std", "n"):
            t.add_column(h, justify="right" if h in ("mean", "std", "n") else "left")
        for cells in table:
            t.add_row(*cells)
        out.print(t)


def _export(engine, path: str) -> int:
    from suite import db

    runs = db.runs_by_key(engine)
    lines = [json.dumps(db.run_to_result(runs[k]), sort_keys=True, default=str)
             for k in sorted(runs)]
    text = "".join(line + "\n" for line in lines)
    if path == "-":
        sys.stdout.write(text)
    else:
        tmp = Path(f"{path}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return len(lines)


def cmd_export(args) -> int:
    from suite import db
    from suite.ui import console

    n = _export(db.connect(args.db), args.path)
    if args.path != "-":
        console.print(f"exported {n} run(s) to {args.path}")
    return 0


REQUIRED_SPEC = ("run_key", "claim_id", "tier", "arm", "seed", "task", "model", "dataset")


def parse_results(path: str) -> list[dict[str, Any]]:
    """Read and check every line first, so a bad file imports nothing."""
    from suite.specs import RUN_STATUSES

    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"import: no such file {path}")
    results = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if line.startswith("RESULT "):
            line = line[7:]
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            raise SuiteError(f"{path}:{i}: not JSON ({e.msg}); nothing was imported") from e
        spec = r.get("spec") if isinstance(r, dict) else None
        if not isinstance(spec, dict) or any(k not in spec for k in REQUIRED_SPEC):
            raise SuiteError(f"{path}:{i}: a result needs spec.{{{', '.join(REQUIRED_SPEC)}}}; "
                             f"nothing was imported")
        if r.get("status") not in RUN_STATUSES:
            raise SuiteError(f"{path}:{i}: status {r.get('status')!r} is not one of "
                             f"{', '.join(RUN_STATUSES)}; nothing was imported")
        from suite.specs import RunSpec

        try:
            key = RunSpec.from_dict(spec).run_key
        except TypeError as e:
            raise SuiteError(f"{path}:{i}: spec is not a RunSpec ({e})") from e
        if key != spec["run_key"]:
            raise SuiteError(f"{path}:{i}: run_key {spec['run_key']} does not match its config "
                             f"(expected {key}); the line was edited; nothing was imported")
        results.append(r)
    return results


def cmd_import(args) -> int:
    from suite import db
    from suite.ui import console

    batches = [parse_results(p) for p in args.paths]
    engine = db.connect(args.db)
    n = db.record_runs(engine, [r for results in batches for r in results])
    console.print(f"imported {n} run(s) into {engine.url}")
    return 0


def cmd_data(args) -> int:
    from suite.dataprep import cmd_data as run_data

    return run_data(args)


def cmd_analyze(args) -> int:
    from suite.analyze import cmd_analyze as run_analyze

    return run_analyze(args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from suite.regression import cmd_regression
    from suite.show import cmd_show

    handler = {"ls": cmd_ls, "validate": cmd_validate, "plan": cmd_plan, "run": cmd_run,
               "report": cmd_report, "export": cmd_export, "import": cmd_import,
               "data": cmd_data, "sweep": cmd_sweep, "show": cmd_show,
               "regression": cmd_regression, "analyze": cmd_analyze}[args.verb]
    try:
        return handler(args)
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs are recorded, rerun the same command to resume",
              file=sys.stderr)
        return 130
