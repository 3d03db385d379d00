"""``python -m suite``, called in-process: help texts, input errors (exit 2, one clear line,
nothing half-written), listing, validate, plan, report, export and import."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from suite import db
from suite.cli import main
from suite.specs import RunSpec

VERBS = ["ls", "validate", "plan", "run", "report", "export", "import"]

TASKS = """
[papers.demo]
title = "demo"

[defaults]
task = "train_eval"
seeds = [0, 1]

[[claim]]
id = "demo/learns"
paper = "demo"
source = "Table 0"
tags = ["t1"]
model = "test_cnn"
dataset = "synthetic"
model_args = { width = 4, pool = "max" }
dataset_args = { train_size = 64, test_size = 32, size = 16, num_classes = 4 }
params = { epochs = 3, batch_size = 32, lr = 0.05 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 30.0 }
[claim.tiers.smoke]
params = { epochs = 1 }

[[claim]]
id = "demo/soft-vs-max"
paper = "demo"
source = "Table 1"
extends = "demo/learns"
model_args = { pool = "softpool" }
[claim.expect]
kind = "delta"
metric = "top1"
direction = "equal"
tolerance = 100.0
baseline = { model_args = { pool = "max" } }

[[claim]]
id = "demo/full-only"
paper = "demo"
source = "Table 2"
model = "test_cnn"
dataset = "synthetic"

[[claim]]
id = "demo/too-big"
paper = "demo"
source = "Table 3"
model = "test_cnn"
dataset = "synthetic"
[claim.tiers.smoke]
skip = "needs 8 GPUs"
"""


@pytest.fixture
def tasks(tmp_path) -> Path:
    p = tmp_path / "tasks.toml"
    p.write_text(TASKS, encoding="utf-8")
    return p


@pytest.fixture
def cli(capsys, monkeypatch, tmp_path):
    """``cli(*argv) -> (rc, stdout, stderr)``; argparse's SystemExit becomes the rc."""
    monkeypatch.delenv("POOLREPRO_DB", raising=False)
    monkeypatch.chdir(tmp_path)  # a stray default results.db would land here, not in the repo

    def run(*argv: str) -> tuple[int, str, str]:
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        out = capsys.readouterr()
        return rc, out.out, out.err

    return run


def ok_result(spec: RunSpec, top1: float) -> dict:
    return {"spec": spec.to_dict(), "status": "ok", "message": "",
            "metrics": {"top1": top1}, "series": {"train_loss": [1.0, 0.5]},
            "provenance": {"git_sha": "abc"}, "started_at": "2025-01-01T00:00:00",
            "finished_at": "2025-01-01T00:00:03", "wall_s": 3.0}


def plan_specs(tasks: Path, tier: str = "smoke") -> list[RunSpec]:
    from suite.claims import load_claims
    from suite.plan import make_plan

    return make_plan(load_claims(tasks)[1], tier).runs


def n_runs(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("select count(*) from runs").fetchone()[0]
    finally:
        con.close()


# -- help ------------------------------------------------------------------------------------
@pytest.mark.parametrize("verb", VERBS)
def test_every_verb_help_has_examples(cli, verb):
    rc, out, _ = cli(verb, "--help")
    assert rc == 0
    assert "examples:" in out and f"python -m suite {verb}" in out


def test_top_level_help(cli):
    rc, out, _ = cli("--help")
    assert rc == 0 and "examples:" in out
    for verb in VERBS:
        assert verb in out


def test_no_verb_is_a_usage_error(cli):
    rc, _, err = cli()
    assert rc == 2 and "VERB" in err


# -- flag errors --------------------------------------------------------------------------------
@pytest.mark.parametrize("seeds", ["x", "0,a", ",", ""])
def test_bad_seeds(cli, tasks, seeds):
    rc, _, err = cli("plan", "--tasks", tasks, "--tier", "smoke", "--seeds", seeds)
    assert rc == 2
    assert "--seeds" in err and ("comma-separated integers" in err or "at least one" in err)


def test_bad_tier(cli, tasks):
    rc, _, err = cli("plan", "--tasks", tasks, "--tier", "tiny")
    assert rc == 2
    assert "invalid choice: 'tiny'" in err and "smoke" in err


def test_bad_jobs(cli, tasks):
    rc, _, err = cli("run", "--tasks", tasks, "--jobs", "0")
    assert rc == 2 and "positive integer" in err


@pytest.mark.parametrize("flags", [["--address", "auto"], ["--gpus-per-run", "1"],
                                   ["--cpus-per-run", "4"]])
def test_ray_flags_need_the_ray_backend(cli, tasks, tmp_path, flags):
    rc, _, err = cli("run", "--tasks", tasks, "--db", tmp_path / "r.db", *flags)
    assert rc == 2 and "belong to --backend ray" in err
    assert not (tmp_path / "r.db").exists(), "nothing written"


@pytest.mark.parametrize("flag,value", [("--cpus-per-run", "0"), ("--gpus-per-run", "-1"),
                                        ("--gpus-per-run", "x"), ("--backend", "slurm")])
def test_bad_backend_flags(cli, tasks, flag, value):
    rc, _, err = cli("run", "--tasks", tasks, flag, value)
    assert rc == 2 and flag in err


def test_backend_ray_without_ray_names_the_extra(cli, tasks, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    rc, _, err = cli("run", "--tasks", tasks, "--db", tmp_path / "r.db", "--backend", "ray")
    assert rc == 2 and "pip install 'poolrepro[ray]'" in err
    assert not (tmp_path / "r.db").exists(), "nothing written"


def test_unknown_paper_suggests(cli, tasks):
    rc, out, err = cli("ls", "claims", "--tasks", tasks, "--paper", "dmo")
    assert rc == 2
    assert err.startswith("error: --paper: no paper 'dmo'")
    assert "did you mean 'demo'?" in err and "Papers: demo" in err
    assert "Traceback" not in err


def test_missing_tasks_file(cli, tmp_path):
    rc, _, err = cli("--tasks", tmp_path / "nope.toml", "validate", "--shallow")
    assert rc == 2 and "no such file" in err and "--tasks" in err


# -- validate ---------------------------------------------------------------------------------
def test_validate_ok(cli, tasks):
    rc, out, _ = cli("validate", "--tasks", tasks)
    assert rc == 0
    assert "is valid" in out and "1 papers, 4 claims" in out and "smoke 2" in out


def test_validate_broken_file_names_claim_and_field(cli, tasks):
    tasks.write_text(TASKS.replace('model = "test_cnn"\ndataset = "synthetic"\nmodel_args',
                                   'modle = "test_cnn"\ndataset = "synthetic"\nmodel_args'))
    rc, out, err = cli("validate", "--tasks", tasks, "--shallow")
    assert rc == 2
    assert "claim 'demo/learns', field 'modle'" in err and "Did you mean 'model'?" in err
    assert "nothing was run" in err and "Traceback" not in err
    assert "is valid" not in out


def test_validate_deep_catches_misspelt_argument(cli, tasks):
    tasks.write_text(TASKS.replace("model_args = { width = 4,", "model_args = { widht = 4,"))
    rc, _, err = cli("validate", "--tasks", tasks)
    assert rc == 2
    assert "model_args.widht'" in err and "Did you mean 'width'?" in err
    # --shallow checks names only
    assert cli("validate", "--tasks", tasks, "--shallow")[0] == 0


def test_validate_syntax_error(cli, tasks):
    tasks.write_text(TASKS + "\n[[claim]\n")
    rc, _, err = cli("validate", "--tasks", tasks, "--shallow")
    assert rc == 2 and "not valid TOML" in err


# -- ls ---------------------------------------------------------------------------------------
def first_cells(out: str) -> list[str]:
    """The first column of every body row of the rich tables in ``out`` (wrapped
    continuation lines have an empty first cell and are left out)."""
    cells = [ln.split("│")[1].strip() for ln in out.splitlines() if ln.startswith("│")]
    return [c for c in cells if c]


def test_ls_registries(cli):
    import registry
    from tasks import TASKS

    rc, out, _ = cli("ls", "pools", "datasets", "tasks")
    assert rc == 0
    names = first_cells(out)
    want = registry.POOLS.names() + registry.DATASETS.names() + TASKS.names()
    assert names == want
    assert {"softpool", "poolskip", "synthetic", "fashion_mnist_32", "train_eval"} <= set(names)
    assert f"pools ({len(registry.POOLS)})" in out


def test_ls_models_no_count(cli):
    import registry

    rc, out, _ = cli("ls", "models", "--no-count")
    assert rc == 0
    assert first_cells(out) == registry.MODELS.names()
    header = next(ln for ln in out.splitlines() if ln.startswith("┃"))
    assert "name" in header and "GFLOPs" not in header and "params" not in header


def test_ls_claims_and_papers(cli, tasks):
    rc, out, _ = cli("ls", "claims", "papers", "--tasks", tasks, "--tag", "t1")
    assert rc == 0
    assert "demo/learns" in out and "smoke,full" in out
    assert "demo/full-only" not in out  # filtered by tag
    assert "papers" in out and "demo" in out


def test_ls_rejects_unknown_kind(cli):
    rc, _, err = cli("ls", "widgets")
    assert rc == 2 and "invalid choice" in err


# -- plan ---------------------------------------------------------------------------------------
def test_plan_lists_runs_and_emits_specs(cli, tasks, tmp_path):
    rc, out, _ = cli("plan", "--tasks", tasks, "--tier", "smoke", "--db", tmp_path / "none.db",
                     "--emit", tmp_path / "specs")
    assert rc == 0
    specs = plan_specs(tasks)
    # learns: 2 seeds; soft-vs-max: 2 treatment + 2 baseline, whose baseline = learns' runs
    assert len(specs) == 4
    assert "4 run(s)" in out and "todo" in out
    assert "demo/full-only: no smoke form" in out
    files = sorted((tmp_path / "specs").glob("*.json"))
    assert [f.stem for f in files] == sorted(s.run_key for s in specs)
    for f in files:
        d = json.loads(f.read_text())
        assert RunSpec.from_dict(d).run_key == d["run_key"] == f.stem
    assert not (tmp_path / "none.db").exists()  # plan never creates a DB


def test_plan_seeds_override(cli, tasks, tmp_path):
    rc, out, _ = cli("plan", "--tasks", tasks, "--tier", "smoke", "--seeds", "7",
                     "--claim", "demo/learns", "--db", tmp_path / "none.db",
                     "--emit", tmp_path / "specs")
    assert rc == 0 and "1 run(s)" in out
    (f,) = (tmp_path / "specs").glob("*.json")
    assert json.loads(f.read_text())["seed"] == 7


def test_run_with_no_matching_claims(cli, tasks, tmp_path):
    rc, _, err = cli("run", "--tasks", tasks, "--claim", "nothing/*", "--db", tmp_path / "r.db")
    assert rc == 0 and "no claims match" in err
    assert not (tmp_path / "r.db").exists()


# -- report, export, import ---------------------------------------------------------------------
@pytest.fixture
def filled_db(tasks, tmp_path) -> Path:
    """A DB with ok runs for every smoke run of ``tasks``."""
    path = tmp_path / "filled.db"
    engine = db.connect(str(path))
    db.record_runs(engine, [ok_result(s, 40.0 + s.seed) for s in plan_specs(tasks)])
    engine.dispose()
    return path


def test_report_judges_stored_runs(cli, tasks, filled_db):
    rc, out, _ = cli("report", "--tasks", tasks, "--tier", "smoke", "--db", filled_db, "--json")
    assert rc == 0
    rows, dec, i = [], json.JSONDecoder(), 0
    while out[i:].strip():  # one (pretty-printed) JSON object per claim
        i += len(out[i:]) - len(out[i:].lstrip())
        obj, i = dec.raw_decode(out, i)
        rows.append(obj)
    by = {r["claim"]: r for r in rows}
    assert by["demo/learns"]["verdict"] == "reproduced"  # 40, 41 ≥ 30
    assert by["demo/learns"]["seeds"] == [0, 1]
    assert by["demo/soft-vs-max"]["verdict"] == "reproduced"  # equal within 100
    assert by["demo/full-only"]["verdict"] == "n/a"  # no smoke form: n/a, not pending
    assert by["demo/too-big"]["verdict"] == "skipped"
    assert by["demo/too-big"]["message"] == "needs 8 GPUs"


def test_report_markdown(cli, tasks, filled_db):
    rc, out, _ = cli("report", "--tasks", tasks, "--tier", "smoke", "--db", filled_db,
                     "--markdown")
    assert rc == 0
    assert out.startswith("| claim | metric | expected |")
    assert "| `demo/learns` | top1 | ≥ 30 |" in out and "**reproduced**" in out


def test_export_import_round_trip(cli, filled_db, tmp_path):
    first = tmp_path / "export.jsonl"
    assert cli("export", first, "--db", filled_db)[0] == 0
    lines = first.read_text().splitlines()
    assert len(lines) == 4
    assert [json.loads(x)["spec"]["run_key"] for x in lines] == sorted(
        json.loads(x)["spec"]["run_key"] for x in lines)
    fresh = tmp_path / "fresh.db"
    rc, _, err = cli("import", first, "--db", fresh)
    assert rc == 0 and "imported 4 run(s)" in err
    second = tmp_path / "again.jsonl"
    assert cli("export", second, "--db", fresh)[0] == 0
    assert second.read_text() == first.read_text()


def test_export_to_stdout(cli, filled_db):
    rc, out, _ = cli("--db", filled_db, "export", "-")
    assert rc == 0 and len(out.splitlines()) == 4
    assert all(json.loads(x)["status"] == "ok" for x in out.splitlines())


def test_import_worker_result_lines(cli, tasks, tmp_path):
    spec = plan_specs(tasks)[0]
    f = tmp_path / "runs.jsonl"
    f.write_text("RESULT " + json.dumps(ok_result(spec, 55.0)) + "\n\n")
    rc, _, _ = cli("import", f, "--db", tmp_path / "r.db")
    assert rc == 0 and n_runs(tmp_path / "r.db") == 1


def _bad_lines(spec: RunSpec) -> dict[str, tuple[str, str]]:
    good = ok_result(spec, 50.0)
    edited = json.loads(json.dumps(good))
    edited["spec"]["params"]["epochs"] = 99  # config edited, run_key kept
    no_key = json.loads(json.dumps(good))
    del no_key["spec"]["tier"]
    bad_status = dict(good, status="done")
    extra = json.loads(json.dumps(good))
    extra["spec"]["colour"] = "red"
    return {
        "not-json": ("{this is not json", "not JSON"),
        "edited-run-key": (json.dumps(edited), "does not match its config"),
        "missing-spec-key": (json.dumps(no_key), "a result needs spec."),
        "bad-status": (json.dumps(bad_status), "status 'done'"),
        "not-a-runspec": (json.dumps(extra), "spec is not a RunSpec"),
    }


@pytest.mark.parametrize("kind", ["not-json", "edited-run-key", "missing-spec-key",
                                  "bad-status", "not-a-runspec"])
def test_import_with_one_bad_line_writes_nothing(cli, tasks, tmp_path, kind):
    specs = plan_specs(tasks)
    bad, want = _bad_lines(specs[0])[kind]
    f = tmp_path / "runs.jsonl"
    f.write_text(json.dumps(ok_result(specs[1], 50.0)) + "\n" + bad + "\n"
                 + json.dumps(ok_result(specs[2], 50.0)) + "\n")
    target = tmp_path / "r.db"
    db.connect(str(target)).dispose()  # an existing, empty DB
    rc, _, err = cli("import", f, "--db", target)
    assert rc == 2
    assert f"{f}:2:" in err and want in err and "Traceback" not in err
    assert n_runs(target) == 0


def test_import_bad_second_file_writes_nothing(cli, tasks, tmp_path):
    specs = plan_specs(tasks)
    good, bad = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    good.write_text(json.dumps(ok_result(specs[0], 50.0)) + "\n")
    bad.write_text("nope\n")
    target = tmp_path / "r.db"
    db.connect(str(target)).dispose()
    rc, _, err = cli("import", good, bad, "--db", target)
    assert rc == 2 and f"{bad}:1:" in err
    assert n_runs(target) == 0


def test_import_missing_file(cli, tmp_path):
    rc, _, err = cli("import", tmp_path / "nope.jsonl", "--db", tmp_path / "r.db")
    assert rc == 2 and "no such file" in err


def test_bad_db_url_exits_2(cli, tmp_path):
    rc, _, err = cli("export", "-", "--db", "not a url://x")
    assert rc == 2 and "is not a SQLAlchemy URL" in err
    rc, _, err = cli("export", "-", "--db", tmp_path / "no" / "dir" / "r.db")
    assert rc == 2 and "does not exist" in err
