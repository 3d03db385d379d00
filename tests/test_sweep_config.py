"""Sweep tables in tasks.toml and the pure parts of suite/sweep.py: validation with
did-you-mean, the search space mapped onto Optuna's suggest_*, study names, trial specs
(run keys), storage URLs, and --use-best over studies in a real Optuna storage (no runs)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from typing import Any

import optuna
import pytest

from suite import sweep
from suite.claims import parse_claims
from suite.deepcheck import deep_check
from suite.errors import ClaimsError, SuiteError
from suite.plan import make_plan
from suite.specs import RunSpec, SearchParam

CID = "demo/delta"
SPACE = {"params": {"lr": {"low": 0.01, "high": 0.3, "log": True},
                    "init": {"choices": ["default", "kaiming_normal"]}},
         "model_args": {"width": {"low": 4, "high": 8, "step": 4}}}


def claim(sweep_table: dict | None = None, **kw: Any) -> dict[str, Any]:
    c = {
        "id": CID, "paper": "demo", "source": "Table 1", "task": "train_eval",
        "model": "test_cnn", "dataset": "synthetic",
        "model_args": {"width": 4, "pool": "avg"}, "dataset_args": {"size": 16},
        "params": {"epochs": 2, "lr": 0.05}, "seeds": [3, 4],
        "expect": {"kind": "delta", "metric": "top1", "direction": "higher",
                   "baseline": {"model_args": {"pool": "max"}}},
        "sweep": {"trials": 4, **copy.deepcopy(SPACE)} if sweep_table is None else sweep_table,
    }
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def parse(*claims: dict[str, Any]):
    return parse_claims({"papers": {"demo": {"title": "demo"}}, "claim": list(claims)})[1]


def problems(*claims: dict[str, Any]) -> list[str]:
    with pytest.raises(ClaimsError) as ei:
        parse(*claims)
    return [str(p) for p in ei.value.problems]


def one(*claims: dict[str, Any]) -> str:
    ps = problems(*claims)
    assert len(ps) == 1, ps
    return ps[0]


# -- parsing -------------------------------------------------------------------------------
def test_sweep_table_parses_into_a_spec():
    (c,) = parse(claim())
    sw = c.form("full").sweep
    assert sw.trials == 4 and sw.metric == "val_top1" and sw.direction == "maximize"
    assert sw.val_split == 0.1 and sw.pruner == "median" and sw.sampler == "tpe"
    by = {p.path: p for p in sw.space}
    assert set(by) == {"params.lr", "params.init", "model_args.width"}
    assert by["params.lr"].kind == "float" and by["params.lr"].log
    assert by["params.init"].kind == "categorical"
    assert by["model_args.width"].kind == "int" and by["model_args.width"].step == 4


def test_loss_metric_is_minimised():
    (c,) = parse(claim({**SPACE, "metric": "val_loss"}))
    assert c.form("full").sweep.direction == "minimize"


def test_tier_sweep_overrides_and_a_range_is_replaced_whole():
    (c,) = parse(claim(tiers={"mini": {"sweep": {
        "trials": 2, "params": {"lr": {"choices": [0.01, 0.1]}}}}}))
    full, mini = c.form("full").sweep, c.form("mini").sweep
    assert full.trials == 4 and mini.trials == 2
    lr = {p.path: p for p in mini.space}["params.lr"]
    assert lr.choices == (0.01, 0.1) and lr.low is None  # not merged with {low, high, log}
    assert len(mini.space) == 3  # the other paths are inherited


def test_a_claim_without_sweep_keeps_its_definition_hash():
    with_sweep = parse(claim())[0]
    without = parse(claim(sweep=None))[0]
    assert without.form("full").sweep is None
    assert with_sweep.definition_hash != without.definition_hash
    again = parse(claim(sweep=None))[0]
    assert again.definition_hash == without.definition_hash


@pytest.mark.parametrize("table, field, want", [
    ({"trails": 3, **SPACE}, "sweep.trails", "Did you mean 'trials'?"),
    ({"param": {"lr": {"low": 0.1, "high": 1.0}}}, "sweep.param", "Did you mean 'params'?"),
    ({"params": {"lr": {"lo": 0.1, "high": 1.0}}}, "sweep.params.lr.lo",
     "Did you mean 'low'?"),
    ({"params": {"lr": {"low": 0.1}}}, "sweep.params.lr", "needs both low and high"),
    ({"params": {"lr": {"low": 0.3, "high": 0.1}}}, "sweep.params.lr", "must be below high"),
    ({"params": {"lr": {"low": 0.0, "high": 0.1, "log": True}}}, "sweep.params.lr.low",
     "log range needs low > 0"),
    ({"params": {"lr": {"low": 0.1, "high": 1.0, "log": True, "step": 0.1}}},
     "sweep.params.lr", "log or step, not both"),
    ({"params": {"init": {"choices": []}}}, "sweep.params.init.choices", "at least one"),
    ({"params": {"init": {"choices": [{"a": 1}]}}}, "sweep.params.init.choices",
     "numbers, strings or booleans"),
    ({"params": {"init": {"choices": ["a", "a"]}}}, "sweep.params.init.choices",
     "duplicates"),
    ({"params": {"lr": 0.1}}, "sweep.params.lr", "expected a range or choices"),
    ({"params": 3}, "sweep.params", "expected a table"),
    ({"metric": "top1", **SPACE}, "sweep.metric", "never the test set"),
    ({"metric": "val_top", **SPACE}, "sweep.metric", "Did you mean 'val_top1'?"),
    ({"pruner": "medain", **SPACE}, "sweep.pruner", "Did you mean 'median'?"),
    ({"sampler": "grid", **SPACE}, "sweep.sampler", "not one of tpe, random"),
    ({"trials": 0, **SPACE}, "sweep.trials", "must be ≥ 1"),
    ({"val_split": 1.5, **SPACE}, "sweep.val_split", "fraction in (0, 1)"),
    ({"trials": 3}, "sweep", "search space is empty"),
    ({"params": {"val_split": {"low": 0.1, "high": 0.2}}}, "sweep.params.val_split",
     "set by the sweep itself"),
    ({"model_args": {"pool": {"choices": ["avg", "max"]}}}, "sweep.model_args.pool",
     "what expect.baseline changes"),
])
def test_bad_sweep_tables_name_the_field(table, field, want):
    p = one(claim(table))
    assert f"claim '{CID}', field '{field}'" in p, p
    assert want in p, p


def test_sweep_is_not_allowed_in_defaults():
    with pytest.raises(ClaimsError, match="field 'sweep': unknown key"):
        parse_claims({"papers": {"demo": {"title": "d"}}, "defaults": {"sweep": {}},
                      "claim": [claim()]})


def test_a_task_without_objectives_cannot_be_tuned():
    p = one(claim(task="param_count", expect={"kind": "absolute", "metric": "params",
                                              "value": 1.0}, dataset=None))
    assert "reports no validation objective" in p


def test_deep_check_finds_a_misspelt_parameter_path_and_bad_values():
    (c,) = parse(claim({"params": {"lrr": {"low": 0.01, "high": 0.1},
                                   "init": {"choices": ["default", "he"]}},
                        "model_args": {"widht": {"low": 4, "high": 8}}}))
    with pytest.raises(ClaimsError) as ei:
        deep_check("tasks.toml", [c])
    msgs = [str(p) for p in ei.value.problems]
    assert any("field 'sweep.params.lrr'" in m and "Did you mean 'lr'?" in m for m in msgs)
    assert any("field 'sweep.model_args.widht'" in m and "Did you mean 'width'?" in m
               for m in msgs)
    assert any("field 'sweep.params.init'" in m and "value 'he'" in m for m in msgs)
    assert len(msgs) == 3, msgs


def test_deep_check_passes_a_good_sweep():
    deep_check("tasks.toml", parse(claim()))


# -- the space, names and specs --------------------------------------------------------------
def test_space_maps_onto_suggest_calls():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = [SearchParam("params.lr", low=0.01, high=0.3, log=True),
              SearchParam("params.epochs", low=1, high=3),
              SearchParam("params.momentum", low=0.5, high=0.9, step=0.1),
              SearchParam("params.init", choices=("default", "xavier"))]
    point = {p.path: sweep._suggest(trial, p) for p in params}
    d = trial.distributions
    assert isinstance(d["params.lr"], optuna.distributions.FloatDistribution)
    assert d["params.lr"].log and d["params.lr"].low == 0.01
    assert isinstance(d["params.epochs"], optuna.distributions.IntDistribution)
    assert d["params.momentum"].step == 0.1
    assert isinstance(d["params.init"], optuna.distributions.CategoricalDistribution)
    assert isinstance(point["params.epochs"], int) and point["params.init"] in ("default",
                                                                              "xavier")


def test_apply_point_sets_nested_paths_without_touching_the_form():
    (c,) = parse(claim())
    form = c.form("full")
    new = sweep.apply_point(form, {"params.lr": 0.2, "model_args.width": 8,
                                   "params.augment.flip": True})
    assert new.params["lr"] == 0.2 and new.params["augment"] == {"flip": True}
    assert new.model_args == {"width": 8, "pool": "avg"}
    assert form.params == {"epochs": 2, "lr": 0.05} and form.model_args["width"] == 4


def test_trial_spec_holds_out_validation_and_labels_the_study():
    (c,) = parse(claim())
    spec = sweep.trial_spec(c, "full", "baseline", {"params.lr": 0.2}, "s#1", 7)
    assert spec.arm == "sweep" and spec.seed == 3
    assert spec.sweep == {"study": "s#1", "trial": 7, "arm": "baseline"}
    assert spec.model_args["pool"] == "max"  # the baseline arm's recipe
    assert spec.params == {"epochs": 2, "lr": 0.2, "val_split": 0.1, "objective": "val_top1"}
    # study and trial are labels: a retried trial reruns (and resumes) the same run
    again = sweep.trial_spec(c, "full", "baseline", {"params.lr": 0.2}, "s#1", 9)
    assert again.run_key == spec.run_key
    assert RunSpec.from_dict(spec.to_dict()) == spec


def test_existing_run_keys_are_unchanged():
    """The new RunSpec field is not hashed: a key computed before sweeps existed holds."""
    spec = RunSpec(claim_id="c", tier="smoke", arm="treatment", seed=0, task="train_eval",
                   model="test_cnn", dataset="synthetic", params={"lr": 0.1})
    assert spec.run_key == "439977cde4e60e76db81"  # computed by the code before sweeps
    legacy = {k: v for k, v in spec.to_dict().items() if k != "sweep"}
    assert RunSpec.from_dict(legacy).run_key == spec.run_key
    (c,) = parse(claim())
    (plain,) = parse(claim(sweep=None))
    keys = [r.run_key for r in make_plan([c], "full").runs]
    assert keys == [r.run_key for r in make_plan([plain], "full").runs]


def test_study_names_follow_recipe_and_settings_but_not_the_budget():
    (c,) = parse(claim())
    name = sweep.study_name(c, "full", "treatment")
    assert name.startswith(f"{CID}@full:treatment#")
    assert sweep.study_name(c, "full", "baseline") != name
    (more,) = parse(claim({"trials": 40, "retries": 5, **SPACE}))
    assert sweep.study_name(more, "full", "treatment") == name
    (other,) = parse(claim({**SPACE, "val_split": 0.2}))
    assert sweep.study_name(other, "full", "treatment") != name
    (recipe,) = parse(claim(params={"epochs": 3, "lr": 0.05}))
    assert sweep.study_name(recipe, "full", "treatment") != name


def test_absolute_claim_has_only_a_treatment_arm():
    (c,) = parse(claim(expect={"kind": "absolute", "metric": "top1", "value": 1.0}))
    assert sweep.arms_of(c, "full") == ("treatment",)
    with pytest.raises(SuiteError, match="no baseline arm"):
        sweep.arm_form(c, "full", "baseline")


def test_claim_without_sweep_or_tier_is_a_clear_error():
    (c,) = parse(claim(sweep=None))
    with pytest.raises(SuiteError, match=r"no sweep at tier full; add a \[claim.sweep\]"):
        sweep.sweep_of(c, "full")
    with pytest.raises(SuiteError, match="has no mini form"):
        sweep.sweep_of(c, "mini")


# -- storage --------------------------------------------------------------------------------
def test_storage_url_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(sweep.STORAGE_ENV, raising=False)
    assert sweep.resolve_storage(None) == "sqlite:///optuna.db"
    assert sweep.resolve_storage(str(tmp_path / "o.db")) == f"sqlite:///{tmp_path / 'o.db'}"
    monkeypatch.setenv(sweep.STORAGE_ENV, "sqlite:///x.db")
    assert sweep.resolve_storage(None) == "sqlite:///x.db"
    with pytest.raises(SuiteError, match="is the results DB"):
        sweep.resolve_storage(f"sqlite:///{tmp_path}/r.db", f"sqlite:///{tmp_path}/./r.db")
    with pytest.raises(SuiteError, match="does not exist"):
        sweep.resolve_storage(f"sqlite:///{tmp_path}/nope/o.db")
    with pytest.raises(SuiteError, match="not a SQLAlchemy URL"):
        sweep.resolve_storage("://x")


# -- reading studies back: --use-best ------------------------------------------------------
def _fake_study(url: str, name: str, values: list[float], lrs: list[float]) -> None:
    """A study with finished trials, written through Optuna's own API (no runs)."""
    study = optuna.create_study(study_name=name, storage=url, direction="maximize",
                                load_if_exists=True)
    dist = {"params.lr": optuna.distributions.FloatDistribution(0.01, 0.3, log=True)}
    for v, lr in zip(values, lrs, strict=True):
        study.add_trial(optuna.create_trial(params={"params.lr": lr}, distributions=dist,
                                            value=v, user_attrs={"run_key": f"k{lr}"}))


def test_use_best_runs_each_arm_at_its_best_point(tmp_path):
    (c,) = parse(claim({"trials": 2, "params": {"lr": {"low": 0.01, "high": 0.3,
                                                         "log": True}}}))
    url = f"sqlite:///{tmp_path / 'o.db'}"
    for arm, best in (("treatment", 0.02), ("baseline", 0.2)):
        _fake_study(url, sweep.study_name(c, "full", arm), [50.0, 60.0], [0.1, best])
    (tuned,), tunings = sweep.tuned_claims([c], "full", url)
    form = tuned.form("full")
    assert form.params["lr"] == 0.02
    assert form.expect.baseline == {"model_args": {"pool": "max"}, "params": {"lr": 0.2}}
    pc = make_plan([tuned], "full").claims[0]
    assert {r.params["lr"] for r in pc.arm("treatment")} == {0.02}
    assert {r.params["lr"] for r in pc.arm("baseline")} == {0.2}
    assert all("val_split" not in r.params for r in pc.runs)  # the real runs train on all
    note = tunings[CID].note()
    assert "2 trials per arm" in note and "val_top1" in note and "never the test set" in note
    assert "treatment: params.lr=0.02" in note and "baseline: params.lr=0.2" in note
    infos = {i.arm: i for i in sweep.study_infos(c, "full", url, importances=True)}
    assert infos["baseline"].best_value == 60.0 and infos["baseline"].best_run_key == "k0.2"


def test_use_best_with_the_same_best_point_leaves_the_baseline_override_alone(tmp_path):
    (c,) = parse(claim({"trials": 1, "params": {"lr": {"low": 0.01, "high": 0.3}}}))
    url = f"sqlite:///{tmp_path / 'o.db'}"
    for arm in ("treatment", "baseline"):
        _fake_study(url, sweep.study_name(c, "full", arm), [50.0], [0.07])
    (tuned,), _ = sweep.tuned_claims([c], "full", url)
    assert tuned.form("full").expect.baseline == {"model_args": {"pool": "max"}}
    pc = make_plan([tuned], "full").claims[0]
    assert {r.params["lr"] for r in pc.runs} == {0.07}


def test_use_best_refuses_unequal_budgets_and_missing_studies(tmp_path):
    (c,) = parse(claim())
    url = f"sqlite:///{tmp_path / 'o.db'}"
    with pytest.raises(SuiteError, match="no finished trial for arm"):
        sweep.tuned_claims([c], "full", url)
    assert not (tmp_path / "o.db").exists(), "reading must not create a storage"
    _fake_study(url, sweep.study_name(c, "full", "treatment"), [1.0, 2.0], [0.1, 0.2])
    _fake_study(url, sweep.study_name(c, "full", "baseline"), [1.0], [0.1])
    with pytest.raises(SuiteError, match=r"unequal tuning budgets \(treatment 2, baseline 1\)"
                                         r".*--trials 2"):
        sweep.tuned_claims([c], "full", url)


def test_claims_without_a_sweep_pass_through_use_best(tmp_path):
    (c,) = parse(claim(sweep=None))
    out, tunings = sweep.tuned_claims([c], "full", f"sqlite:///{tmp_path / 'o.db'}")
    assert out == [c] and tunings == {}


def test_report_rows_say_the_comparison_was_tuned(tmp_path, db_url):
    from suite import db, report

    (c,) = parse(claim())
    engine = db.connect(db_url)
    (row,) = report.claim_rows(engine, [c], "full", tunings={CID: "tuned: 4 trials per arm"})
    assert row.tuning == "tuned: 4 trials per arm"
    assert row.verdict.message.startswith("tuned: 4 trials per arm. ")
    assert report.table_rows([row])[0][-1] == "pending (tuned)"
    assert row.as_dict()["tuning"] == "tuned: 4 trials per arm"
    (plain,) = report.claim_rows(engine, [c], "full")
    assert plain.tuning == "" and report.table_rows([plain])[0][-1] == "pending"
    assert replace(plain, tuning="x").as_dict()["tuning"] == "x"


def test_optuna_dashboard_reads_the_sweep_storage(tmp_path):
    """`optuna-dashboard <storage>` serves the studies a sweep writes (its WSGI app, called
    directly: the same code the command serves)."""
    dashboard = pytest.importorskip("optuna_dashboard")
    from wsgiref.util import setup_testing_defaults

    (c,) = parse(claim({"trials": 2, "params": {"lr": {"low": 0.01, "high": 0.3,
                                                         "log": True}}}))
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweeper = sweep.Sweeper(c, "full", sweep.ARMS, url, sweep.TrialBackend(engine=None))
    names = [sweeper._study(arm).name for arm in sweep.ARMS]
    _fake_study(url, names[0], [71.5], [0.05])
    env: dict = {}
    setup_testing_defaults(env)
    env["PATH_INFO"] = "/api/studies"
    status: list[str] = []
    body = b"".join(dashboard.wsgi(url)(env, lambda s, h, exc=None: status.append(s)))
    assert status == ["200 OK"]
    summaries = {s["study_name"]: s for s in json.loads(body)["study_summaries"]}
    assert set(summaries) == set(names)
    attrs = {a["key"]: a["value"] for a in summaries[names[1]]["user_attrs"]}
    assert attrs["claim"] == CID and attrs["arm"] == "baseline" and attrs["metric"] == "val_top1"


def test_readme_sweep_example_validates(repo_root):
    """The README's sweep table is valid tasks.toml (docs must not rot)."""
    import re

    import tomllib

    text = (repo_root / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Sweeps (Optuna)"):]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    table = tomllib.loads(block.replace("[claim.sweep]", ""))
    (c,) = parse(claim(table))
    sw = c.form("full").sweep
    assert sw.trials == 6 and {p.path for p in sw.space} == {
        "params.lr", "params.init", "model_args.width"}
    deep_check("README.md", [c])


# -- the verb's input errors (in-process, nothing runs) -------------------------------------
CLI_TASKS = """
[papers.demo]
title = "demo"

[[claim]]
id = "demo/delta"
paper = "demo"
source = "Table 1"
task = "train_eval"
model = "test_cnn"
dataset = "synthetic"
model_args = { width = 4, pool = "avg" }
params = { epochs = 1 }
expect = { kind = "delta", metric = "top1", direction = "equal", tolerance = 100.0, baseline = { model_args = { pool = "max" } } }
[claim.sweep]
params.lr = { low = 0.01, high = 0.3, log = true }

[[claim]]
id = "demo/absolute"
paper = "demo"
source = "Table 1"
extends = "demo/delta"
expect = { kind = "absolute", metric = "top1", value = 1.0 }
"""


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """``cli(*argv) -> (rc, stdout, stderr)`` with :data:`CLI_TASKS` in tmp_path."""
    from suite.cli import main

    monkeypatch.delenv("POOLREPRO_DB", raising=False)
    monkeypatch.delenv(sweep.STORAGE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks.toml").write_text(CLI_TASKS)

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def test_sweep_help_has_examples(cli):
    rc, out, _ = cli("sweep", "--help")
    assert rc == 0 and "examples:" in out and "python -m suite sweep" in out
    assert "optuna-dashboard sqlite:///optuna.db" in out
    rc, out, _ = cli("run", "--help")
    assert "--use-best" in out and "--storage" in out


@pytest.mark.parametrize("argv, want", [
    (("sweep", "demo/delt", "--tier", "full"), "no claim 'demo/delt'; did you mean "
                                               "'demo/delta'"),
    (("sweep", "demo/delta"), "has no mini form in tasks.toml"),
    (("sweep", "demo/absolute", "--tier", "full", "--arm", "baseline"), "no baseline arm"),
    (("sweep", "demo/delta", "--tier", "full", "--trials", "0"), "--trials must be ≥ 1"),
    (("sweep", "demo/delta", "--tier", "full", "--devices", "gpu"), "not a device"),
    (("--db", "sqlite:///same.db", "sweep", "demo/delta", "--tier", "full", "--storage",
      "sqlite:///same.db"), "is the results DB"),
    (("run", "--tier", "full", "--use-best", "--no-mlflow"),
     "--use-best: demo/delta: no finished trial for arm(s) treatment, baseline"),
])
def test_sweep_input_errors_are_one_clear_line(cli, tmp_path, argv, want):
    rc, _, err = cli(*argv)
    assert rc == 2 and want in err, err
    assert not (tmp_path / "optuna.db").exists() and not (tmp_path / "same.db").exists()


def test_report_without_or_with_a_broken_storage_still_reports(cli, tmp_path):
    rc, out, _ = cli("--db", "sqlite:///r.db", "report", "--tier", "full")
    assert rc == 0 and "verdicts, tier full" in out and "sweeps" not in out
    assert not (tmp_path / "optuna.db").exists()
    (tmp_path / "optuna.db").write_bytes(b"not a database")
    rc, out, err = cli("--db", "sqlite:///r.db", "report", "--tier", "full")
    assert rc == 0 and "verdicts, tier full" in out
    assert "sweeps not shown" in err and "cannot" in err
    rc, _, err = cli("--db", "sqlite:///r.db", "sweep", "demo/delta", "--tier", "full")
    assert rc == 2 and "cannot open the Optuna storage 'sqlite:///optuna.db'" in err
