"""``python -m suite regression``: guard the committed verdicts against code changes.

    python -m suite regression check     # nox -s regression (CI): rerun, compare, exit 1 on drift
    python -m suite regression update    # after a deliberate recipe change: rerun, rewrite, diff
    python -m suite regression show      # the committed reference

The subset is data: ``regression/subset.toml`` lists claim ids or globs (and the tier). The
reference, ``regression/reference.json``, is written only by ``update`` and holds, per claim,
its verdict, the run key and value of every committed seed (per arm) and, for each compared
quantity (the claim's metric per arm and, for a delta claim, the paired difference), the
committed mean and its **band**.

The band comes from the committed seeds' own spread, never from a hand-picked tolerance: a
rerun of the same n seeds whose values vary like the committed ones has a mean that differs
from the committed mean by a difference of two n-seed means, with standard error
``s·√(2/n)``; the band is ``mean ± t(1 − α/2, n − 1)·s·√(2/n)`` at ``α = 0.01`` (99%). A
zero-spread quantity (a parameter count) must match exactly. On the machine that wrote the
reference, the same seeds usually reproduce bit for bit; the band absorbs the float-order
drift of another CPU or library build.

``check`` fails (exit 1) when a claim's recipe changed (its run keys differ: it names the
fields), a run fails, a verdict changes, or a quantity leaves its band. It runs into a fresh
temporary DB unless ``--db`` names one whose ok runs may be reused.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import tomllib

from suite.errors import SuiteError

REPO = Path(__file__).resolve().parent.parent
SUBSET = REPO / "regression" / "subset.toml"
REFERENCE = REPO / "regression" / "reference.json"
BAND_ALPHA = 0.01  #: the band is a 99% range for the mean of a rerun of the same n seeds
FORMAT = 1


# -- the subset ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Subset:
    tier: str
    patterns: tuple[str, ...]
    path: str


def load_subset(path: str | Path = SUBSET) -> Subset:
    p = Path(path)
    if not p.is_file():
        raise SuiteError(f"regression: no subset file {p}; it lists the claims to guard "
                         f"(claims = ['id or glob', ...], tier = 'mini')")
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"regression: {p} is not valid TOML: {e}") from e
    unknown = set(raw) - {"tier", "claims"}
    if unknown:
        raise SuiteError(f"regression: {p}: unknown key(s) {sorted(unknown)}; use tier, claims")
    claims = raw.get("claims")
    if not isinstance(claims, list) or not claims or not all(isinstance(c, str) for c in claims):
        raise SuiteError(f"regression: {p}: claims must be a non-empty list of claim ids or "
                         f"globs")
    tier = raw.get("tier", "mini")
    from suite.specs import TIERS

    if tier not in TIERS:
        raise SuiteError(f"regression: {p}: tier {tier!r} is not one of {', '.join(TIERS)}")
    return Subset(tier, tuple(claims), str(p))


def select_claims(subset: Subset, claims: list[Any]) -> list[Any]:
    """The claims the subset names, in tasks.toml order; every pattern must match a claim
    that has a form with an expectation at the subset's tier."""
    import fnmatch

    chosen, problems = [], []
    for pat in subset.patterns:
        hit = [c for c in claims if fnmatch.fnmatchcase(c.id, pat)]
        if not hit:
            problems.append(f"{pat!r} matches no claim")
        for c in hit:
            form = c.form(subset.tier)
            if form is None or form.expect is None:
                problems.append(f"{c.id} has no {subset.tier} form with an expectation")
            elif c not in chosen:
                chosen.append(c)
    if problems:
        raise SuiteError(f"regression: {subset.path}: " + "; ".join(problems))
    order = {c.id: i for i, c in enumerate(claims)}
    return sorted(chosen, key=lambda c: order[c.id])


# -- bands and snapshots -------------------------------------------------------------------
def band(values: list[float], alpha: float = BAND_ALPHA) -> dict[str, Any]:
    """Mean, spread and the band a rerun's mean of the same seeds must stay in."""
    from suite.verdict import t_crit

    n = len(values)
    mean = statistics.fmean(values) if values else math.nan
    std = statistics.stdev(values) if n > 1 else 0.0
    if n < 2 or std == 0:
        half, how = 1e-9 * max(1.0, abs(mean)), "exact (no spread)"
    else:
        half = t_crit(n - 1, alpha) * std * math.sqrt(2.0 / n)
        how = f"mean ± t({1 - alpha / 2:g}, {n - 1})·s·√(2/n)"
    return {"mean": mean, "std": std, "n": n, "band": [mean - half, mean + half], "how": how}


def _config(spec: Any) -> dict[str, Any]:
    c = spec.config()
    c.pop("seed", None)
    return c


def snapshot(engine, claims: list[Any], tier: str) -> dict[str, Any]:
    """The reference-shaped record of ``claims`` as judged from ``engine`` now."""
    from suite import report
    from suite.plan import make_plan

    plan = {pc.claim.id: pc for pc in make_plan(claims, tier).claims}
    rows = report.claim_rows(engine, claims, tier, sequential=False)
    out: dict[str, Any] = {}
    for row in rows:
        pc = plan[row.claim.id]
        e = pc.form.expect
        runs_by_key = {r.run_key: r for r in row.runs}
        arms: dict[str, Any] = {}
        configs: dict[str, Any] = {}
        for spec in pc.runs:
            r = runs_by_key.get(spec.run_key)
            value = None
            if r is not None and r.status == "ok":
                value = r.metric_dict().get(e.metric)
            arms.setdefault(spec.arm, {})[str(spec.seed)] = {
                "run_key": spec.run_key, "status": r.status if r else "missing",
                "value": value}
            configs[spec.arm] = _config(spec)
        quantities: dict[str, Any] = {}
        for arm, seeds in arms.items():
            vals = [s["value"] for s in seeds.values() if s["value"] is not None]
            if vals:
                quantities[f"{arm} {e.metric}"] = band(vals)
        if e.kind == "delta" and row.verdict.values:
            quantities[f"Δ {e.metric}"] = band(list(row.verdict.values))
        out[row.claim.id] = {
            "kind": e.kind, "metric": e.metric, "verdict": row.verdict.status,
            "message": row.verdict.message, "definition_hash": row.claim.definition_hash,
            "configs": configs, "runs": arms, "quantities": quantities,
        }
    return out


def environment(engine, snap: dict[str, Any]) -> dict[str, Any]:
    """Where the reference was measured (from the runs' provenance)."""
    from suite import db

    keys = [s["run_key"] for c in snap.values() for arm in c["runs"].values()
            for s in arm.values()]
    runs = list(db.runs_by_key(engine, keys).values())

    def common(attr: str) -> list[str]:
        return sorted({str(getattr(r, attr)) for r in runs if getattr(r, attr)})

    return {"git_sha": common("git_sha"), "git_dirty": any(r.git_dirty for r in runs),
            "torch": common("torch_version"), "python": common("python_version"),
            "device": common("device_name")}


# -- comparing -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    claim: str
    what: str
    committed: str
    band: str
    now: str
    ok: bool
    note: str = ""


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``["baseline params.lr: 0.05 → 0.1", ...]`` between two per-arm config maps."""
    out = []
    for arm in sorted(set(old) | set(new)):
        a, b = _flat(old.get(arm, {})), _flat(new.get(arm, {}))
        for k in sorted(set(a) | set(b)):
            if a.get(k, "∅") != b.get(k, "∅"):
                out.append(f"{arm} {k}: {a.get(k, '∅')} → {b.get(k, '∅')}")
    return out


def _seeds_keys(c: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {arm: {seed: s["run_key"] for seed, s in seeds.items()}
            for arm, seeds in c["runs"].items()}


def _fmt(x: float) -> str:
    return f"{x:.5g}"


def compare(reference: dict[str, Any], now: dict[str, Any]) -> list[Check]:
    """Every check of ``now`` against the committed ``reference`` (both snapshot-shaped)."""
    checks: list[Check] = []
    for cid in reference:
        if cid not in now:
            checks.append(Check(cid, "claim", "in reference", "", "not in the subset now",
                                False, "run `python -m suite regression update`"))
    for cid, c in now.items():
        ref = reference.get(cid)
        if ref is None:
            checks.append(Check(cid, "claim", "no reference", "", c["verdict"], False,
                                "new in the subset: run `python -m suite regression update`"))
            continue
        if _seeds_keys(ref) != _seeds_keys(c):
            diff = config_diff(ref["configs"], c["configs"])
            seeds = {a: sorted(s) for a, s in ref["runs"].items()} != {
                a: sorted(s) for a, s in c["runs"].items()}
            what = "; ".join(diff[:4]) + (" …" if len(diff) > 4 else "") or (
                "seeds changed" if seeds else "run keys changed")
            checks.append(Check(cid, "recipe", "committed", "", "changed", False,
                                f"{what}; if deliberate: `python -m suite regression update`"))
            continue
        failed = [f"{arm} seed {seed}: {s['status']}" for arm, seeds in c["runs"].items()
                  for seed, s in seeds.items() if s["status"] != "ok"]
        if failed:
            checks.append(Check(cid, "runs", "ok", "", "; ".join(failed[:3]), False))
        checks.append(Check(cid, "verdict", ref["verdict"], "", c["verdict"],
                            ref["verdict"] == c["verdict"]))
        for name, q in ref["quantities"].items():
            lo, hi = q["band"]
            got = c["quantities"].get(name)
            if got is None:
                checks.append(Check(cid, name, _fmt(q["mean"]), f"[{_fmt(lo)}, {_fmt(hi)}]",
                                    "–", False, "no ok runs"))
                continue
            m = got["mean"]
            checks.append(Check(cid, name, _fmt(q["mean"]), f"[{_fmt(lo)}, {_fmt(hi)}]",
                                _fmt(m), lo <= m <= hi))
    return checks


def changes(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """What ``update`` changed, in words (for the terminal and the commit message)."""
    old_claims = (old or {}).get("claims", {})
    out = []
    for cid in sorted(set(old_claims) - set(new["claims"])):
        out.append(f"removed {cid}")
    for cid, c in new["claims"].items():
        o = old_claims.get(cid)
        if o is None:
            out.append(f"added {cid}: {c['verdict']}")
            continue
        for line in config_diff(o["configs"], c["configs"]):
            out.append(f"{cid}: recipe {line}")
        if o["verdict"] != c["verdict"]:
            out.append(f"{cid}: verdict {o['verdict']} → {c['verdict']}")
        for name, q in c["quantities"].items():
            oq = o["quantities"].get(name)
            if oq is None:
                continue
            if _fmt(oq["mean"]) != _fmt(q["mean"]) or _fmt(oq["std"]) != _fmt(q["std"]):
                lo, hi = oq["band"]
                where = "inside" if lo <= q["mean"] <= hi else "OUTSIDE"
                out.append(f"{cid}: {name} {_fmt(oq['mean'])} → {_fmt(q['mean'])} ({where} "
                           f"the old band [{_fmt(lo)}, {_fmt(hi)}])")
    return out


# -- running ---------------------------------------------------------------------------------
class InProcessRunner:
    """Runs specs one at a time in this process (the scheduler's ``run`` interface), so a
    test can break a model by patching the registry. Records each result like the scheduler.
    """

    def __init__(self, engine):
        self.engine = engine

    def run(self, specs: list[Any], force: bool = False):
        from suite import db
        from suite.provenance import git_state
        from suite.scheduler import Outcome
        from suite.worker import execute

        have = db.runs_by_key(self.engine, [s.run_key for s in specs])
        out = Outcome()
        for s in specs:
            row = have.get(s.run_key)
            if row is not None and row.status == "ok" and not force:
                out.skipped_ok.append(s.run_key)
                continue
            result = execute(s, device="cpu", threads=1, extra_provenance=git_state(),
                             emit=lambda *a, **k: None)
            db.record_run(self.engine, result)
            out.ran.append(result)
        return out


def run_claims(engine, claims: list[Any], tier: str, *, jobs: int = 2,
               workdir: str | Path | None = None, in_process: bool = False,
               progress: bool = True) -> None:
    """Run every planned run of ``claims`` that ``engine`` has no ok row for: in worker
    processes (the scheduler), or here with ``in_process`` (see :class:`InProcessRunner`)."""
    from suite.plan import make_plan

    specs = make_plan(claims, tier).runs
    if in_process:
        InProcessRunner(engine).run(specs)
        return
    from suite.scheduler import Scheduler
    from suite.ui import RunProgress

    work = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="poolrepro-regress-"))
    with RunProgress(enabled=progress) as ui:
        Scheduler(engine, devices="cpu", jobs=jobs, workdir=work, on_event=ui).run(specs)


def read_reference(path: str | Path = REFERENCE) -> dict[str, Any] | None:
    p = Path(path)
    if not p.is_file():
        return None
    try:
        ref = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise SuiteError(f"regression: {p} is not valid JSON ({e}); restore it from git or "
                         f"rewrite it with `python -m suite regression update`") from e
    if ref.get("format") != FORMAT or not isinstance(ref.get("claims"), dict):
        raise SuiteError(f"regression: {p} is not a reference file of format {FORMAT}; "
                         f"rewrite it with `python -m suite regression update`")
    return ref


def write_reference(path: str | Path, ref: dict[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(ref, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(p)


def build_reference(engine, claims: list[Any], subset: Subset) -> dict[str, Any]:
    snap = snapshot(engine, claims, subset.tier)
    return {"format": FORMAT, "tier": subset.tier, "subset": list(subset.patterns),
            "band_alpha": BAND_ALPHA,
            "written": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "environment": environment(engine, snap), "claims": snap}


# -- CLI ---------------------------------------------------------------------------------------
def add_regression_parser(sub, verb_factory) -> argparse.ArgumentParser:
    """Register ``regression`` (check, update, show) on the CLI's subparsers."""
    p = verb_factory("regression", "rerun a fixed subset of claims with their committed seeds "
                                   "and compare with the committed reference")
    rsub = p.add_subparsers(dest="regression_verb", metavar="ACTION", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--subset", default=str(SUBSET), help="subset file (default "
                                                             "regression/subset.toml)")
        q.add_argument("--reference", default=str(REFERENCE),
                       help="reference file (default regression/reference.json)")

    def running(q: argparse.ArgumentParser) -> None:
        from suite.cli import _positive_int

        q.add_argument("--jobs", type=_positive_int, default=2, help="runs at a time (2)")
        q.add_argument("--run-db", default=None, metavar="URL",
                       help="DB to run into and reuse ok runs from (default: a fresh "
                            "temporary DB, so everything reruns)")
        q.add_argument("--no-progress", action="store_true", help="plain lines")

    q = rsub.add_parser("check", help="rerun the subset and compare; exit 1 on any change",
                        description="Rerun the subset's claims with their committed seeds "
                                    "and compare verdicts and bands with the reference.")
    common(q)
    running(q)
    q = rsub.add_parser("update", help="rerun the subset and rewrite the reference, saying "
                                       "what changed",
                        description="After a deliberate recipe change: rerun the subset and "
                                    "rewrite the reference; prints every change.")
    common(q)
    running(q)
    q = rsub.add_parser("show", help="print the committed reference")
    common(q)
    return p


def _engine(url: str | None):
    from suite import db

    if url:
        return db.connect(url)
    d = Path(tempfile.mkdtemp(prefix="poolrepro-regress-"))
    return db.connect(f"sqlite:///{d / 'regression.db'}")


def check_table(checks: list[Check]):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="regression: committed vs now")
    for h in ("claim", "quantity", "committed", "band", "now", "", "note"):
        t.add_column(h, overflow="fold")
    for c in checks:
        mark = "[green]ok[/]" if c.ok else "[bold red]FAIL[/]"
        t.add_row(*[escape(x) for x in (c.claim, c.what, c.committed, c.band, c.now)], mark,
                  escape(c.note))
    return t


def cmd_regression(args) -> int:
    from suite.claims import load_claims
    from suite.ui import console, out

    subset = load_subset(args.subset)
    if args.regression_verb == "show":
        ref = read_reference(args.reference)
        if ref is None:
            raise SuiteError(f"regression: no reference {args.reference}; write it with "
                             f"`python -m suite regression update`")
        out.print_json(json.dumps({k: v for k, v in ref.items() if k != "claims"}))
        for cid, c in ref["claims"].items():
            out.print(f"[bold]{cid}[/]: {c['verdict']}; " + "; ".join(
                f"{n} {_fmt(q['mean'])} in [{_fmt(q['band'][0])}, {_fmt(q['band'][1])}]"
                for n, q in c["quantities"].items()))
        return 0
    _, claims = load_claims(args.tasks)
    chosen = select_claims(subset, claims)
    ref = read_reference(args.reference)
    if args.regression_verb == "check" and ref is None:
        raise SuiteError(f"regression: no reference {args.reference}; write it with "
                         f"`python -m suite regression update`")
    engine = _engine(args.run_db)
    if args.regression_verb == "check":  # a changed recipe fails without being run
        from suite.plan import make_plan

        planned = {pc.claim.id: {r.run_key for r in pc.runs}
                   for pc in make_plan(chosen, subset.tier).claims}
        to_run = [c for c in chosen if c.id in ref["claims"] and planned[c.id] == {
            s["run_key"] for arm in ref["claims"][c.id]["runs"].values() for s in arm.values()}]
    else:
        to_run = chosen
    console.print(f"regression {args.regression_verb}: {len(chosen)} claim(s) at tier "
                  f"{subset.tier}, {len(to_run)} to run, into {engine.url}")
    run_claims(engine, to_run, subset.tier, jobs=args.jobs, progress=not args.no_progress)
    if args.regression_verb == "update":
        new = build_reference(engine, chosen, subset)
        lines = changes(ref, new)
        write_reference(args.reference, new)
        console.print(f"wrote {args.reference} ({len(new['claims'])} claims); what changed:")
        for line in lines or ["nothing (same recipes, verdicts and numbers)"]:
            console.print(f"  - {line}")
        return 0
    now = snapshot(engine, chosen, subset.tier)
    checks = compare(ref["claims"], now)
    out.print(check_table(checks))
    bad = [c for c in checks if not c.ok]
    if bad:
        console.print(f"[bold red]regression check failed[/]: {len(bad)} of {len(checks)} "
                      f"checks; a deliberate change is recorded with `python -m suite "
                      f"regression update` (then commit {args.reference})")
        return 1
    console.print(f"[green]regression check passed[/]: {len(checks)} checks")
    return 0
