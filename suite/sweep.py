"""Optuna sweeps: tune each arm of a claim with the same budget, on a held-out split.

A claim's ``[claim.sweep]`` table (or ``[claim.tiers.<tier>.sweep]``; parsed into a
:class:`~suite.specs.SweepSpec` by :mod:`suite.claims`) names a search space of parameter
paths and the study settings. :class:`Sweeper` runs one Optuna study per (claim, tier, arm):

* **Trials are ordinary runs.** A trial's point is written into the arm's recipe
  (:func:`apply_point`), with ``params.val_split`` and ``params.objective`` added, and run as a
  :class:`~suite.specs.RunSpec` with ``arm = "sweep"`` and ``sweep = {study, trial, arm}``
  through the scheduler (:func:`run_trial`, the one function that knows how runs execute).
  Each is recorded in the results DB like any run; the trial keeps its ``run_key``.
* **The tuning metric is never the test set.** The objective is a validation metric of the
  task (``val_top1`` ...), measured on ``val_split`` of the *training* set
  (``tasks/train_eval.py`` refuses an objective that is not one).
* **Pruning.** The worker prints ``PROGRESS {json}`` per epoch; the scheduler hands each line
  to :func:`run_trial`'s ``on_epoch``, which reports the epoch's objective to the trial
  (``trial.report``) and asks the pruner (median or successive halving); a pruned run is
  stopped (:meth:`~suite.scheduler.Scheduler.stop`) and recorded with status ``pruned``. A run
  that diverges is also a pruned trial (``user_attrs.outcome``): retrying it would diverge
  again.
* **Equal budget.** ``--arm both`` runs the arms' studies interleaved, one trial each in turn,
  with the same space, sampler seed, pruner and number of finished trials (complete or
  pruned); a seeded sampler starts both arms on the same random points.
* **Storage and resume.** Studies live in an RDB (``sqlite:///optuna.db`` by default, or any
  SQLAlchemy URL), loaded if they exist. A trial that failed (crash, timeout) is enqueued
  again with the same point, up to ``retries`` times; it has the same run_key, so its
  worker resumes from the last epoch's checkpoint. A trial left ``RUNNING`` by a killed sweep
  (its process on this host is gone, or its heartbeat is stale) is failed and retried the
  same way, so rerunning a killed sweep continues where it stopped.
* **Study names** are ``<claim>@<tier>:<arm>#<hash>``; the hash covers the arm's recipe and
  the sweep settings except the budget, so editing either starts a new study and
  ``--trials`` can grow an existing one.

``run --use-best`` runs a claim with each arm's best point (:func:`tuned_claims`), and the
report states that the comparison was tuned and with what budget (:func:`study_infos`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from suite.errors import SuiteError
from suite.leases import pid_alive
from suite.plan import baseline_form
from suite.specs import Claim, RunSpec, SearchParam, SweepSpec, TierForm, short_hash

DEFAULT_STORAGE = "sqlite:///optuna.db"
STORAGE_ENV = "POOLREPRO_OPTUNA"
ARMS = ("treatment", "baseline")
HEARTBEAT_S = 30  # a RUNNING trial without a heartbeat for GRACE_S is failed and retried
GRACE_S = 120


# -- what a trial runs ---------------------------------------------------------------------
def sweep_of(claim: Claim, tier: str) -> SweepSpec:
    form = claim.form(tier)
    if form is None:
        why = f" ({claim.skip[tier]})" if tier in claim.skip else " in tasks.toml"
        raise SuiteError(f"sweep: claim {claim.id!r} has no {tier} form{why}")
    if form.sweep is None:
        raise SuiteError(f"sweep: claim {claim.id!r} has no sweep at tier {tier}; add a "
                         f"[claim.sweep] (or [claim.tiers.{tier}.sweep]) table with a space, "
                         f"e.g. params.lr = {{ low = 0.01, high = 0.3, log = true }}")
    return form.sweep


def arms_of(claim: Claim, tier: str) -> tuple[str, ...]:
    form = claim.form(tier)
    delta = form is not None and form.expect is not None and form.expect.kind == "delta"
    return ARMS if delta else ("treatment",)


def arm_form(claim: Claim, tier: str, arm: str) -> TierForm:
    """The recipe an arm runs: the claim's form, or its baseline (``expect.baseline``)."""
    form = claim.form(tier)
    assert form is not None
    if arm == "treatment":
        return form
    if arm not in arms_of(claim, tier):
        raise SuiteError(f"sweep: claim {claim.id!r} is not a delta claim; it has no baseline "
                         f"arm to tune (use --arm treatment)")
    return baseline_form(form)


def apply_point(form: TierForm, point: dict[str, Any]) -> TierForm:
    """``form`` with each ``path -> value`` of ``point`` set (``params.lr``,
    ``model_args.width``, ``params.augment.crop_padding``)."""
    tables = {"params": copy.deepcopy(form.params), "model_args": copy.deepcopy(form.model_args)}
    for path, value in point.items():
        root, *keys = path.split(".")
        node = tables[root]
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = value
    return replace(form, **tables)


def study_name(claim: Claim, tier: str, arm: str) -> str:
    """``<claim>@<tier>:<arm>#<hash of the arm's recipe and the sweep settings>``."""
    sw = sweep_of(claim, tier)
    form = arm_form(claim, tier, arm)
    settings = {k: v for k, v in asdict(sw).items() if k not in ("trials", "retries")}
    return f"{claim.id}@{tier}:{arm}#{short_hash([form.config(), settings], 8)}"


def trial_spec(claim: Claim, tier: str, arm: str, point: dict[str, Any], study: str,
               number: int, device: str | None = None) -> RunSpec:
    """The run of one trial: the arm's recipe at ``point``, trained on the training set less
    ``val_split``, reporting the sweep's metric as ``objective``; seed = the tier's first."""
    sw = sweep_of(claim, tier)
    form = apply_point(arm_form(claim, tier, arm), point)
    params = {**form.params, "val_split": sw.val_split, "objective": sw.metric}
    return RunSpec(
        claim_id=claim.id, tier=tier, arm="sweep", seed=form.seeds[0], task=form.task,
        model=form.model, dataset=form.dataset, model_args=form.model_args,
        dataset_args=form.dataset_args, params=params, device=device or form.device,
        timeout_s=form.timeout_s, claim_hash=claim.definition_hash,
        sweep={"study": study, "trial": number, "arm": arm},
    )


# -- how a trial runs (the seam to the execution engine) ------------------------------------
@dataclass
class TrialBackend:
    """What :func:`run_trial` needs to execute runs: the results DB and the scheduler's
    options. One :class:`~suite.scheduler.Scheduler` (warm workers, or Ray) serves every
    trial of a sweep; ``jobs`` trials run at a time, each on a device of ``devices``
    (round-robin, as ``run --devices --jobs``). Use it as a context manager (or call
    :meth:`close`) so the workers are shut down."""

    engine: Any
    devices: str = "cpu"
    jobs: int = 1
    workdir: str = ".cache/poolrepro"
    mirror: Any = None
    timeout_scale: float = 1.0
    paper_of: Callable[[str], str] = field(default=lambda cid: cid.split("/")[0])
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    backend: str = "local"
    address: str | None = None
    _sched: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def scheduler(self) -> Any:
        """The shared scheduler, opened on first use (thread-safe)."""
        with self._lock:
            if self._sched is None:
                from suite.scheduler import Scheduler

                def on_event(kind: str, data: dict[str, Any]) -> None:
                    if self.on_event is not None:
                        self.on_event(kind, data)

                self._sched = Scheduler(self.engine, devices=self.devices, jobs=self.jobs,
                                        workdir=self.workdir, mirror=self.mirror,
                                        paper_of=self.paper_of, on_event=on_event,
                                        timeout_scale=self.timeout_scale,
                                        backend=self.backend, address=self.address).open()
            return self._sched

    def close(self, cancel: bool = False) -> None:
        with self._lock:
            if self._sched is not None:
                self._sched.close(cancel=cancel)
                self._sched = None

    def __enter__(self) -> TrialBackend:
        return self

    def __exit__(self, exc_type, *exc: Any) -> None:
        self.close(cancel=exc_type is not None)


OnEpoch = Callable[[int, int, dict[str, float]], "str | None"]


def run_trial(spec: RunSpec, backend: TrialBackend, on_epoch: OnEpoch) -> dict[str, Any]:
    """Run ``spec`` through the scheduler, record it, and return its ``RESULT`` dict.

    ``on_epoch(epoch, total, metrics)`` sees each epoch the worker reports; when it returns
    a reason, the run is stopped there and recorded as ``pruned`` with that message. A run
    that is already ``ok`` in the results DB is not rerun: its stored result is returned.
    """

    def control(progress: dict[str, Any]) -> str | None:
        return on_epoch(int(progress["epoch"]), int(progress["total"]),
                        progress.get("metrics") or {})

    return backend.scheduler().run_one(spec, control=control)


# -- storage ------------------------------------------------------------------------------
def require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError as e:
        raise SuiteError("sweeps need Optuna: pip install 'poolrepro[sweep]'") from e


def resolve_storage(url: str | None, results_url: str | None = None) -> str:
    """``url``, else ``$POOLREPRO_OPTUNA``, else ``sqlite:///optuna.db``; a bare path means
    SQLite. Refuses the results DB itself: Optuna and the results schema would both keep
    their Alembic revision in one ``alembic_version`` table."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = url or os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE
    if "://" not in url:
        url = f"sqlite:///{url}"
    try:
        u = make_url(url)
    except ArgumentError as e:
        raise SuiteError(f"--storage {url!r} is not a SQLAlchemy URL ({e}); use e.g. "
                         f"sqlite:///optuna.db or postgresql+psycopg://user@host/optuna") from e
    if results_url and _same_db(url, results_url):
        raise SuiteError(
            f"--storage {url!r} is the results DB; Optuna keeps its own schema (and Alembic "
            f"version table) and needs its own database: e.g. sqlite:///optuna.db, another "
            f"PostgreSQL database on the same server, or the same one with "
            f"'?options=-csearch_path%3Doptuna' (a schema created beforehand)")
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        parent = Path(u.database).expanduser().resolve().parent
        if not parent.is_dir():
            raise SuiteError(f"--storage: directory {parent} does not exist (from {url!r})")
    return url


def _same_db(a: str, b: str) -> bool:
    from sqlalchemy.engine import make_url

    ua, ub = make_url(a), make_url(b)
    if ua.get_backend_name() == ub.get_backend_name() == "sqlite":
        return bool(ua.database and ub.database) and (
            Path(ua.database).expanduser().resolve() == Path(ub.database).expanduser().resolve())
    return ua.render_as_string(hide_password=True) == ub.render_as_string(hide_password=True)


def _storage_exists(url: str) -> bool:
    """False for a SQLite file that is not there (reading must not create one)."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database).expanduser().is_file()
    return True


def open_storage(url: str, on_stale: Callable | None = None):
    """An Optuna RDB storage with heartbeats (a dead sweep's trials become retryable)."""
    require_optuna()
    import optuna

    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    import inspect

    # Optuna ≥ 4.9 calls the stale-trial callback heartbeat_stale_trial_callback
    accepted = inspect.signature(optuna.storages.RDBStorage).parameters
    callback = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in accepted
                else "failed_trial_callback")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S,
                grace_period=GRACE_S, **{callback: on_stale})
    except Exception as e:  # unreachable server, missing driver, newer schema
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise SuiteError(f"cannot open the Optuna storage {url!r}: {first}") from e


# -- running studies --------------------------------------------------------------------
class TrialFailed(Exception):
    """A trial's run failed for a reason worth retrying (crash, timeout, lost RESULT)."""


def _suggest(trial, p: SearchParam) -> Any:
    if p.kind == "categorical":
        return trial.suggest_categorical(p.path, list(p.choices or ()))
    if p.kind == "int":
        return trial.suggest_int(p.path, int(p.low), int(p.high), step=int(p.step or 1),
                                 log=p.log)
    return trial.suggest_float(p.path, float(p.low), float(p.high), step=p.step, log=p.log)


def _sampler(sw: SweepSpec, offset: int):
    import optuna

    seed = sw.seed + offset  # a resumed sweep must not replay its first random points
    if sw.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=sw.startup_trials)


def _pruner(sw: SweepSpec):
    import optuna

    if sw.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=sw.startup_trials,
                                           n_warmup_steps=sw.prune_after)
    if sw.pruner == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=sw.prune_after,
                                                      reduction_factor=3)
    return optuna.pruners.NopPruner()


def _finished(study) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False,
                                states=(TrialState.COMPLETE, TrialState.PRUNED)))


@dataclass
class ArmStudy:
    arm: str
    name: str
    study: Any
    started: int = 0  # finished trials when this sweep began


@dataclass
class SweepOutcome:
    claim: str
    tier: str
    studies: list[ArmStudy]
    trials: int


class Sweeper:
    """Runs the studies of one claim at one tier until each arm has ``trials`` finished
    trials. ``on_trial(kind, info)`` receives ``start``/``epoch``/``done`` events for the UI."""

    def __init__(self, claim: Claim, tier: str, arms: tuple[str, ...], storage_url: str,
                 backend: TrialBackend, trials: int | None = None,
                 on_trial: Callable[[str, dict[str, Any]], None] | None = None):
        self.claim, self.tier, self.arms = claim, tier, arms
        self.sweep = sweep_of(claim, tier)
        self.trials = trials or self.sweep.trials
        self.jobs = max(1, backend.jobs)
        self.backend = backend
        self.on_trial = on_trial or (lambda kind, info: None)
        self.storage_url = storage_url
        self.storage = open_storage(storage_url, on_stale=self._retry)
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.last_error = ""

    # -- studies -------------------------------------------------------------------------
    def _study(self, arm: str) -> ArmStudy:
        import optuna

        name = study_name(self.claim, self.tier, arm)
        sw = self.sweep
        study = optuna.create_study(storage=self.storage, study_name=name,
                                    direction=sw.direction, pruner=_pruner(sw),
                                    load_if_exists=True)
        # seeded by the finished trials: a resumed sweep draws new points, and arms that
        # advance together keep drawing the same ones
        study.sampler = _sampler(sw, _finished(study))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([sw.metric])
        attrs = {"claim": self.claim.id, "tier": self.tier, "arm": arm, "metric": sw.metric,
                 "val_split": sw.val_split, "sampler": sw.sampler, "pruner": sw.pruner,
                 "space": [asdict(p) for p in sw.space],
                 "recipe": arm_form(self.claim, self.tier, arm).config()}
        for k, v in attrs.items():
            if study.user_attrs.get(k) != json.loads(json.dumps(v, default=str)):
                study.set_user_attr(k, json.loads(json.dumps(v, default=str)))
        return ArmStudy(arm, name, study, _finished(study))

    def _retry(self, study, trial, count: bool = True) -> None:
        """Enqueue a failed trial's point again (same run_key: its worker resumes).
        ``count=False``: the trial did not fail, its sweep was killed (no retry is spent)."""
        attempt = int(trial.user_attrs.get("attempt", 1))
        if count and attempt > self.sweep.retries:
            return
        study.enqueue_trial(dict(trial.params), user_attrs={
            "attempt": attempt + 1 if count else attempt,
            "retry_of": int(trial.user_attrs.get("retry_of", trial.number))})

    def _recover(self, s: ArmStudy) -> int:
        """Fail and retry the trials a dead sweep process on this host left RUNNING (the
        heartbeat catches those of other hosts after GRACE_S)."""
        from optuna.trial import TrialState

        n = 0
        for t in s.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
            if host == self.host and isinstance(pid, int) and not pid_alive(pid):
                s.study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
                self._retry(s.study, t, count=False)
                n += 1
        return n

    # -- one trial -----------------------------------------------------------------------
    def _objective(self, s: ArmStudy) -> Callable:
        import optuna

        def objective(trial) -> float:
            point = {p.path: _suggest(trial, p) for p in self.sweep.space}
            spec = trial_spec(self.claim, self.tier, s.arm, point, s.name, trial.number)
            trial.set_user_attr("host", self.host)
            trial.set_user_attr("pid", self.pid)
            trial.set_user_attr("run_key", spec.run_key)
            info = {"arm": s.arm, "trial": trial.number, "point": point,
                    "run_key": spec.run_key, "attempt": trial.user_attrs.get("attempt", 1)}
            self.on_trial("start", info)
            reported: set[int] = set()
            stopped: list[str] = []  # why on_epoch asked the backend to stop the run

            def on_epoch(epoch: int, total: int, metrics: dict[str, float]) -> str | None:
                value = metrics.get("objective")
                self.on_trial("epoch", {**info, "epoch": epoch, "total": total,
                                        "value": value})
                if value is None or not math.isfinite(value) or epoch in reported:
                    return None
                trial.report(float(value), epoch)
                reported.add(epoch)
                if epoch < total and trial.should_prune():
                    stopped.append(f"pruned by the {self.sweep.pruner} pruner after epoch "
                                   f"{epoch}/{total}: {self.sweep.metric} = {value:.4g} "
                                   f"(study {s.name}, trial {trial.number})")
                    return stopped[-1]
                return None

            try:
                result = run_trial(spec, self.backend, on_epoch)
            except KeyboardInterrupt:  # rerunning the sweep retries this point first
                trial.set_user_attr("interrupted", True)
                self._retry(s.study, trial, count=False)
                raise
            status, msg = result["status"], str(result.get("message") or "")
            value = result.get("metrics", {}).get("objective")
            diverged = status == "error" and msg.startswith("training diverged")
            outcome = {"ok": "complete", "pruned": "pruned", "skipped": "skipped"}.get(
                status, "diverged" if diverged else "failed")
            if stopped and status != "ok":  # however the backend records a stopped run
                outcome, msg = "pruned", stopped[-1]
            if outcome == "complete" and (value is None or not math.isfinite(value)):
                outcome, msg = "failed", f"run {spec.run_key} reported no finite objective"
            self.on_trial("done", {**info, "outcome": outcome, "value": value,
                                   "message": msg.splitlines()[0] if msg else "",
                                   "wall_s": result.get("wall_s")})
            if outcome == "complete":
                for epoch, v in enumerate(result.get("series", {}).get("objective", []), 1):
                    if epoch not in reported and v is not None and math.isfinite(v):
                        trial.report(float(v), epoch)  # a stored run: give the pruner its curve
                return float(value)
            if outcome in ("pruned", "diverged"):  # a retry would diverge again
                trial.set_user_attr("outcome", msg.splitlines()[0][:300] if msg else outcome)
                raise optuna.TrialPruned(msg)
            if outcome == "skipped":
                raise SuiteError(f"sweep: trial {trial.number} of {s.name} was skipped: "
                                 f"{msg}")
            self.last_error = f"{status}: {msg}"
            trial.set_user_attr("error", self.last_error[:1000])
            raise TrialFailed(self.last_error)

        return objective

    def _after(self, study, trial) -> None:
        from optuna.trial import TrialState

        if trial.state == TrialState.FAIL:
            self._retry(study, trial)

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> SweepOutcome:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)  # our own lines say it all
        studies = [self._study(arm) for arm in self.arms]
        for s in studies:
            n = self._recover(s)
            if n:
                self.on_trial("recovered", {"arm": s.arm, "n": n, "study": s.name})
        out = SweepOutcome(self.claim.id, self.tier, studies, self.trials)
        self.on_trial("begin", {"studies": [(s.arm, s.name, s.started) for s in studies],
                                "trials": self.trials})
        stalled = 0
        while True:
            todo = [s for s in studies if _finished(s.study) < self.trials]
            if not todo:
                break
            before = sum(_finished(s.study) for s in studies)
            for s in todo:  # interleaved: the arms advance together, even if interrupted
                k = min(self.jobs, self.trials - _finished(s.study))
                s.study.optimize(self._objective(s), n_trials=k, n_jobs=k,
                                 catch=(TrialFailed,), callbacks=[self._after])
            if sum(_finished(s.study) for s in studies) == before:
                stalled += 1
                if stalled > self.sweep.retries + 1:
                    raise SuiteError(
                        f"sweep: {stalled} rounds of trials of {self.claim.id} failed in a "
                        f"row; last error: {self.last_error}")
            else:
                stalled = 0
        return out


# -- reading studies back -----------------------------------------------------------------
@dataclass(frozen=True)
class StudyInfo:
    """One arm's study as the report and ``--use-best`` see it."""

    claim: str
    tier: str
    arm: str
    name: str
    exists: bool
    metric: str = ""
    direction: str = ""
    complete: int = 0
    pruned: int = 0
    failed: int = 0
    running: int = 0
    best_value: float | None = None
    best_params: dict[str, Any] = field(default_factory=dict)
    best_trial: int | None = None
    best_run_key: str = ""
    importances: dict[str, float] = field(default_factory=dict)

    @property
    def budget(self) -> int:
        """Finished trials (complete + pruned): what counts against ``--trials``."""
        return self.complete + self.pruned


def study_infos(claim: Claim, tier: str, storage_url: str, importances: bool = False
                ) -> list[StudyInfo]:
    """Each arm's study of ``claim`` at ``tier`` (``exists=False`` when not run yet)."""
    sw = sweep_of(claim, tier)
    names = {arm: study_name(claim, tier, arm) for arm in arms_of(claim, tier)}
    if not _storage_exists(storage_url):
        return [StudyInfo(claim.id, tier, arm, name, False) for arm, name in names.items()]
    storage = open_storage(storage_url)
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        have = set(optuna.get_all_study_names(storage))
    except Exception as e:  # a file that is not an Optuna storage, a lost connection
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise SuiteError(f"cannot read the Optuna storage {storage_url!r}: {first}") from e
    out = []
    for arm, name in names.items():
        if name not in have:
            out.append(StudyInfo(claim.id, tier, arm, name, False, sw.metric, sw.direction))
            continue
        study = optuna.load_study(study_name=name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        count = {st: sum(t.state == st for t in trials) for st in TrialState}
        best = None
        if count[TrialState.COMPLETE]:
            best = study.best_trial
        imp: dict[str, float] = {}
        if importances and count[TrialState.COMPLETE] >= 2:
            try:
                with warnings.catch_warnings():  # "importances will be equal" on few trials
                    warnings.simplefilter("ignore", UserWarning)
                    imp = optuna.importance.get_param_importances(study)
            except Exception:  # too few distinct points: no importances, not an error
                imp = {}
        out.append(StudyInfo(
            claim.id, tier, arm, name, True, sw.metric, sw.direction,
            complete=count[TrialState.COMPLETE], pruned=count[TrialState.PRUNED],
            failed=count[TrialState.FAIL], running=count[TrialState.RUNNING],
            best_value=best.value if best else None,
            best_params=dict(best.params) if best else {},
            best_trial=best.number if best else None,
            best_run_key=str(best.user_attrs.get("run_key", "")) if best else "",
            importances={k: float(v) for k, v in imp.items()}))
    return out


@dataclass(frozen=True)
class Tuning:
    """How a claim's comparison was tuned: shown with its verdict."""

    infos: tuple[StudyInfo, ...]
    sweep: SweepSpec

    def note(self) -> str:
        sw = self.sweep
        vs = f"{sw.val_split:.0%}" if isinstance(sw.val_split, float) else f"{sw.val_split}"
        budgets = sorted({i.budget for i in self.infos})
        per_arm = (f"{budgets[0]} trials per arm" if len(budgets) == 1 else
                   ", ".join(f"{i.arm} {i.budget} trials" for i in self.infos))
        best = "; ".join(f"{i.arm}: " + ", ".join(f"{k}={_fmt(v)}"
                                                  for k, v in sorted(i.best_params.items()))
                         for i in self.infos)
        pruner = f"{sw.pruner} pruner" if sw.pruner != "none" else "no pruning"
        return (f"tuned: Optuna {sw.sampler}, {per_arm} ({pruner}), objective {sw.metric} on "
                f"{vs} of the training set held out (never the test set); best {best}")


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def tuned_claims(claims: list[Claim], tier: str, storage_url: str
                 ) -> tuple[list[Claim], dict[str, Tuning]]:
    """Each claim with a sweep at ``tier`` rewritten to run every arm at its study's best
    point (the treatment's in the recipe, the baseline's in ``expect.baseline``); claims
    without a sweep are returned unchanged. Refuses a claim whose arms have no finished study
    or unequal budgets, naming the command that fixes it."""
    out, tunings, problems = [], {}, []
    for c in claims:
        form = c.form(tier)
        if form is None or form.sweep is None:
            out.append(c)
            continue
        infos = study_infos(c, tier, storage_url)
        fix = f"python -m suite sweep {c.id} --tier {tier} --arm both"
        missing = [i.arm for i in infos if not i.exists or i.best_value is None]
        budgets = {i.budget for i in infos}
        if missing:
            problems.append(f"{c.id}: no finished trial for arm(s) {', '.join(missing)} in "
                            f"{storage_url}; run `{fix}`")
            continue
        if len(budgets) > 1:
            problems.append(f"{c.id}: unequal tuning budgets ("
                            + ", ".join(f"{i.arm} {i.budget}" for i in infos)
                            + f"); run `{fix} --trials {max(budgets)}`")
            continue
        by_arm = {i.arm: i for i in infos}
        tuned = apply_point(form, by_arm["treatment"].best_params)
        if "baseline" in by_arm and tuned.expect is not None:
            base = copy.deepcopy(tuned.expect.baseline)
            for path, value in by_arm["baseline"].best_params.items():
                if by_arm["treatment"].best_params.get(path) == value:
                    continue  # the baseline inherits the treatment's (tuned) recipe
                root, *keys = path.split(".")
                node = base.setdefault(root, {})
                for k in keys[:-1]:
                    node = node.setdefault(k, {})
                node[keys[-1]] = value
            tuned = replace(tuned, expect=replace(tuned.expect, baseline=base))
        out.append(replace(c, tiers={**c.tiers, tier: tuned}))
        tunings[c.id] = Tuning(tuple(infos), form.sweep)
    if problems:
        raise SuiteError("--use-best: " + "; ".join(problems))
    return out, tunings
