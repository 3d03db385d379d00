"""tasks.toml: schema errors (one test per kind), merging rules, deep checks, and planning.

Every error test asserts that the ClaimsError names the claim (or table), the field, and a
did-you-mean suggestion where there is a close name.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from suite.claims import load_claims, parse_claims, select
from suite.errors import ClaimsError, SpecProblem
from suite.plan import baseline_form, make_plan, plan_claim
from suite.specs import RunSpec

CID = "demo/learns"


def claim(**kw: Any) -> dict[str, Any]:
    """A valid claim table; ``key=None`` removes a key."""
    c = {
        "id": CID, "paper": "demo", "source": "Table 1",
        "model": "test_cnn", "dataset": "synthetic",
        "model_args": {"width": 4}, "dataset_args": {"size": 16},
        "params": {"epochs": 2, "lr": 0.05},
        "expect": {"kind": "absolute", "metric": "top1", "direction": "higher", "value": 50.0},
    }
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def raw(*claims: dict[str, Any], defaults: dict | None = None, **top: Any) -> dict[str, Any]:
    r = {"papers": {"demo": {"title": "A demo paper"}},
         "defaults": {"task": "train_eval"} if defaults is None else defaults,
         "claim": list(claims) if claims else [claim()]}
    r.update(top)
    return r


def problems(r: dict[str, Any]) -> list[SpecProblem]:
    with pytest.raises(ClaimsError) as ei:
        parse_claims(r, "tasks.toml")
    err = ei.value
    # the exception text lists every problem (that is what the user sees)
    for p in err.problems:
        assert str(p) in str(err)
    assert "nothing was run" in str(err)
    return err.problems


def only(r: dict[str, Any], field: str) -> SpecProblem:
    """The single problem on ``field`` (asserting there is exactly one)."""
    ps = [p for p in problems(r) if p.field == field]
    assert len(ps) == 1, [str(p) for p in problems(r)]
    return ps[0]


def parsed(r: dict[str, Any]):
    papers, claims = parse_claims(r, "tasks.toml")
    return papers, {c.id: c for c in claims}


# -- the happy path ------------------------------------------------------------------------
def test_minimal_claim_parses_to_a_full_form():
    papers, claims = parsed(raw())
    c = claims[CID]
    assert papers["demo"].title == "A demo paper"
    assert list(c.tiers) == ["full"]  # no smoke/mini table, so no form at those tiers
    f = c.form("full")
    assert (f.task, f.model, f.dataset) == ("train_eval", "test_cnn", "synthetic")
    assert f.seeds == (0, 1, 2) and f.min_runs == 2 and f.device == "auto"
    assert f.expect.kind == "absolute" and f.expect.value == 50.0
    assert c.form("smoke") is None


def test_repo_tasks_toml_is_valid(repo_root):
    papers, claims = load_claims(repo_root / "tasks.toml")
    assert "suite" in papers
    assert {c.id for c in claims} >= {"suite/smoke/learns", "suite/smoke/softpool-vs-max"}


# -- schema errors: one test per kind -------------------------------------------------------
def test_unknown_top_level_key_suggests():
    p = only(raw(claims=[claim()]), "claims")
    assert p.where == "file"
    assert "unknown key" in p.message and "Did you mean 'claim'" in p.message


def test_unknown_claim_key_suggests():
    r = raw(claim(model=None, modle="test_cnn"))
    p = only(r, "modle")
    assert p.where == f"claim '{CID}'"
    assert "Did you mean 'model'?" in p.message
    assert f"claim '{CID}', field 'modle'" in str(p)


@pytest.mark.parametrize("field,value,want", [
    ("seeds", "0", "expected list, got str '0'"),
    ("tags", "smoke", "expected list, got str"),
    ("min_runs", True, "expected int, got bool"),  # a bool is not an int here
    ("title", 3, "expected str, got int"),
])
def test_wrong_type(field, value, want):
    p = only(raw(claim(**{field: value})), field)
    assert p.where == f"claim '{CID}'" and want in p.message


def test_wrong_type_in_expect():
    e = {"kind": "absolute", "metric": "top1", "value": "93.5"}
    p = only(raw(claim(expect=e)), "expect.value")
    assert p.where == f"claim '{CID}'" and "expected int or float, got str" in p.message


@pytest.mark.parametrize("field,value", [
    ("model_args", "pool=max"), ("params", 3), ("min_runs", "two"), ("timeout_s", "1h"),
])
def test_wrong_type_of_a_recipe_field_is_a_claims_error(field, value):
    p = only(raw(claim(**{field: value})), field)
    assert p.where == f"claim '{CID}'" and "expected" in p.message


def test_duplicate_id():
    p = only(raw(claim(), claim(source="other")), "id")
    assert p.where == f"claim '{CID}'" and "duplicate id" in p.message


def test_bad_id_characters():
    p = only(raw(claim(id="Demo/Learns")), "id")
    assert "lowercase" in p.message


@pytest.mark.parametrize("field,value,kind,hint", [
    ("model", "test_cn", "model", "'test_cnn'"),
    ("dataset", "synthetc", "dataset", "'synthetic'"),
    ("task", "train_evl", "task", "'train_eval'"),
])
def test_unknown_registry_name_suggests(field, value, kind, hint):
    p = only(raw(claim(**{field: value})), field)
    assert p.where == f"claim '{CID}'"
    assert f"unknown {kind} {value!r}" in p.message
    assert "Did you mean" in p.message and hint in p.message
    assert f"python -m suite ls {kind}s" in p.message


def test_aliases_are_accepted_names():
    _, claims = parsed(raw(claim(task="train", dataset="fmnist32")))
    assert claims[CID].form("full").dataset == "fmnist32"


def test_unknown_pool_in_model_args_suggests():
    p = only(raw(claim(model_args={"width": 4, "pool": "sofpool"})), "model_args.pool")
    assert p.where == f"claim '{CID}'"
    assert "unknown pool 'sofpool'" in p.message and "'softpool'" in p.message
    assert "python -m suite ls pools" in p.message


def test_unknown_skip_op_in_model_args():
    p = only(raw(claim(model="test_resnet", model_args={"skip": "poolskp"})), "model_args.skip")
    assert "'poolskip'" in p.message


def test_missing_paper_table_suggests():
    r = raw(claim(paper="dem"))
    p = only(r, "paper")
    assert p.where == f"claim '{CID}'"
    assert "no [papers.dem] table" in p.message and "'demo'" in p.message


def test_paper_table_needs_title_and_known_keys():
    ps = problems(raw(papers={"demo": {"titel": "x"}}))
    fields = {(p.where, p.field) for p in ps}
    assert ("[papers.demo]", "title") in fields
    assert ("[papers.demo]", "titel") in fields
    assert any("Did you mean 'title'" in p.message for p in ps)


@pytest.mark.parametrize("seeds,want", [
    ([], "non-empty list of integers"),
    ([0, 1, 0], "has duplicates"),
    ([0, "1"], "non-empty list of integers"),
    ([0, True], "non-empty list of integers"),
])
def test_bad_seeds(seeds, want):
    p = only(raw(claim(seeds=seeds)), "seeds")
    assert p.where == f"claim '{CID}'" and want in p.message


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", "cuda0"])
def test_bad_device(device):
    p = only(raw(claim(device=device)), "device")
    assert p.where == f"claim '{CID}'"
    assert repr(device) in p.message and "'cuda:N'" in p.message


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_good_devices(device):
    _, claims = parsed(raw(claim(device=device)))
    assert claims[CID].form("full").device == device


@pytest.mark.parametrize("field,value", [("min_runs", 0), ("timeout_s", 0), ("timeout_s", -5.0)])
def test_non_positive_numbers(field, value):
    p = only(raw(claim(**{field: value})), field)
    assert str(value) in p.message


def test_extends_unknown_id_suggests():
    r = raw(claim(), claim(id="demo/learns-soft", extends="demo/lerns"))
    p = only(r, "extends")
    assert p.where == "claim 'demo/learns-soft'"
    assert "no claim with id 'demo/lerns'" in p.message and "'demo/learns'" in p.message


def test_extends_cycle():
    r = raw(claim(id="demo/a", extends="demo/b"), claim(id="demo/b", extends="demo/a"))
    ps = [p for p in problems(r) if p.field == "extends"]
    assert ps and all("cycle" in p.message for p in ps)
    assert any("demo/a -> demo/b -> demo/a" in p.message for p in ps)
    assert {p.where for p in ps} <= {"claim 'demo/a'", "claim 'demo/b'"}


def test_extends_self_is_a_cycle():
    p = only(raw(claim(extends=CID)), "extends")
    assert "cycle" in p.message


def test_delta_without_baseline():
    e = {"kind": "delta", "metric": "top1", "direction": "higher"}
    p = only(raw(claim(expect=e)), "expect.baseline")
    assert p.where == f"claim '{CID}'"
    assert "needs a baseline" in p.message and "pool = 'max'" in p.message


def test_baseline_may_not_override_seeds():
    e = {"kind": "delta", "metric": "top1", "baseline": {"seeds": [5], "model": "test_cnn"}}
    p = only(raw(claim(expect=e)), "expect.baseline.seeds")
    assert p.where == f"claim '{CID}'" and "cannot be overridden in a baseline" in p.message


def test_baseline_names_are_checked():
    e = {"kind": "delta", "metric": "top1", "baseline": {"model_args": {"pool": "maks"}}}
    p = only(raw(claim(expect=e)), "expect.baseline.model_args.pool")
    assert "unknown pool 'maks'" in p.message and "'max'" in p.message


@pytest.mark.parametrize("metric,hint", [("acc", None), ("top_1", "'top1'")])
def test_expect_metric_the_task_does_not_report(metric, hint):
    e = {"kind": "absolute", "metric": metric, "value": 1.0}
    p = only(raw(claim(expect=e)), "expect.metric")
    assert p.where == f"claim '{CID}'"
    assert f"task 'train_eval' reports no metric {metric!r}" in p.message
    assert "It reports: top1" in p.message
    if hint:
        assert f"Did you mean {hint}" in p.message


@pytest.mark.parametrize("expect,field,want", [
    ({"kind": "relative", "metric": "top1"}, "expect.kind", "'absolute' or 'delta'"),
    ({"kind": "absolute", "value": 1.0}, "expect.metric", "is required"),
    ({"kind": "absolute", "metric": "top1"}, "expect.value", "needs the published value"),
    ({"kind": "absolute", "metric": "top1", "value": 1.0, "direction": "up"},
     "expect.direction", "'higher', 'lower' or 'equal'"),
    ({"kind": "absolute", "metric": "top1", "value": 1.0, "tolerance": -1},
     "expect.tolerance", "≥ 0"),
    ({"kind": "absolute", "metric": "top1", "value": 1.0, "tolerence": 1},
     "expect.tolerence", "Did you mean 'tolerance'"),
])
def test_bad_expect(expect, field, want):
    p = only(raw(claim(expect=expect)), field)
    assert p.where == f"claim '{CID}'" and want in p.message


def test_unknown_tier_name():
    p = only(raw(claim(tiers={"smok": {"params": {"epochs": 1}}})), "tiers.smok")
    assert p.where == f"claim '{CID}'"
    assert "unknown tier" in p.message and "smoke, mini, full" in p.message


def test_unknown_tier_name_in_defaults():
    p = only(raw(defaults={"task": "train_eval", "tiers": {"minni": {}}}), "tiers.minni")
    assert p.where == "[defaults]" and "unknown tier" in p.message


def test_tier_with_unknown_key_suggests():
    r = raw(claim(tiers={"smoke": {"modle": "test_cnn"}}))
    p = only(r, "tiers.smoke.modle")
    assert p.where == f"claim '{CID}'" and "Did you mean 'model'?" in p.message


def test_tier_problem_names_the_tier_field():
    r = raw(claim(tiers={"mini": {"model_args": {"pool": "sofpool"}}}))
    p = only(r, "tiers.mini.model_args.pool")
    assert "'softpool'" in p.message


@pytest.mark.parametrize("value", [False, "skip"])
def test_tier_that_is_not_a_table_is_an_error(value):
    p = only(raw(claim(tiers={"smoke": value})), "tiers.smoke")
    assert "table" in p.message


def test_defaults_with_forbidden_and_unknown_keys():
    ps = problems(raw(defaults={"task": "train_eval", "id": "x", "modle": "test_cnn"}))
    fields = {p.field: p for p in ps if p.where == "[defaults]"}
    assert set(fields) >= {"id", "modle"}
    assert "Did you mean 'model'" in fields["modle"].message


def test_defaults_tier_with_unknown_key():
    d = {"task": "train_eval", "tiers": {"smoke": {"datset": "synthetic"}}}
    p = only(raw(defaults=d), "tiers.smoke.datset")
    assert p.where == "[defaults]" and "Did you mean 'dataset'" in p.message


def test_toml_syntax_error(tmp_path):
    f = tmp_path / "tasks.toml"
    f.write_text('[papers.demo]\ntitle = "unterminated\n', encoding="utf-8")
    with pytest.raises(ClaimsError) as ei:
        load_claims(f)
    (p,) = ei.value.problems
    assert (p.where, p.field) == ("file", "syntax")
    assert "not valid TOML" in p.message and "line 2" in p.message
    assert str(f) in str(ei.value)


def test_not_utf8(tmp_path):
    f = tmp_path / "tasks.toml"
    f.write_bytes(b'[papers.demo]\ntitle = "\xff\xfe"\n')
    with pytest.raises(ClaimsError) as ei:
        load_claims(f)
    assert ei.value.problems[0].field == "encoding"


def test_missing_file(tmp_path):
    with pytest.raises(ClaimsError) as ei:
        load_claims(tmp_path / "nope.toml")
    (p,) = ei.value.problems
    assert p.field == "path" and "no such file" in p.message and "--tasks" in p.message


def test_claim_must_be_an_array_of_tables():
    p = only(raw(claim={"id": "x"}), "claim")
    assert "[[claim]]" in p.message


def test_several_problems_are_reported_together():
    r = raw(
        claim(model="test_cn", seeds=[]),
        claim(id="demo/b", dataset="synthetc", device="gpu", paper="nope"),
    )
    ps = problems(r)
    got = {(p.where, p.field) for p in ps}
    assert got >= {
        (f"claim '{CID}'", "model"), (f"claim '{CID}'", "seeds"),
        ("claim 'demo/b'", "dataset"), ("claim 'demo/b'", "device"), ("claim 'demo/b'", "paper"),
    }
    with pytest.raises(ClaimsError) as ei:
        parse_claims(r, "x.toml")
    assert f"x.toml: {len(ps)} problems; nothing was run." in str(ei.value)


def test_full_recipe_problem_is_not_repeated_per_tier():
    d = {"task": "train_eval", "tiers": {"smoke": {"seeds": [0]}, "mini": {"seeds": [0, 1]}}}
    r = raw(claim(model="test_cn", tiers={"smoke": {}, "mini": {"params": {"epochs": 1}}}),
            defaults=d)
    ps = problems(r)
    assert len([p for p in ps if "unknown model" in p.message]) == 1, [str(p) for p in ps]


def test_full_recipe_problem_is_reported_under_its_own_field():
    r = raw(claim(model="test_cn", tiers={"smoke": {"params": {"epochs": 1}}}))
    (p,) = [p for p in problems(r) if "unknown model" in p.message]
    assert p.field == "model"


def test_problem_only_in_a_tier_keeps_the_tier_field():
    r = raw(claim(tiers={"smoke": {"device": "gpu"}}))
    p = only(r, "tiers.smoke.device")
    assert "'gpu'" in p.message


# -- tasks.toml is data, never code ---------------------------------------------------------
def test_loading_never_executes_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = f"__import__('os').system('touch {marker}')"
    f = tmp_path / "tasks.toml"
    f.write_text(f"""
[papers.demo]
title = "x"
[[claim]]
id = "demo/a"
paper = "demo"
source = "{payload}"
task = "train_eval"
model = "test_cnn"
dataset = "synthetic"
[[claim]]
id = "demo/b"
paper = "demo"
source = "s"
task = "train_eval"
model = "{payload}"
dataset = "synthetic"
""", encoding="utf-8")
    with pytest.raises(ClaimsError) as ei:
        load_claims(f)
    (p,) = ei.value.problems
    assert p.where == "claim 'demo/b'" and p.field == "model" and "unknown model" in p.message
    assert not marker.exists()
    # the same text as a plain field stays a string
    f.write_text(f.read_text().split("[[claim]]\nid = \"demo/b\"")[0], encoding="utf-8")
    _, claims = load_claims(f)
    assert claims[0].source == payload
    assert not marker.exists()


# -- merging: defaults, default tiers, extends, skip ---------------------------------------
def test_defaults_and_default_tiers_merge(tmp_path):
    f = tmp_path / "tasks.toml"
    f.write_text("""
[papers.demo]
title = "demo"

[defaults]
task = "train_eval"
seeds = [0, 1, 2]
min_runs = 3
timeout_s = 100

[defaults.tiers.smoke]
dataset = "synthetic"
seeds = [0, 1]
timeout_s = 5
params = { epochs = 1 }

[[claim]]
id = "demo/a"
paper = "demo"
source = "Table 1"
model = "test_cnn"
dataset = "fashion_mnist_32"
params = { epochs = 30, lr = 0.1 }
expect = { kind = "absolute", metric = "top1", value = 90.0 }
[claim.tiers.smoke]
params = { batch_size = 16 }

[[claim]]
id = "demo/no-smoke"
paper = "demo"
source = "Table 2"
model = "test_cnn"
dataset = "fashion_mnist_32"
""", encoding="utf-8")
    _, (a, b) = load_claims(f)
    full, smoke = a.form("full"), a.form("smoke")
    assert (full.task, full.dataset, full.seeds, full.min_runs, full.timeout_s) == (
        "train_eval", "fashion_mnist_32", (0, 1, 2), 3, 100.0)
    assert full.params == {"epochs": 30, "lr": 0.1}
    assert (smoke.dataset, smoke.seeds, smoke.min_runs, smoke.timeout_s) == (
        "synthetic", (0, 1), 3, 5.0)
    # params merge key by key: claim's full recipe < [defaults.tiers.smoke] < the claim's tier
    assert smoke.params == {"epochs": 1, "lr": 0.1, "batch_size": 16}
    assert smoke.expect == full.expect
    # [defaults.tiers.smoke] does not give a smoke form to a claim without a smoke table
    assert list(b.tiers) == ["full"]


def test_tier_overrides_expect_key_by_key():
    c = claim(tiers={"smoke": {"expect": {"value": 20.0, "tolerance": 5.0}}})
    _, claims = parsed(raw(c))
    smoke, full = claims[CID].form("smoke").expect, claims[CID].form("full").expect
    assert (smoke.kind, smoke.metric, smoke.direction) == ("absolute", "top1", "higher")
    assert (smoke.value, smoke.tolerance) == (20.0, 5.0)
    assert (full.value, full.tolerance) == (50.0, 0.0)


def test_extends_deep_merges_tables():
    base = claim(model_args={"width": 4, "pool": "max"}, params={"epochs": 2, "lr": 0.05},
                 tags=["a"])
    child = {"id": "demo/soft", "extends": CID, "model_args": {"pool": "softpool"},
             "params": {"epochs": 3}, "source": "Table 2"}
    _, claims = parsed(raw(base, child))
    c, parent = claims["demo/soft"], claims[CID]
    f = c.form("full")
    assert f.model_args == {"width": 4, "pool": "softpool"}
    assert f.params == {"epochs": 3, "lr": 0.05}
    assert (f.model, f.dataset, c.paper, c.tags, c.source) == (
        "test_cnn", "synthetic", "demo", ("a",), "Table 2")
    assert parent.form("full").model_args == {"width": 4, "pool": "max"}  # parent untouched


def test_extends_chain():
    a = claim(id="demo/a", model_args={"width": 4, "pool": "max"})
    b = {"id": "demo/b", "extends": "demo/a", "model_args": {"pool": "avg"}}
    c = {"id": "demo/c", "extends": "demo/b", "model_args": {"width": 8}}
    _, claims = parsed(raw(a, b, c))
    assert claims["demo/c"].form("full").model_args == {"width": 8, "pool": "avg"}


def test_skip_tier_gives_no_form_and_a_reason():
    c = claim(status_note="number read off a plot",
              tiers={"mini": {"skip": "no small ImageNet"}, "smoke": {"params": {"epochs": 1}}})
    _, claims = parsed(raw(c))
    cl = claims[CID]
    assert cl.form("mini") is None and cl.form("smoke") is not None
    assert cl.skip == {"mini": "no small ImageNet"}
    assert cl.status_note == "number read off a plot"
    pc = plan_claim(cl, "mini")
    assert pc.runs == () and pc.form is None and pc.skipped
    assert pc.reason == "no small ImageNet"
    # a tier without a table is not "skipped", it just has no form
    pc = plan_claim(parsed(raw())[1][CID], "mini")
    assert not pc.skipped and pc.reason == "no mini form in tasks.toml"


def test_skip_full_tier():
    _, claims = parsed(raw(claim(tiers={"full": {"skip": "8 GPUs for a week"}})))
    assert claims[CID].tiers == {}
    assert claims[CID].skip == {"full": "8 GPUs for a week"}
    assert plan_claim(claims[CID], "full").skipped


def test_definition_hash_tracks_the_definition():
    def h(r):
        return parsed(r)[1][CID].definition_hash

    e2 = {"kind": "absolute", "metric": "top1", "direction": "higher", "value": 51.0}
    base = h(raw())
    assert base == h(raw()) and len(base) == 16
    assert h(raw(claim(expect=e2))) != base
    assert h(raw(claim(params={"epochs": 3, "lr": 0.05}))) != base
    assert h(raw(claim(tags=["x"]))) != base


def test_definition_hash_changes_when_defaults_change():
    def h(d):
        return parsed(raw(defaults=d))[1][CID].definition_hash

    assert h({"task": "train_eval", "min_runs": 2}) != h({"task": "train_eval", "min_runs": 3})


def test_select_filters():
    r = raw(claim(tags=["t1"]), claim(id="demo/b", tags=["t2"]), claim(id="other/c"))
    _, claims = parse_claims(r)
    ids = lambda cs: [c.id for c in cs]  # noqa: E731
    assert ids(select(claims, claim="demo/*")) == [CID, "demo/b"]
    assert ids(select(claims, claim="demo/b,other/*")) == ["demo/b", "other/c"]
    assert ids(select(claims, tag="t2")) == ["demo/b"]
    assert ids(select(claims, paper="demo")) == [CID, "demo/b", "other/c"]
    assert select(claims, paper="nope") == []


# -- deep check: keyword arguments against the real signatures -------------------------------
def _deep_problems(r) -> list[SpecProblem]:
    from suite.deepcheck import deep_check

    _, claims = parse_claims(r)
    with pytest.raises(ClaimsError) as ei:
        deep_check("tasks.toml", claims)
    return ei.value.problems


def test_deepcheck_passes_a_good_file(repo_root):
    from suite.deepcheck import deep_check

    _, claims = load_claims(repo_root / "tasks.toml")
    deep_check("tasks.toml", claims)


def test_deepcheck_unknown_model_arg_suggests():
    (p,) = _deep_problems(raw(claim(model_args={"widht": 4})))
    assert (p.where, p.field) == (f"claim '{CID}'", "model_args.widht")
    assert "model 'test_cnn' takes no argument 'widht'" in p.message
    assert "Did you mean 'width'?" in p.message


def test_deepcheck_unknown_dataset_arg_suggests():
    (p,) = _deep_problems(raw(claim(dataset_args={"train_sise": 64})))
    assert p.field == "dataset_args.train_sise"
    assert "dataset 'synthetic'" in p.message and "Did you mean 'train_size'?" in p.message


def test_deepcheck_unknown_params_key_suggests():
    (p,) = _deep_problems(raw(claim(params={"epochs": 1, "lr_schedule": "cosine"})))
    assert p.field == "params.lr_schedule"
    assert "task 'train_eval' takes no argument" in p.message
    assert "Did you mean 'schedule'?" in p.message


def test_deepcheck_tier_and_baseline_fields():
    e = {"kind": "delta", "metric": "top1", "baseline": {"model_args": {"pol": "max"}}}
    c = claim(expect=e, tiers={"smoke": {"dataset_args": {"sizee": 8}}})
    ps = _deep_problems(raw(c))
    assert "tiers.smoke.dataset_args.sizee" in {p.field for p in ps}
    (pol,) = [p for p in ps if p.field.endswith("expect.baseline.model_args.pol")]
    assert "Did you mean 'pool'?" in pol.message  # reported once, not once per tier


def test_deepcheck_full_recipe_problem_is_reported_under_its_own_field():
    c = claim(model_args={"widht": 4}, tiers={"smoke": {"params": {"epochs": 1}}})
    (p,) = _deep_problems(raw(c))
    assert p.field == "model_args.widht"


# -- planning ----------------------------------------------------------------------------------
FIXED = RunSpec(claim_id="demo/a", tier="smoke", arm="treatment", seed=0, task="train_eval",
                model="test_cnn", dataset="synthetic", model_args={"width": 4, "pool": "max"},
                dataset_args={"size": 16}, params={"epochs": 2, "lr": 0.05})


def test_run_key_is_pinned():
    # If this changes, every stored result is orphaned: change hashing only on purpose.
    assert FIXED.run_key == "3fe25d90a2c8c81537e3"


def test_run_key_ignores_bookkeeping_fields():
    from dataclasses import replace

    for kw in ({"claim_id": "x/y"}, {"tier": "full"}, {"arm": "baseline"}, {"device": "cuda"},
               {"timeout_s": 1.0}, {"claim_hash": "abc"}):
        assert replace(FIXED, **kw).run_key == FIXED.run_key, kw
    # key order inside tables does not matter
    assert replace(FIXED, model_args={"pool": "max", "width": 4}).run_key == FIXED.run_key


def test_run_key_changes_with_what_is_computed():
    from dataclasses import replace

    keys = {FIXED.run_key}
    for kw in ({"seed": 1}, {"model_args": {"width": 8, "pool": "max"}},
               {"params": {"epochs": 3, "lr": 0.05}}, {"dataset_args": {"size": 32}},
               {"model": "test_resnet"}, {"dataset": "fashion_mnist"}, {"task": "param_count"},
               {"params": {"epochs": 2, "lr": 0.05, "schedule": "cosine"}}):
        keys.add(replace(FIXED, **kw).run_key)
    assert len(keys) == 9


def test_runspec_dict_round_trip():
    d = FIXED.to_dict()
    assert d["run_key"] == FIXED.run_key
    assert RunSpec.from_dict(d) == FIXED


def _keys(r, tier="full", seeds=None):
    _, claims = parse_claims(r)
    return [s.run_key for s in make_plan(claims, tier, seeds).runs]


def test_editing_the_expectation_keeps_run_keys():
    e2 = {"kind": "absolute", "metric": "top1", "direction": "lower", "value": 10.0,
          "tolerance": 3.0}
    assert _keys(raw()) == _keys(raw(claim(expect=e2)))
    assert _keys(raw()) == _keys(raw(claim(min_runs=3, timeout_s=9.0, tags=["x"])))


def test_editing_the_recipe_changes_run_keys():
    base = set(_keys(raw()))
    assert base.isdisjoint(_keys(raw(claim(params={"epochs": 3, "lr": 0.05}))))
    assert base.isdisjoint(_keys(raw(claim(model_args={"width": 8}))))
    assert base.isdisjoint(_keys(raw(claim(seeds=[7, 8]))))


def test_plan_seeds_and_override():
    _, claims = parse_claims(raw())
    pc = plan_claim(claims[0], "full")
    assert [r.seed for r in pc.runs] == [0, 1, 2]
    assert {r.arm for r in pc.runs} == {"treatment"}
    pc = plan_claim(claims[0], "full", seeds=(5, 6), device="cpu")
    assert [r.seed for r in pc.runs] == [5, 6]
    assert {r.device for r in pc.runs} == {"cpu"}
    assert {r.claim_hash for r in pc.runs} == {claims[0].definition_hash}


def test_delta_claim_plans_paired_baseline_runs():
    e = {"kind": "delta", "metric": "top1", "direction": "higher", "min_diff": 0.5,
         "baseline": {"model_args": {"pool": "max"}}}
    c = claim(model_args={"width": 4, "pool": "softpool"}, expect=e, seeds=[3, 4])
    _, claims = parse_claims(raw(c))
    pc = plan_claim(claims[0], "full")
    t, b = pc.arm("treatment"), pc.arm("baseline")
    assert [r.seed for r in t] == [r.seed for r in b] == [3, 4]
    assert all(r.model_args == {"width": 4, "pool": "softpool"} for r in t)
    assert all(r.model_args == {"width": 4, "pool": "max"} for r in b)
    for x, y in zip(t, b, strict=True):
        assert (x.params, x.dataset_args) == (y.params, y.dataset_args)
    assert not {r.run_key for r in t} & {r.run_key for r in b}
    bf = baseline_form(pc.form)
    assert bf.seeds == pc.form.seeds and bf.expect == pc.form.expect
    # --seeds applies to both arms
    pc = plan_claim(claims[0], "full", seeds=(9,))
    assert [(r.arm, r.seed) for r in pc.runs] == [("treatment", 9), ("baseline", 9)]


def test_claim_without_tier_form_plans_no_runs_with_a_reason():
    _, claims = parse_claims(raw())
    pc = plan_claim(claims[0], "smoke")
    assert pc.form is None and pc.runs == ()
    assert "no smoke form" in pc.reason


def test_plan_shares_runs_of_identical_configs():
    a, b = claim(id="demo/a"), claim(id="demo/b", expect={
        "kind": "absolute", "metric": "top5", "value": 1.0})
    _, claims = parse_claims(raw(a, b))
    plan = make_plan(claims, "full")
    assert sum(len(pc.runs) for pc in plan.claims) == 6
    assert len(plan.runs) == 3


def test_parse_does_not_mutate_its_input():
    r = raw(claim(tiers={"smoke": {"params": {"epochs": 1}}}),
            {"id": "demo/b", "extends": CID, "params": {"lr": 1.0}})
    before = copy.deepcopy(r)
    parse_claims(r)
    assert r == before



def test_published_refs_must_name_rows_of_the_project_copy():
    from registry import published

    ref = published.rows()[0]["ref"]
    good = {"papers": {"p": {"title": "P"}}, "claim": [{
        "id": "p/a", "paper": "p", "source": "s", "task": "param_count", "model": "test_cnn",
        "published": {"ref": ref, "refs": [ref]},
        "expect": {"kind": "absolute", "metric": "params_m", "value": 1.0}}]}
    parse_claims(good)
    bad = copy.deepcopy(good)
    bad["claim"][0]["published"] = {"refs": [ref[:-1] + "x"]}
    with pytest.raises(ClaimsError, match="no row") as ei:
        parse_claims(bad)
    assert "Did you mean" in str(ei.value)
