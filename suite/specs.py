"""Frozen, typed specs: the contract between tasks.toml, the planner, the worker and the tasks.

Standard library only, so the worker (torch alone) and the dashboard (no torch) both import
it. ``registry/`` and ``tasks/`` may import this module and nothing else from ``suite/``.

Vocabulary:

* :class:`Paper` — one ``[papers.<id>]`` table.
* :class:`Expect` — what a claim asserts: an *absolute* value of a metric (within a
  tolerance, in a direction) or a *delta* between a treatment and a baseline arm.
* :class:`TierForm` — the fully resolved recipe of a claim at one tier (smoke/mini/full).
* :class:`Claim` — one ``[[claim]]``: identity, source and a :class:`TierForm` per tier.
* :class:`ContextEntry` — one ``[[context]]``: a published number the suite shows beside its
  own results but never runs (a paper quoting another work's result).
* :class:`RunSpec` — one run: a claim's tier form × seed × arm, with its ``run_key``.
* :class:`SweepSpec` — a claim's ``[claim.sweep]`` table at one tier: the search space
  (:class:`SearchParam` per parameter path) and the study settings (``suite/sweep.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TIERS: tuple[str, ...] = ("smoke", "mini", "full")
Tier = Literal["smoke", "mini", "full"]
Arm = Literal["treatment", "baseline"]
Direction = Literal["higher", "lower", "equal"]

#: Statuses a run row can have. ``ok`` rows are final; the others are retried by ``run``.
#: ``pruned``: a tuning trial stopped early by its study's pruner (``suite/sweep.py``).
RUN_STATUSES: tuple[str, ...] = ("ok", "error", "skipped", "timeout", "pruned")
#: Verdicts a claim can get from :func:`suite.verdict.judge` (and ``n/a``: the claim has no
#: form at this tier, so the tier says nothing about it; ``pending``: it has a form, no runs).
VERDICTS: tuple[str, ...] = (
    "reproduced", "not reproduced", "inconclusive", "pending", "error", "skipped", "n/a",
)
#: How a report spells a verdict (``n/a`` alone would hide *why* nothing is shown).
VERDICT_LABELS: dict[str, str] = {"n/a": "n/a at this tier"}


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the byte string that hashes are taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def short_hash(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:n]


@dataclass(frozen=True)
class Paper:
    id: str
    title: str
    venue: str = ""
    url: str = ""
    arxiv: str = ""


@dataclass(frozen=True)
class Expect:
    """What a claim asserts about a metric.

    absolute: the mean of ``metric`` over seeds vs ``value``. ``direction`` says which side
        passes: ``higher`` (mean ≥ value − tolerance), ``lower`` (mean ≤ value + tolerance) or
        ``equal`` (|mean − value| ≤ tolerance).
    delta: treatment − baseline (paired by seed) must exceed ``min_diff`` in ``direction``
        (``higher``: diff ≥ min_diff; ``lower``: diff ≤ −min_diff; ``equal``:
        |diff| ≤ tolerance). A negative ``min_diff`` with ``higher`` states non-inferiority
        ("no worse than the baseline by more than |min_diff|"). ``baseline`` holds the
        overrides that make the baseline arm.
    """

    kind: Literal["absolute", "delta"]
    metric: str
    direction: Direction = "equal"
    value: float | None = None
    tolerance: float = 0.0
    min_diff: float = 0.0
    baseline: dict[str, Any] = field(default_factory=dict)
    unit: str = ""
    verified: bool = True  # False: the published number is unconfirmed (read off a plot, ...)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SearchParam:
    """One dimension of a search space: a parameter path (``params.lr``,
    ``model_args.width``, ``params.augment.crop_padding``) and its range — ``low``/``high``
    (``log``: sample on a log scale; ``step``: a grid) or a list of ``choices``."""

    path: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple[Any, ...] | None = None

    @property
    def kind(self) -> Literal["float", "int", "categorical"]:
        if self.choices is not None:
            return "categorical"
        ints = all(isinstance(v, int) for v in (self.low, self.high)) and (
            self.step is None or isinstance(self.step, int))
        return "int" if ints else "float"


@dataclass(frozen=True)
class SweepSpec:
    """How to tune a claim at one tier (``[claim.sweep]``, ``[claim.tiers.<tier>.sweep]``).

    ``trials`` per arm (the same for every arm: equal budget); ``metric`` is a validation
    objective of the task (``val_top1`` ...), measured on ``val_split`` (a fraction or count)
    held out of the *training* set; ``direction`` follows from the metric. ``pruner``:
    ``median``, ``halving`` (successive halving) or ``none``, never before ``prune_after``
    epochs nor within the first ``startup_trials`` trials (which the sampler also draws at
    random). ``retries``: how often a failed (crashed, timed-out) trial is rerun.
    """

    space: tuple[SearchParam, ...]
    metric: str = "val_top1"
    direction: Literal["maximize", "minimize"] = "maximize"
    trials: int = 8
    val_split: float | int = 0.1
    sampler: Literal["tpe", "random"] = "tpe"
    seed: int = 0
    pruner: Literal["median", "halving", "none"] = "median"
    startup_trials: int = 3
    prune_after: int = 1
    retries: int = 2

    def paths(self) -> tuple[str, ...]:
        return tuple(p.path for p in self.space)


@dataclass(frozen=True)
class TierForm:
    """A claim's fully resolved recipe at one tier: everything a run needs except the seed."""

    task: str
    model: str
    dataset: str
    model_args: dict[str, Any] = field(default_factory=dict)
    dataset_args: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1, 2)
    min_runs: int = 2
    device: str = "auto"
    timeout_s: float = 3600.0
    expect: Expect | None = None
    sweep: SweepSpec | None = None  # how to tune this form (``python -m suite sweep``)

    def config(self) -> dict[str, Any]:
        """The part of the form that defines *what is computed* (hashed into run keys)."""
        return {
            "task": self.task, "model": self.model, "dataset": self.dataset,
            "model_args": self.model_args, "dataset_args": self.dataset_args,
            "params": self.params,
        }


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    source: str
    title: str
    tiers: dict[str, TierForm]  # tier -> form; a tier absent here has no form for this claim
    tags: tuple[str, ...] = ()
    published: dict[str, Any] = field(default_factory=dict)  # value/unit/source_kind/verified
    status_note: str = ""  # caveats shown in reports (unverified number, missing table, ...)
    skip: dict[str, str] = field(default_factory=dict)  # tier -> why it cannot run
    definition_hash: str = ""  # hash of the claim's resolved definition (expectations included)

    def form(self, tier: str) -> TierForm | None:
        return self.tiers.get(tier)


@dataclass(frozen=True)
class ContextEntry:
    """A published number shown beside the suite's results and never run: a row a paper
    copied from other works (``variant = "baseline_reported"``) or a third party's
    comparison, whose model the registry does not have.

    ``refs`` name rows of ``registry/published.toml`` (value, unit, metric and source live
    there, once); ``beside`` names the claims a report shows it next to; ``reason`` says why
    it is context rather than a claim (usually: the model is not in the registry).
    """

    id: str
    paper: str
    source: str
    refs: tuple[str, ...]
    title: str = ""
    beside: tuple[str, ...] = ()
    reason: str = ""
    note: str = ""


@dataclass(frozen=True)
class RunSpec:
    """One run. ``run_key`` hashes the resolved config and seed, never the expectation, so
    editing a tolerance re-judges without rerunning and editing a recipe makes new keys.

    A tuning trial has ``arm = "sweep"`` and ``sweep = {"study", "trial", "arm"}`` (the
    Optuna study, its trial number and the claim arm it tunes); like ``claim_id`` and ``arm``
    this is a label, not part of the key: a retried trial reruns (and resumes) the same run.
    """

    claim_id: str
    tier: str
    arm: str
    seed: int
    task: str
    model: str
    dataset: str
    model_args: dict[str, Any] = field(default_factory=dict)
    dataset_args: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    timeout_s: float = 3600.0
    claim_hash: str = ""
    sweep: dict[str, Any] = field(default_factory=dict)

    def config(self) -> dict[str, Any]:
        return {
            "task": self.task, "model": self.model, "dataset": self.dataset,
            "model_args": self.model_args, "dataset_args": self.dataset_args,
            "params": self.params, "seed": self.seed,
        }

    @property
    def run_key(self) -> str:
        return short_hash(self.config(), 20)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run_key"] = self.run_key
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunSpec:
        d = {k: v for k, v in d.items() if k != "run_key"}
        return cls(**d)


@dataclass
class TaskContext:
    """What a task function receives besides the spec (mutable: progress and resume state).

    ``device`` is a string such as ``"cpu"`` or ``"cuda:0"``. ``checkpoint_path``: where a
    long task saves its state each epoch and resumes from. ``report(epoch, total, metrics)``
    sends one progress line to the scheduler. ``provenance``: the task adds facts about how
    the numbers were computed (pool kernel path, loader, AMP, ...).
    """

    device: str
    checkpoint_path: str | None = None
    report: Any = None  # Callable[[int, int, dict[str, float]], None]
    provenance: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None


@dataclass
class TaskResult:
    """What a task returns: final ``metrics`` (name → float) and optional per-epoch ``series``
    (name → list of floats, index = epoch)."""

    metrics: dict[str, float]
    series: dict[str, list[float]] = field(default_factory=dict)
    #: name -> a JSON-able value (tables, per-layer records) or a file made by :func:`blob`
    #: (PNG images). Stored in the results DB's ``artifacts`` table, exported with the run.
    artifacts: dict[str, Any] = field(default_factory=dict)


#: The largest artifact the results DB keeps (bytes); a bigger one is dropped with a note.
MAX_ARTIFACT_BYTES = 2_000_000


def blob(data: bytes, media_type: str = "image/png") -> dict[str, str]:
    """A binary artifact in JSON form: ``{"media_type": ..., "data_b64": ...}``."""
    return {"media_type": media_type, "data_b64": base64.b64encode(data).decode("ascii")}


def is_blob(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"media_type", "data_b64"}


def artifact_bytes(value: Any) -> tuple[str, bytes]:
    """``(media_type, bytes)`` of an artifact value: a :func:`blob`, or JSON for the rest."""
    if is_blob(value):
        return value["media_type"], base64.b64decode(value["data_b64"])
    return "application/json", canonical_json(value).encode()


def artifact_value(media_type: str, data: bytes) -> Any:
    """The inverse of :func:`artifact_bytes`."""
    if media_type == "application/json":
        return json.loads(data.decode())
    return blob(data, media_type)
