"""What the claims cost: device-seconds spent, and device-hours a full-tier run would take.

``python -m suite report --cost`` shows, per claim at the chosen tier:

* **device-seconds spent**: the sum of ``wall_s`` over the claim's stored runs (both arms,
  any status; a run shared by two claims counts in each), with the runs' mean training
  ``images_per_s`` and ``gflops_per_image`` where ``train_eval`` recorded them;
* **full-tier estimate** (``train_eval`` claims): for each arm,
  ``epochs × training images × seeds ÷ images/s``, summed over the arms (two for a delta
  claim), in device-hours. ``images/s`` is the ``throughput`` probe (:mod:`tasks.throughput`)
  of that arm's model on *this* machine's device, at the recipe's batch size (capped by
  ``--probe-batch``): measured now with ``--probe``, else read from the probe cache
  (``.cache/poolrepro/probe.json``, keyed by device name and model config) that earlier
  ``--probe`` calls filled. The training-set size is the recipe's ``train_subset`` or the
  dataset entry's ``train_items`` meta. Evaluation passes and data loading are not included,
  so the estimate is a lower bound.

This module imports no torch; ``--probe`` imports :mod:`tasks.throughput` when it runs.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from suite import db
from suite.plan import baseline_form, make_plan
from suite.specs import Claim, TierForm, canonical_json

CACHE = Path(".cache/poolrepro/probe.json")


@dataclass
class CostRow:
    claim: str
    tier: str
    runs: int = 0
    device_s: float = 0.0
    images_per_s: float | None = None  # mean over the claim's train_eval runs
    gflops_per_image: float | None = None
    full_hours: float | None = None  # estimated device-hours of the full tier on this device
    full_note: str = ""  # how the estimate was made, or why there is none
    arms: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def probe_key(device_name: str, model: str, model_args: dict[str, Any], in_chans: int | None,
              input_size: list[int] | None, batch: int) -> str:
    return canonical_json({"device": device_name, "model": model, "model_args": model_args,
                           "in_chans": in_chans, "input_size": input_size, "batch": batch})


def load_cache(path: Path = CACHE) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def save_cache(cache: dict[str, Any], path: Path = CACHE) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(cache, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x == x]  # drop NaN
    return statistics.fmean(xs) if xs else None


def _train_items(form: TierForm) -> int | None:
    import registry

    sub = form.dataset_args.get("train_subset")
    if isinstance(sub, int):
        return sub
    if form.dataset in registry.DATASETS:
        n = registry.DATASETS.entry(form.dataset).meta.get("train_items")
        return int(n) if n else None
    return None


def _dataset_shape(form: TierForm) -> tuple[int | None, list[int] | None]:
    """(in_chans, [C, H, W]) the full-tier dataset feeds the model, where known."""
    name = form.dataset.lower()
    if name.startswith("cifar"):
        return 3, [3, 32, 32]
    if name in ("imagenet", "ilsvrc2012", "imagenet1k"):
        return 3, [3, 224, 224]
    return None, None


def _arm_forms(form: TierForm) -> list[tuple[str, TierForm]]:
    arms = [("treatment", form)]
    if form.expect is not None and form.expect.kind == "delta":
        arms.append(("baseline", baseline_form(form)))
    return arms


def estimate(form: TierForm, device_name: str, cache: dict[str, Any], probe_now, batch_cap: int
             ) -> tuple[float | None, str, list[dict[str, Any]]]:
    """Device-hours of ``form`` (a full-tier train_eval form) and how they were made."""
    if form.task != "train_eval":
        return None, f"no estimate for task {form.task!r}", []
    items = _train_items(form)
    if items is None:
        return None, f"training-set size of {form.dataset!r} unknown", []
    epochs = int(form.params.get("epochs", 10))
    batch = min(int(form.params.get("batch_size", 128)), batch_cap)
    in_chans, size = _dataset_shape(form)
    total, arms = 0.0, []
    for arm, f in _arm_forms(form):
        margs = dict(f.model_args)
        key = probe_key(device_name, f.model, margs, in_chans, size, batch)
        hit = cache.get(key)
        if hit is None and probe_now is not None:
            hit = probe_now(f.model, margs, size, batch)
            cache[key] = hit
        if hit is None:
            return None, ("no throughput probe on this device yet; rerun with --probe "
                          "(measures each arm's training step now)"), arms
        ips = float(hit["images_per_s"])
        hours = epochs * items * len(f.seeds) / ips / 3600
        total += hours
        arms.append({"arm": arm, "model": f.model, "model_args": margs, "probe_batch": batch,
                     "images_per_s": ips, "hours": hours})
    note = (f"{epochs} epochs × {items:,} images × {len(form.seeds)} seeds × {len(arms)} arm(s)"
            f" ÷ probe images/s (batch {batch}) on {device_name}")
    return total, note, arms


def cost_rows(engine, claims: list[Claim], tier: str, seeds: tuple[int, ...] | None = None, *,
              probe: bool = False, device: str = "cpu", batch_cap: int = 128,
              cache_path: Path = CACHE) -> list[CostRow]:
    """One :class:`CostRow` per claim; see the module docstring."""
    plan = make_plan(claims, tier, seeds)
    by_key = db.runs_by_key(engine, [r.run_key for r in plan.runs])
    cache = load_cache(cache_path)
    device_name, probe_now = _device(device, probe, cache)
    rows = []
    for pc in plan.claims:
        row = CostRow(pc.claim.id, tier)
        runs = [by_key[r.run_key] for r in pc.runs if r.run_key in by_key]
        row.runs = len(runs)
        row.device_s = sum(r.wall_s or 0.0 for r in runs)
        ok = [r.metric_dict() for r in runs if r.status == "ok"]
        row.images_per_s = _mean([m["images_per_s"] for m in ok if "images_per_s" in m])
        row.gflops_per_image = _mean([m["gflops_per_image"] for m in ok
                                      if "gflops_per_image" in m])
        full = pc.claim.form("full")
        if "full" in pc.claim.skip:
            row.full_note = f"full tier skipped: {pc.claim.skip['full']}"
        elif full is None:
            row.full_note = "no full form"
        else:
            row.full_hours, row.full_note, row.arms = estimate(full, device_name, cache,
                                                               probe_now, batch_cap)
        rows.append(row)
    if probe:
        save_cache(cache, cache_path)
    return rows


def _device(device: str, probe: bool, cache: dict[str, Any]):
    """(device name for cache keys, probe function or None). Without ``--probe`` the name is
    the one the last probe on ``device`` recorded in the cache (no torch import)."""
    if not probe:
        name = cache.get(f"__device__:{device}", cache.get("__device__:last", device))
        return str(name), None
    import torch

    from suite.provenance import device_name as name_of
    from tasks.throughput import probe as run_probe

    dev = device if device != "auto" else ("cuda:0" if torch.cuda.is_available() else "cpu")
    name = name_of(dev)
    cache[f"__device__:{device}"] = cache["__device__:last"] = name

    def probe_now(model: str, model_args: dict[str, Any], size: list[int] | None,
                  batch: int) -> dict[str, Any]:
        m = run_probe(model, model_args, dev, batch_size=batch, steps=2, warmup=1,
                      input_size=size)
        return {**m, "device": name, "steps": 2}

    return name, probe_now


def fmt_hours(h: float | None) -> str:
    if h is None:
        return "–"
    return f"{h:.3g} h" if h >= 0.1 else f"{h * 3600:.3g} s"
