"""Sweeps that run: real Optuna storage, real scheduler and worker processes, synthetic data.

Points are enqueued into the study (Optuna's own API) so that what happens is known: a good
learning rate completes, a useless one is pruned after its first epoch by the median pruner
(from the worker's PROGRESS line), a huge one diverges, and runs that time out are retried
with the same point until the sweep gives up with the error."""

from __future__ import annotations

import json

import optuna
import pytest

from suite import db, sweep
from suite.claims import parse_claims
from suite.errors import SuiteError

CID = "demo/tune"


def make_claim(**sweep_over):
    table = {"trials": 3, "metric": "val_loss", "val_split": 0.25, "startup_trials": 1,
             "prune_after": 1, "pruner": "median",
             "params": {"lr": {"low": 1e-7, "high": 1e5, "log": True}}, **sweep_over}
    raw = {"papers": {"demo": {"title": "demo"}}, "claim": [{
        "id": CID, "paper": "demo", "source": "test", "task": "train_eval",
        "model": "test_cnn", "dataset": "synthetic", "model_args": {"width": 4},
        "dataset_args": {"train_size": 128, "test_size": 32, "size": 16, "num_classes": 4},
        "params": {"epochs": 3, "batch_size": 16, "lr": 0.03, "schedule": "constant"},
        "seeds": [0], "min_runs": 1, "timeout_s": 300,
        "expect": {"kind": "absolute", "metric": "top1", "direction": "higher", "value": 0.0},
        "sweep": table}]}
    return parse_claims(raw)[1][0]


def enqueue(claim, url: str, lrs: list[float]) -> optuna.Study:
    study = optuna.create_study(study_name=sweep.study_name(claim, "full", "treatment"),
                                storage=url, direction=claim.form("full").sweep.direction)
    for lr in lrs:
        study.enqueue_trial({"params.lr": lr})
    return study


def test_complete_pruned_and_diverged_trials(tmp_path, db_url):
    claim = make_claim()
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    enqueue(claim, url, [0.03, 1e-6, 1e4])
    engine = db.connect(db_url)
    backend = sweep.TrialBackend(engine, workdir=str(tmp_path / "w"))
    events: list[tuple[str, dict]] = []
    sweep.Sweeper(claim, "full", ("treatment",), url, backend,
                  on_trial=lambda k, d: events.append((k, d))).run()

    study = optuna.load_study(study_name=sweep.study_name(claim, "full", "treatment"),
                              storage=url)
    t0, t1, t2 = study.get_trials()
    runs = db.runs_by_key(engine)
    assert len(runs) == 3 and {r.arm for r in runs.values()} == {"sweep"}

    # a good point completes; its value is the held-out validation loss, never a test number
    assert t0.state == optuna.trial.TrialState.COMPLETE
    r0 = runs[t0.user_attrs["run_key"]]
    m0 = r0.metric_dict()
    assert r0.status == "ok" and t0.value == m0["objective"] == m0["val_loss"]
    assert t0.value != m0["test_loss"]
    assert r0.config["params"]["val_split"] == 0.25 and r0.config["params"]["lr"] == 0.03
    assert r0.config["sweep"] == {"study": study.study_name, "trial": 0, "arm": "treatment"}
    assert r0.provenance["validation"]["from"] == "train"
    assert sorted(t0.intermediate_values) == [1, 2, 3]

    # a useless point is stopped after epoch 1 (worse than the median of trial 0 there)
    assert t1.state == optuna.trial.TrialState.PRUNED
    r1 = runs[t1.user_attrs["run_key"]]
    assert r1.status == "pruned"
    assert r1.message.startswith("pruned by the median pruner after epoch 1/3: val_loss = ")
    assert r1.metric_dict()["epochs"] == 1.0 and list(t1.intermediate_values) == [1]
    assert t1.intermediate_values[1] > t0.intermediate_values[1]
    assert not list((tmp_path / "w" / "checkpoints").glob("*.pt*")), "no stale checkpoint"

    # a diverging point is a pruned trial (a retry would diverge again), its run an error row
    assert t2.state == optuna.trial.TrialState.PRUNED
    assert t2.user_attrs["outcome"].startswith("training diverged")
    assert runs[t2.user_attrs["run_key"]].status == "error"

    outcomes = [d["outcome"] for k, d in events if k == "done"]
    assert outcomes == ["complete", "pruned", "diverged"]
    assert [d["epoch"] for k, d in events if k == "epoch" and d["trial"] == 0] == [1, 2, 3]

    info = sweep.study_infos(claim, "full", url)[0]
    assert (info.complete, info.pruned, info.budget, info.best_trial) == (1, 2, 3, 0)

    # the budget is reached: running the sweep again runs nothing
    sweep.Sweeper(claim, "full", ("treatment",), url, backend).run()
    assert len(study.get_trials()) == 3 and len(db.runs_by_key(engine)) == 3


def test_failed_trials_are_retried_with_their_point_then_the_sweep_stops(tmp_path, db_url):
    claim = make_claim(retries=1, trials=2)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    engine = db.connect(db_url)
    # every run is killed by its timeout (300 s × 1e-4) long before it can finish
    backend = sweep.TrialBackend(engine, workdir=str(tmp_path / "w"), timeout_scale=1e-4)
    with pytest.raises(SuiteError, match=r"failed in a row; last error: timeout: killed "
                                         r"after 0 s"):
        sweep.Sweeper(claim, "full", ("treatment",), url, backend).run()
    study = optuna.load_study(study_name=sweep.study_name(claim, "full", "treatment"),
                              storage=url)
    trials = study.get_trials(states=(optuna.trial.TrialState.FAIL,))
    assert len(trials) == 3
    first, retry, fresh = trials
    # the fresh point's retry waits for the next sweep
    (waiting,) = study.get_trials(states=(optuna.trial.TrialState.WAITING,))
    assert waiting.user_attrs == {"attempt": 2, "retry_of": fresh.number}
    assert retry.params == first.params and retry.user_attrs["retry_of"] == 0
    assert retry.user_attrs["attempt"] == 2 and "attempt" not in first.user_attrs
    assert retry.user_attrs["run_key"] == first.user_attrs["run_key"]
    assert fresh.params != first.params  # retries are spent: a new point is drawn
    assert "timeout" in first.user_attrs["error"]
    row = db.runs_by_key(engine)[first.user_attrs["run_key"]]
    assert row.status == "timeout" and row.attempts == 2
    assert json.loads(json.dumps(row.config))["sweep"]["trial"] in (0, 1)
