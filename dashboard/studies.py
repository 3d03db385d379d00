"""Optuna sweeps, read generically through the Optuna API from an RDB storage (read-only).

A study belongs to a claim and an arm when its user attributes say so (``claim_id`` or
``claim``, and ``arm``), or else when its name ends in ``:<arm>`` / ``/<arm>`` /
``-<arm>`` (``<claim id>:treatment``); any other study is shown under its own name. Pure
functions (no Streamlit), unit-tested against a real SQLite Optuna storage.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import make_url

ARMS = ("treatment", "baseline", "both")
_ARM_SUFFIX = re.compile(r"^(?P<claim>.+?)[:/@-](?P<arm>treatment|baseline)$")


class NoStorage(Exception):
    """No Optuna storage at the given URL (yet)."""


def open_storage(url: str):
    """A read-only :class:`optuna.storages.RDBStorage` (SQLite via a ``mode=ro`` URI; no table
    creation, no schema check). Raises :class:`NoStorage` when a SQLite file does not exist."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "://" not in url:
        url = f"sqlite:///{url}"
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        path = Path(u.database or "").expanduser().resolve()
        if not u.database or not path.is_file():
            raise NoStorage(f"no Optuna storage at {path}")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    return optuna.storages.RDBStorage(url, skip_table_creation=True,
                                      skip_compatibility_check=True)


def claim_and_arm(name: str, attrs: dict[str, Any]) -> tuple[str, str]:
    claim = str(attrs.get("claim_id") or attrs.get("claim") or "")
    arm = str(attrs.get("arm") or "")
    if not (claim and arm):
        m = _ARM_SUFFIX.match(name)
        if m:
            claim, arm = claim or m["claim"], arm or m["arm"]
    return claim or name, arm or "-"


STUDY_COLUMNS = ["study", "claim", "arm", "direction", "trials", "complete", "pruned", "failed",
                 "best_value", "best_params", "best_trial", "started"]


def list_studies(storage) -> pd.DataFrame:
    """One row per study: claim, arm, direction, trial counts by state, best value/params."""
    import optuna
    from optuna.trial import TrialState

    out = []
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        study = optuna.load_study(study_name=s.study_name, storage=storage)
        trials = study.get_trials(deepcopy=False)
        states = [t.state for t in trials]
        claim, arm = claim_and_arm(s.study_name, dict(s.user_attrs))
        best = None
        if any(st == TrialState.COMPLETE for st in states) and len(study.directions) == 1:
            best = study.best_trial
        out.append({
            "study": s.study_name, "claim": claim, "arm": arm,
            "direction": study.directions[0].name.lower() if study.directions else "",
            "trials": len(trials), "complete": states.count(TrialState.COMPLETE),
            "pruned": states.count(TrialState.PRUNED), "failed": states.count(TrialState.FAIL),
            "best_value": best.value if best else None,
            "best_params": best.params if best else {},
            "best_trial": best.number if best else None, "started": s.datetime_start,
        })
    return pd.DataFrame(out, columns=STUDY_COLUMNS)


def trials_frame(storage, study_name: str) -> pd.DataFrame:
    """Every trial of a study: number, state, value, start/finish times, params."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage)
    rows = [{"number": t.number, "state": t.state.name.lower(),
             "value": t.value if t.values and len(t.values) == 1 else None,
             "datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
             "params": t.params} for t in study.get_trials(deepcopy=False)]
    return pd.DataFrame(rows, columns=["number", "state", "value", "datetime_start",
                                       "datetime_complete", "params"])


def importances(storage, study_name: str) -> pd.DataFrame:
    """Parameter importances (Optuna's default evaluator); empty when the study cannot say
    (fewer than two complete trials, or no parameter varied)."""
    import optuna

    study = optuna.load_study(study_name=study_name, storage=storage)
    try:
        imp = optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError, ZeroDivisionError):
        imp = {}
    return pd.DataFrame(sorted(imp.items(), key=lambda kv: -kv[1]),
                        columns=["param", "importance"])
