"""Load ``tasks.toml`` into validated, frozen :class:`~suite.specs.Claim` objects.

The file is parsed with :mod:`tomllib` (data only: tasks.toml can never execute code) and
checked as a whole before anything runs. Every problem is collected, each naming the claim,
the field and, for an unknown name, the closest known names.

Schema (see README "Adding a claim")::

    [papers.<id>]      title, venue, url, arxiv
    [defaults]         any claim field below except id/paper/source/extends;
                       [defaults.tiers.<tier>] is merged into every claim that has that tier
    [[claim]]
      id, paper, source, title, tags, extends
      task, model, dataset, model_args, dataset_args, params,
      seeds, min_runs, device, timeout_s            -> the *full* (paper) recipe
      expect  = {kind, metric, direction, value, tolerance, min_diff, baseline, unit, ...}
      published = {value, unit, metric, source_kind, verified}   (shown beside results)
      status_note = "why a tier is pending/skipped"
      [claim.tiers.mini] / [claim.tiers.smoke] / [claim.tiers.full]
                       overrides of the recipe fields and ``expect`` at that tier, or
                       ``skip = "reason"`` for a tier that cannot run.
      [claim.sweep] / [claim.tiers.<tier>.sweep]   how ``python -m suite sweep`` tunes it:
                       trials, metric, val_split, sampler, seed, pruner, startup_trials,
                       prune_after, retries, and the space as parameter paths, e.g.
                       params.lr = { low = 0.01, high = 0.3, log = true }
                       model_args.width = { low = 8, high = 32, step = 8 }
                       params.init = { choices = ["kaiming_normal", "xavier"] }

    [[context]]        id, paper, source, ref | refs, title, beside (claim ids or globs),
                       reason, note
                       a published number shown beside our results, never run (rows a
                       paper copied from other works; see :class:`~suite.specs.ContextEntry`)

A variant is a diff: ``extends = "<claim id>"`` starts from another claim's table (tables
merge key by key, recursively) and states only what changes. A file must hold at least one
``[[claim]]``: an empty or claim-less file is an error, never "valid: 0 claims".
"""

from __future__ import annotations

import copy
import dataclasses
import fnmatch
import re
from pathlib import Path
from typing import Any

import tomllib

from registry._registry import did_you_mean
from suite.errors import ClaimsError, SpecProblem
from suite.specs import (
    TIERS,
    Claim,
    ContextEntry,
    Expect,
    Paper,
    SearchParam,
    SweepSpec,
    TierForm,
    short_hash,
)

RECIPE_FIELDS = {
    "task": str, "model": str, "dataset": str, "model_args": dict, "dataset_args": dict,
    "params": dict, "seeds": list, "min_runs": int, "device": str, "timeout_s": (int, float),
}
CLAIM_FIELDS = {
    "id": str, "paper": str, "source": str, "title": str, "tags": list, "extends": str,
    "expect": dict, "published": dict, "status_note": str, "tiers": dict, "sweep": dict,
    **RECIPE_FIELDS,
}
TIER_FIELDS = {**RECIPE_FIELDS, "expect": dict, "skip": str, "sweep": dict}
DEFAULT_FIELDS = {k: v for k, v in CLAIM_FIELDS.items() if k not in ("id", "paper", "source",
                                                                      "extends", "title",
                                                                      "sweep")}
SWEEP_FIELDS = {"trials": int, "metric": str, "val_split": (int, float), "sampler": str,
                "seed": int, "pruner": str, "startup_trials": int, "prune_after": int,
                "retries": int}
#: Where a sweep's parameter paths may point (a dataset argument would change the data).
SWEEP_ROOTS = ("params", "model_args")
SEARCH_FIELDS = {"low": (int, float), "high": (int, float), "log": bool, "step": (int, float),
                 "choices": list}
#: Paths a sweep may not set: they are the tuning setup itself.
SWEEP_RESERVED = {"params.val_split", "params.val_seed", "params.objective"}
PAPER_FIELDS = {"title": str, "venue": str, "url": str, "arxiv": str}
EXPECT_FIELDS = {
    "kind": str, "metric": str, "direction": str, "value": (int, float),
    "tolerance": (int, float), "min_diff": (int, float), "baseline": dict, "unit": str,
    "verified": bool, "note": str,
}
BASELINE_FIELDS = {"task", "model", "dataset", "model_args", "dataset_args", "params"}
PUBLISHED_FIELDS = {"value": (int, float), "unit": str, "metric": str, "source_kind": str,
                    "verified": bool, "note": str, "params_m": (int, float),
                    "ref": str, "refs": list}  # rows of registry/published.toml
DEVICE_RE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_./-]*$")
CONTEXT_FIELDS = {"id": str, "paper": str, "source": str, "ref": str, "refs": list,
                  "title": str, "beside": list, "reason": str, "note": str}
TOP_LEVEL = {"papers", "defaults", "claim", "context"}
#: model_args.pool values that are not pools: "original" keeps a model's own pooling layers
#: (registry.models.substitute.substitute_pool).
POOL_SENTINELS = {"original"}


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested tables merge key by key, other values replace.

    A sweep's range or choices (a table with ``low``/``high``/``choices``) replaces the
    inherited one whole: ``{ choices = [...] }`` over ``{ low, high }`` is a new range."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not (
                set(v) & {"low", "high", "choices"}):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _Checker:
    """Collects problems while walking the parsed file."""

    def __init__(self) -> None:
        self.problems: list[SpecProblem] = []

    def add(self, where: str, field: str, message: str) -> None:
        self.problems.append(SpecProblem(where, field, message))

    def keys(self, where: str, prefix: str, table: dict, allowed: dict | set) -> None:
        for key, value in table.items():
            field = f"{prefix}{key}"
            if key not in allowed:
                hint = did_you_mean(key, list(allowed), n=1)
                extra = f" Did you mean '{hint[0]}'?" if hint else ""
                self.add(where, field,
                         f"unknown key.{extra} Allowed: {', '.join(sorted(allowed))}.")
                continue
            if isinstance(allowed, dict):
                want = allowed[key]
                ok = isinstance(value, want) and not (isinstance(value, bool) and want in (
                    int, float, (int, float)))
                if not ok:
                    names = (want.__name__ if isinstance(want, type)
                             else " or ".join(t.__name__ for t in want))
                    self.add(where, field, f"expected {names}, got {type(value).__name__} "
                                           f"{value!r}")


def _check_names(chk: _Checker, where: str, prefix: str, recipe: dict[str, Any]) -> None:
    """Every model/dataset/task/pool name must be in its registry."""
    import registry
    from tasks import TASKS

    for field, reg in (("task", TASKS), ("model", registry.MODELS), ("dataset", registry.DATASETS)):
        name = recipe.get(field)
        if isinstance(name, str) and name and name not in reg:
            hint = did_you_mean(name, reg.names() + list(reg._aliases))
            extra = f" Did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
            chk.add(where, prefix + field,
                    f"unknown {reg.kind} {name!r}.{extra} (`python -m suite ls {reg.kind}s`)")
    margs = recipe.get("model_args") or {}
    if isinstance(margs, dict):
        for key in ("pool", "skip"):
            name = margs.get(key)
            if name in POOL_SENTINELS:
                continue
            if isinstance(name, str) and name not in registry.POOLS:
                hint = did_you_mean(name, registry.POOLS.names())
                extra = f" Did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
                chk.add(where, f"{prefix}model_args.{key}",
                        f"unknown pool {name!r}.{extra} (`python -m suite ls pools`)")


def _check_refs(chk: _Checker, where: str, published: dict[str, Any],
                field: str = "published.ref") -> None:
    """``published.ref`` / ``published.refs`` must name rows of registry/published.toml."""
    from registry import published as pub

    refs = ([published["ref"]] if isinstance(published.get("ref"), str) else []) + [
        r for r in (published.get("refs") if isinstance(published.get("refs"), list) else [])]
    if not refs:
        return
    known = pub.by_ref()
    for ref in refs:
        if not isinstance(ref, str) or ref not in known:
            hint = did_you_mean(str(ref), list(known), n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            chk.add(where, field, f"no row {ref!r} in registry/published.toml.{extra}")


def _check_recipe_values(chk: _Checker, where: str, prefix: str, r: dict[str, Any]) -> None:
    seeds = r.get("seeds")
    if isinstance(seeds, list):
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
            chk.add(where, prefix + "seeds", f"must be a non-empty list of integers, got {seeds!r}")
        elif len(set(seeds)) != len(seeds):
            chk.add(where, prefix + "seeds", f"has duplicates: {seeds!r}")
    dev = r.get("device")
    if isinstance(dev, str) and not DEVICE_RE.match(dev):
        chk.add(where, prefix + "device",
                f"{dev!r} is not a device; use 'auto', 'cpu', 'cuda' or 'cuda:N'")
    mr = r.get("min_runs")
    if isinstance(mr, int) and mr < 1:
        chk.add(where, prefix + "min_runs", f"must be ≥ 1, got {mr}")
    t = r.get("timeout_s")
    if isinstance(t, (int, float)) and t <= 0:
        chk.add(where, prefix + "timeout_s", f"must be positive seconds, got {t}")


def _uses(task: Any) -> tuple[str, ...]:
    """Which of model/dataset a task needs (task meta ``uses``; both by default)."""
    from tasks import TASKS

    if not isinstance(task, str) or task not in TASKS:
        return ("model", "dataset")
    return tuple(TASKS.entry(task).meta.get("uses", ("model", "dataset")))


def _metrics_of(task: str) -> tuple[str, ...] | None:
    from tasks import TASKS

    if task not in TASKS:
        return None
    return TASKS.entry(task).meta.get("metrics")


def _build_expect(chk: _Checker, where: str, prefix: str, e: dict[str, Any], task: str,
                  seeds: list) -> Expect | None:
    chk.keys(where, prefix, e, EXPECT_FIELDS)
    kind = e.get("kind")
    if kind not in ("absolute", "delta"):
        chk.add(where, prefix + "kind", f"must be 'absolute' or 'delta', got {kind!r}")
        return None
    metric = e.get("metric")
    if not isinstance(metric, str):
        chk.add(where, prefix + "metric", "is required (the metric the claim is about)")
        return None
    known = _metrics_of(task)
    if known and metric not in known:
        hint = did_you_mean(metric, list(known))
        extra = f" Did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
        chk.add(where, prefix + "metric",
                f"task {task!r} reports no metric {metric!r}.{extra} It reports: "
                f"{', '.join(known)}.")
    direction = e.get("direction", "equal" if kind == "absolute" else "higher")
    if direction not in ("higher", "lower", "equal"):
        chk.add(where, prefix + "direction",
                f"must be 'higher', 'lower' or 'equal', got {direction!r}")
    if kind == "absolute" and "value" not in e:
        chk.add(where, prefix + "value", "an absolute claim needs the published value")
    if kind == "delta":
        base = e.get("baseline")
        if not isinstance(base, dict) or not base:
            chk.add(where, prefix + "baseline",
                    "a delta claim needs a baseline table of overrides, e.g. "
                    "baseline = { model_args = { pool = 'max' } }")
        else:
            for k in base:
                if k not in BASELINE_FIELDS:
                    chk.add(where, f"{prefix}baseline.{k}",
                            f"cannot be overridden in a baseline; allowed: "
                            f"{', '.join(sorted(BASELINE_FIELDS))}")
            _check_names(chk, where, prefix + "baseline.", base)
    tol = e.get("tolerance", 0.0)
    if isinstance(tol, (int, float)) and tol < 0:
        chk.add(where, prefix + "tolerance", f"must be ≥ 0, got {tol}")
    try:
        return Expect(
            kind=kind, metric=metric, direction=direction,
            value=float(e["value"]) if "value" in e else None,
            tolerance=float(e.get("tolerance", 0.0)), min_diff=float(e.get("min_diff", 0.0)),
            baseline=dict(e.get("baseline") or {}), unit=str(e.get("unit", "")),
            verified=bool(e.get("verified", True)), note=str(e.get("note", "")),
        )
    except (TypeError, ValueError):
        return None  # the type problem is already recorded


@dataclasses.dataclass(frozen=True)
class Catalog:
    """Everything a tasks file declares: papers, claims and context entries."""

    papers: dict[str, Paper]
    claims: list[Claim]
    context: list[ContextEntry] = dataclasses.field(default_factory=list)

    def context_beside(self, claim_id: str) -> list[ContextEntry]:
        """Context entries a report shows next to ``claim_id`` (``beside`` ids or globs)."""
        return [e for e in self.context
                if any(fnmatch.fnmatchcase(claim_id, b) for b in e.beside)]


def load_claims(path: str | Path = "tasks.toml") -> tuple[dict[str, Paper], list[Claim]]:
    """Parse and validate the whole file; raise :class:`ClaimsError` listing every problem."""
    cat = load_catalog(path)
    return cat.papers, cat.claims


def load_catalog(path: str | Path = "tasks.toml") -> Catalog:
    """:func:`load_claims` with the ``[[context]]`` entries too."""
    path = Path(path)
    if not path.is_file():
        raise ClaimsError(str(path), [SpecProblem(
            "file", "path", "no such file; pass --tasks PATH or run from the repo root")])
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ClaimsError(str(path), [SpecProblem("file", "syntax", f"not valid TOML: {e}")]) from e
    except UnicodeDecodeError as e:
        raise ClaimsError(str(path), [SpecProblem("file", "encoding", f"not UTF-8: {e}")]) from e
    return parse_catalog(raw, str(path))


def parse_claims(raw: dict[str, Any], path: str = "tasks.toml") -> tuple[dict[str, Paper],
                                                                          list[Claim]]:
    cat = parse_catalog(raw, path)
    return cat.papers, cat.claims


def _check_paper_source(chk, where: str, table: dict, papers) -> None:
    """A claim's or context entry's required ``paper`` (a known ``[papers.X]``) and ``source``."""
    for req in ("paper", "source"):
        if not isinstance(table.get(req), str):
            chk.add(where, req, "is required")
    if isinstance(table.get("paper"), str) and table["paper"] not in papers:
        hint = did_you_mean(table["paper"], list(papers))
        extra = f" Did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
        chk.add(where, "paper", f"no [papers.{table['paper']}] table.{extra}")


def parse_catalog(raw: dict[str, Any], path: str = "tasks.toml") -> Catalog:
    chk = _Checker()
    chk.keys("file", "", raw, TOP_LEVEL)

    papers: dict[str, Paper] = {}
    for pid, p in (raw.get("papers") or {}).items():
        where = f"[papers.{pid}]"
        if not isinstance(p, dict):
            chk.add(where, pid, "must be a table")
            continue
        chk.keys(where, "", p, PAPER_FIELDS)
        if "title" not in p:
            chk.add(where, "title", "is required")
        papers[pid] = Paper(id=pid, title=str(p.get("title", "")), venue=str(p.get("venue", "")),
                            url=str(p.get("url", "")), arxiv=str(p.get("arxiv", "")))

    defaults = raw.get("defaults") or {}
    chk.keys("[defaults]", "", defaults, DEFAULT_FIELDS)
    default_tiers = defaults.get("tiers") or {}
    for tier, table in default_tiers.items():
        if tier not in TIERS:
            chk.add("[defaults]", f"tiers.{tier}", f"unknown tier; tiers are {', '.join(TIERS)}")
        elif isinstance(table, dict):
            chk.keys("[defaults]", f"tiers.{tier}.", table, TIER_FIELDS)
    base_defaults = {k: v for k, v in defaults.items() if k != "tiers"}

    raw_claims = raw.get("claim") or []
    if not isinstance(raw_claims, list):
        chk.add("file", "claim", "use [[claim]] (an array of tables)")
        raw_claims = []
    elif not raw_claims:
        chk.add("file", "claim", "no [[claim]] tables: the file declares nothing to run or "
                                 "judge. Check --tasks points at the claims file (the repo's "
                                 "is tasks.toml); README 'Adding a claim' shows the format")
    by_id: dict[str, dict[str, Any]] = {}
    for i, c in enumerate(raw_claims):
        cid = c.get("id") if isinstance(c.get("id"), str) else None
        where = f"claim '{cid}'" if cid else f"claim #{i + 1}"
        chk.keys(where, "", c, CLAIM_FIELDS)
        if cid is None:
            chk.add(where, "id", "is required (a unique string)")
            continue
        if not ID_RE.match(cid):
            chk.add(where, "id", "use lowercase letters, digits and _ . / - only")
        if cid in by_id:
            chk.add(where, "id", f"duplicate id; claim ids must be unique (also #{i + 1})")
            continue
        by_id[cid] = c

    def resolved(cid: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        c = by_id[cid]
        parent = c.get("extends")
        if parent is None:
            return dict(c)
        where = f"claim '{cid}'"
        if parent in seen or parent == cid:
            chk.add(where, "extends", f"cycle: {' -> '.join(seen + (cid, parent))}")
            return {k: v for k, v in c.items() if k != "extends"}
        if parent not in by_id:
            hint = did_you_mean(parent, list(by_id))
            extra = f" Did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""
            chk.add(where, "extends", f"no claim with id {parent!r}.{extra}")
            return {k: v for k, v in c.items() if k != "extends"}
        merged = deep_merge(resolved(parent, seen + (cid,)), c)
        merged.pop("extends", None)
        return merged

    claims: list[Claim] = []
    for cid in by_id:
        c = resolved(cid)
        c.pop("extends", None)
        where = f"claim '{cid}'"
        _check_paper_source(chk, where, c, papers)
        published = c.get("published") or {}
        if isinstance(published, dict):
            chk.keys(where, "published.", published, PUBLISHED_FIELDS)
            _check_refs(chk, where, published)
        tiers_raw = c.get("tiers") or {}
        for tier in tiers_raw:
            if tier not in TIERS:
                chk.add(where, f"tiers.{tier}", f"unknown tier; tiers are {', '.join(TIERS)}")
            elif isinstance(tiers_raw[tier], dict):
                chk.keys(where, f"tiers.{tier}.", tiers_raw[tier], TIER_FIELDS)

        full_recipe = deep_merge(base_defaults, {k: v for k, v in c.items()
                                                 if k in RECIPE_FIELDS or k in ("expect",
                                                                               "sweep")})
        forms: dict[str, TierForm] = {}
        skipped: dict[str, str] = {}
        for tier in ("full", *[t for t in TIERS if t != "full"]):  # full first: its
            if tier != "full" and tier not in tiers_raw:            # problems keep their
                continue  # no form at this tier                    # own field names
            over = tiers_raw.get(tier, {})
            if not isinstance(over, dict):
                chk.add(where, f"tiers.{tier}", f"must be a table, got {type(over).__name__} "
                                                f"{over!r}; e.g. [claim.tiers.{tier}] or "
                                                f"{tier} = {{ skip = \"reason\" }}")
                continue
            if "skip" in over:
                skipped[tier] = str(over["skip"])
                continue
            recipe = deep_merge(deep_merge(full_recipe, default_tiers.get(tier) or {}), over)
            recipe.pop("skip", None)
            prefix = "" if tier == "full" and not over else f"tiers.{tier}."
            form = _build_form(chk, where, prefix, recipe)
            if form is not None:
                forms[tier] = form
        note = str(c.get("status_note", ""))
        definition = {  # what the claim means once resolved: defaults and extends included
            "id": cid, "paper": c.get("paper"), "source": c.get("source"),
            "title": c.get("title"), "tags": c.get("tags"), "status_note": note,
            "published": published, "skip": skipped,
            "forms": {t: _form_dict(f) for t, f in forms.items()},
        }
        claims.append(Claim(
            id=cid, paper=str(c.get("paper", "")), source=str(c.get("source", "")),
            title=str(c.get("title", "")), tiers=forms,
            tags=tuple(str(t) for t in (c.get("tags") or [])),
            published=dict(published) if isinstance(published, dict) else {},
            status_note=note, skip=skipped, definition_hash=short_hash(definition),
        ))
    context = _parse_context(chk, raw.get("context"), papers, claims)
    if chk.problems:
        raise ClaimsError(path, _dedupe(chk.problems))
    return Catalog(papers, claims, context)


def _claim_refs(c: Claim) -> list[str]:
    p = c.published
    return ([p["ref"]] if isinstance(p.get("ref"), str) else []) + [
        r for r in (p.get("refs") if isinstance(p.get("refs"), list) else [])
        if isinstance(r, str)]


def _parse_context(chk: _Checker, raw: Any, papers: dict[str, Paper],
                   claims: list[Claim]) -> list[ContextEntry]:
    """Validate ``[[context]]`` entries: known paper, rows that exist in
    registry/published.toml and are not also claimed, ``beside`` naming real claims."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        chk.add("file", "context", "use [[context]] (an array of tables)")
        return []
    claim_ids = {c.id for c in claims}
    claimed = {ref: c.id for c in claims for ref in _claim_refs(c)}
    seen: set[str] = set()
    out: list[ContextEntry] = []
    for i, e in enumerate(raw):
        cid = e.get("id") if isinstance(e, dict) and isinstance(e.get("id"), str) else None
        where = f"context '{cid}'" if cid else f"context #{i + 1}"
        if not isinstance(e, dict):
            chk.add(where, "context", "must be a table")
            continue
        chk.keys(where, "", e, CONTEXT_FIELDS)
        if cid is None:
            chk.add(where, "id", "is required (a unique string)")
            continue
        if not ID_RE.match(cid):
            chk.add(where, "id", "use lowercase letters, digits and _ . / - only")
        if cid in seen or cid in claim_ids:
            chk.add(where, "id", "duplicate id; claim and context ids must be unique")
        seen.add(cid)
        _check_paper_source(chk, where, e, papers)
        refs = ([e["ref"]] if isinstance(e.get("ref"), str) else []) + [
            r for r in (e.get("refs") if isinstance(e.get("refs"), list) else [])]
        if not refs:
            chk.add(where, "ref", "a context entry names the published row(s) it shows: "
                                  "ref = '<row ref>' or refs = [...] (registry/published.toml)")
        _check_refs(chk, where, {"refs": refs}, field="ref")
        for ref in refs:
            if isinstance(ref, str) and ref in claimed:
                chk.add(where, "ref", f"row {ref!r} is also claimed by {claimed[ref]!r}; a row "
                                      f"the suite measures is a claim, not context — drop one")
        beside = e.get("beside") if isinstance(e.get("beside"), list) else []
        for b in beside:
            if not any(fnmatch.fnmatchcase(c, str(b)) for c in claim_ids):
                hint = did_you_mean(str(b), list(claim_ids), n=1)
                extra = f" Did you mean {hint[0]!r}?" if hint else ""
                chk.add(where, "beside", f"no claim matches {b!r} (an id or a glob).{extra}")
        out.append(ContextEntry(
            id=cid, paper=str(e.get("paper", "")), source=str(e.get("source", "")),
            refs=tuple(str(r) for r in refs), title=str(e.get("title", "")),
            beside=tuple(str(b) for b in beside), reason=str(e.get("reason", "")),
            note=str(e.get("note", ""))))
    return out


def _form_dict(form: TierForm) -> dict[str, Any]:
    from dataclasses import asdict

    d = asdict(form)
    if d.get("sweep") is None:  # a claim without a sweep keeps its definition hash
        d.pop("sweep", None)
    return d


def _dedupe(problems: list[SpecProblem]) -> list[SpecProblem]:
    """A problem in the full recipe shows up again in every tier that inherits it; keep one."""
    seen, out = set(), []
    for p in problems:
        key = (p.where, re.sub(r"^tiers\.\w+\.", "", p.field), p.message)
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _build_form(chk: _Checker, where: str, prefix: str, r: dict[str, Any]) -> TierForm | None:
    n_before = len(chk.problems)
    for req in ("task", *_uses(r.get("task"))):
        if not isinstance(r.get(req), str):
            chk.add(where, prefix + req, "is required (here, in [defaults], or via extends)")
    _check_recipe_values(chk, where, prefix, r)
    _check_names(chk, where, prefix, r)
    expect = None
    if isinstance(r.get("expect"), dict):
        expect = _build_expect(chk, where, prefix + "expect.", r["expect"], str(r.get("task")),
                               r.get("seeds") or [])
    sweep = None
    if isinstance(r.get("sweep"), dict):
        sweep = _build_sweep(chk, where, prefix + "sweep.", r["sweep"], str(r.get("task")),
                             expect)
    # a wrong type was already reported by _Checker.keys where the value was written
    bad_type = any(field in r and (not isinstance(r[field], want) or isinstance(r[field], bool))
                   for field, want in RECIPE_FIELDS.items())
    if bad_type or len(chk.problems) > n_before:
        return None
    return TierForm(
        task=r["task"], model=r.get("model", ""), dataset=r.get("dataset", ""),
        model_args=dict(r.get("model_args") or {}), dataset_args=dict(r.get("dataset_args") or {}),
        params=dict(r.get("params") or {}), seeds=tuple(r.get("seeds") or (0, 1, 2)),
        min_runs=int(r.get("min_runs", 2)), device=str(r.get("device", "auto")),
        timeout_s=float(r.get("timeout_s", 3600.0)), expect=expect, sweep=sweep,
    )


def _leaves(table: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    """``(dotted path, leaf)`` pairs: a leaf is a table holding a range or choices (or any
    non-table value, reported later as malformed)."""
    out: list[tuple[str, Any]] = []
    for k, v in table.items():
        sub = f"{path}.{k}"
        nested = any(isinstance(x, dict) for x in v.values()) if isinstance(v, dict) else False
        if isinstance(v, dict) and nested and not set(v) & set(SEARCH_FIELDS):
            out += _leaves(v, sub)
        else:
            out.append((sub, v))
    return out


def _search_param(chk: _Checker, where: str, field: str, path: str, leaf: Any
                  ) -> SearchParam | None:
    if not isinstance(leaf, dict):
        chk.add(where, field, f"expected a range or choices, e.g. {{ low = 0.01, high = 0.3, "
                              f"log = true }} or {{ choices = [16, 32] }}; got {leaf!r}")
        return None
    n = len(chk.problems)
    chk.keys(where, field + ".", leaf, SEARCH_FIELDS)
    if len(chk.problems) > n:
        return None
    if "choices" in leaf:
        extra = sorted(set(leaf) - {"choices"})
        ch = leaf["choices"]
        if extra:
            chk.add(where, field, f"give either choices or low/high, not both ({extra})")
        elif not ch:
            chk.add(where, field + ".choices", "must list at least one value")
        elif not all(v is None or isinstance(v, (bool, int, float, str)) for v in ch):
            chk.add(where, field + ".choices", f"values must be numbers, strings or "
                                               f"booleans (Optuna stores them); got {ch!r}")
        elif len({repr(v) for v in ch}) != len(ch):
            chk.add(where, field + ".choices", f"has duplicates: {ch!r}")
        else:
            return SearchParam(path, choices=tuple(ch))
        return None
    if "low" not in leaf or "high" not in leaf:
        chk.add(where, field, "a range needs both low and high (or give choices = [...])")
        return None
    low, high, log, step = leaf["low"], leaf["high"], leaf.get("log", False), leaf.get("step")
    if not low < high:
        chk.add(where, field, f"low ({low}) must be below high ({high})")
    elif log and low <= 0:
        chk.add(where, field + ".low", f"a log range needs low > 0, got {low}")
    elif log and step is not None:
        chk.add(where, field, "give log or step, not both (Optuna samples either)")
    elif step is not None and step <= 0:
        chk.add(where, field + ".step", f"must be positive, got {step}")
    else:
        return SearchParam(path, low=low, high=high, log=log, step=step)
    return None


def _build_sweep(chk: _Checker, where: str, prefix: str, sw: dict[str, Any], task: str,
                 expect: Expect | None) -> SweepSpec | None:
    """Validate a ``sweep`` table into a :class:`SweepSpec` (problems go to ``chk``)."""
    from tasks import TASKS

    n = len(chk.problems)
    settings = {k: v for k, v in sw.items() if k not in SWEEP_ROOTS}
    chk.keys(where, prefix, settings, {**SWEEP_FIELDS, **dict.fromkeys(SWEEP_ROOTS, dict)})
    objectives = TASKS.entry(task).meta.get("objectives", {}) if task in TASKS else {}
    metric = sw.get("metric", "val_top1")
    if task in TASKS and not objectives:
        chk.add(where, prefix.rstrip("."), f"task {task!r} reports no validation objective, "
                                           f"so it cannot be tuned")
    elif objectives and metric not in objectives:
        hint = did_you_mean(str(metric), list(objectives), n=1)
        extra = f" Did you mean {hint[0]!r}?" if hint else ""
        chk.add(where, prefix + "metric",
                f"{metric!r} is not a validation objective of task {task!r}.{extra} Tuning "
                f"optimises one of {', '.join(objectives)}, measured on a split held out of "
                f"the training set (never the test set).")
    for key, lo in (("trials", 1), ("seed", 0), ("startup_trials", 0), ("prune_after", 1),
                    ("retries", 0)):
        v = sw.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v < lo:
            chk.add(where, prefix + key, f"must be ≥ {lo}, got {v}")
    for key, allowed in (("sampler", ("tpe", "random")),
                         ("pruner", ("median", "halving", "none"))):
        v = sw.get(key)
        if isinstance(v, str) and v not in allowed:
            hint = did_you_mean(v, list(allowed), n=1)
            extra = f" Did you mean {hint[0]!r}?" if hint else ""
            chk.add(where, prefix + key, f"{v!r} is not one of {', '.join(allowed)}.{extra}")
    vs = sw.get("val_split", 0.1)
    if isinstance(vs, (int, float)) and not isinstance(vs, bool) and (
            vs <= 0 or (isinstance(vs, float) and vs >= 1)):
        chk.add(where, prefix + "val_split", f"must be a fraction in (0, 1) or a count ≥ 1 of "
                                             f"training items, got {vs!r}")
    space: list[SearchParam] = []
    baseline_paths = set(_leaf_paths(expect.baseline)) if (
        expect is not None and expect.kind == "delta") else set()
    for root in SWEEP_ROOTS:
        table = sw.get(root)
        if root in sw and not isinstance(table, dict):
            chk.add(where, prefix + root, f"expected a table of parameter ranges, e.g. "
                                          f"{root}.x = {{ low = 1, high = 4 }}; got {table!r}")
        if not isinstance(table, dict):
            continue
        for path, leaf in _leaves(table, root):
            field = prefix + path
            if path in SWEEP_RESERVED:
                chk.add(where, field, "is set by the sweep itself (val_split and metric of "
                                      "the sweep table); it cannot be searched")
                continue
            clash = sorted(b for b in baseline_paths if b == path or b.startswith(path + ".")
                           or path.startswith(b + "."))
            if clash:
                chk.add(where, field, f"is what expect.baseline changes ({clash[0]}); tuning "
                                      f"it would erase the difference between the arms")
                continue
            sp = _search_param(chk, where, field, path, leaf)
            if sp is not None:
                space.append(sp)
    if not space and len(chk.problems) == n:
        chk.add(where, prefix.rstrip("."), "the search space is empty; add parameter paths, "
                                           "e.g. params.lr = { low = 0.01, high = 0.3, "
                                           "log = true }")
    if len(chk.problems) > n:
        return None
    return SweepSpec(
        space=tuple(space), metric=metric, direction=objectives.get(metric, "maximize"),
        trials=int(sw.get("trials", 8)), val_split=vs, sampler=sw.get("sampler", "tpe"),
        seed=int(sw.get("seed", 0)), pruner=sw.get("pruner", "median"),
        startup_trials=int(sw.get("startup_trials", 3)),
        prune_after=int(sw.get("prune_after", 1)), retries=int(sw.get("retries", 2)),
    )


def _leaf_paths(table: dict[str, Any], path: str = "") -> list[str]:
    """Dotted paths of the non-table values in ``table`` (``params.lr``, ``model``)."""
    out = []
    for k, v in table.items():
        sub = f"{path}.{k}" if path else k
        out += _leaf_paths(v, sub) if isinstance(v, dict) and v else [sub]
    return out


def select(claims: list[Claim], *, paper: str | None = None, claim: str | None = None,
           tag: str | None = None) -> list[Claim]:
    """Filter claims: ``paper`` id, ``claim`` glob on the id, ``tag``."""
    import fnmatch

    out = claims
    if paper:
        out = [c for c in out if c.paper == paper]
    if claim:
        pats = [p.strip() for p in claim.split(",") if p.strip()]
        out = [c for c in out if any(fnmatch.fnmatchcase(c.id, p) for p in pats)]
    if tag:
        out = [c for c in out if tag in c.tags]
    return out
