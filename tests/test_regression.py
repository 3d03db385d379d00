"""``python -m suite regression``: bands from the committed spread, the comparison rules, and
the check failing on a deliberately broken model (runs in-process on synthetic data)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import registry
from suite import db
from suite.claims import load_claims
from suite.cli import main
from suite.errors import SuiteError
from suite.regression import (
    Subset,
    band,
    build_reference,
    changes,
    compare,
    load_subset,
    run_claims,
    select_claims,
    snapshot,
    write_reference,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = """
[papers.demo]
title = "demo"

[defaults]
task = "train_eval"
seeds = [0, 1, 2, 3]

[[claim]]
id = "demo/learns"
paper = "demo"
source = "s"
model = "test_cnn"
dataset = "synthetic"
model_args = { width = 8, pool = "max" }
dataset_args = { train_size = 256, test_size = 256, size = 16, num_classes = 4, noise = 1.5 }
params = { epochs = 4, batch_size = 32, lr = 0.05 }
expect = { kind = "absolute", metric = "top1", direction = "higher", value = 40.0 }

[[claim]]
id = "demo/max-vs-avg"
extends = "demo/learns"
paper = "demo"
source = "s"
expect = { kind = "delta", metric = "top1", direction = "equal", tolerance = 100.0, baseline = { model_args = { pool = "avg" } } }
"""


@pytest.fixture(scope="module")
def reference(tmp_path_factory, one_thread):
    """The subset's reference, built once (in-process runs on synthetic data)."""
    tmp_path = tmp_path_factory.mktemp("regression")
    tasks = tmp_path / "tasks.toml"
    tasks.write_text(TASKS, encoding="utf-8")
    subset = tmp_path / "subset.toml"
    subset.write_text('tier = "full"\nclaims = ["demo/*"]\n', encoding="utf-8")
    _, claims = load_claims(tasks)
    sub = load_subset(subset)
    chosen = select_claims(sub, claims)
    engine = db.connect(f"sqlite:///{tmp_path / 'ref.db'}")
    run_claims(engine, chosen, "full", in_process=True)
    ref = build_reference(engine, chosen, sub)
    write_reference(tmp_path / "reference.json", ref)
    return tmp_path, chosen, ref


@pytest.fixture
def setup(reference, tmp_path):
    """A private copy of the reference's directory (tests edit their files)."""
    import shutil

    src, chosen, ref = reference
    for name in ("tasks.toml", "subset.toml", "reference.json"):
        shutil.copy(src / name, tmp_path / name)
    return tmp_path, chosen, ref


def fresh(tmp_path, name: str):
    return db.connect(f"sqlite:///{tmp_path / name}")


# -- bands -----------------------------------------------------------------------------------
def test_band_comes_from_the_committed_spread():
    b = band([1.0, 2.0, 3.0])
    from scipy.stats import t

    half = t.ppf(0.995, 2) * 1.0 * math.sqrt(2 / 3)
    assert b["mean"] == 2.0 and b["std"] == 1.0 and b["n"] == 3
    assert b["band"] == pytest.approx([2.0 - half, 2.0 + half])
    assert band([0.95, 0.95])["band"] == pytest.approx([0.95, 0.95], abs=1e-8)  # exact
    wide, narrow = band([1.0, 3.0, 5.0]), band([2.9, 3.0, 3.1])
    assert wide["band"][1] - wide["band"][0] > narrow["band"][1] - narrow["band"][0]


def test_subset_file_problems_are_clear(tmp_path):
    bad = tmp_path / "s.toml"
    for text, want in (('claims = []', "non-empty list"), ('tier = "huge"\nclaims = ["x"]',
                                                            "tier 'huge'"),
                       ('claim = ["x"]', "unknown key")):
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(SuiteError, match=want):
            load_subset(bad)
    with pytest.raises(SuiteError, match="no subset file"):
        load_subset(tmp_path / "missing.toml")


def test_subset_patterns_must_match_claims_with_a_form(tmp_path):
    (tmp_path / "tasks.toml").write_text(TASKS, encoding="utf-8")
    _, claims = load_claims(tmp_path / "tasks.toml")
    with pytest.raises(SuiteError, match="'nope/\\*' matches no claim"):
        select_claims(Subset("full", ("nope/*",), "s.toml"), claims)
    with pytest.raises(SuiteError, match="has no mini form"):
        select_claims(Subset("mini", ("demo/learns",), "s.toml"), claims)


# -- the check -------------------------------------------------------------------------------
def test_an_unchanged_rerun_passes_and_the_reference_has_every_seed(setup):
    tmp_path, chosen, ref = setup
    c = ref["claims"]["demo/max-vs-avg"]
    assert set(c["runs"]) == {"treatment", "baseline"} and set(c["runs"]["baseline"]) == {
        "0", "1", "2", "3"}
    assert set(c["quantities"]) == {"treatment top1", "baseline top1", "Δ top1"}
    assert ref["environment"]["torch"] == [torch.__version__]
    engine = fresh(tmp_path, "now.db")
    run_claims(engine, chosen, "full", in_process=True)
    checks = compare(ref["claims"], snapshot(engine, chosen, "full"))
    assert checks and all(ch.ok for ch in checks), [ch for ch in checks if not ch.ok]


def test_the_check_fails_when_a_model_is_deliberately_broken(setup, monkeypatch):
    """The max pool inside test_cnn is swapped for a broken one (its output zeroed)."""
    tmp_path, chosen, ref = setup
    real = registry.create_pool

    class ZeroedMaxPool(nn.MaxPool2d):
        def forward(self, x):
            return super().forward(x) * 0.0

    def swapped(name, **kw):
        if name == "max":
            return ZeroedMaxPool(kw.get("kernel_size", 2), kw.get("stride"))
        return real(name, **kw)

    monkeypatch.setattr(registry, "create_pool", swapped)
    engine = fresh(tmp_path, "broken.db")
    run_claims(engine, chosen, "full", in_process=True)
    monkeypatch.setattr(registry, "create_pool", real)
    checks = compare(ref["claims"], snapshot(engine, chosen, "full"))
    failed = {(ch.claim, ch.what) for ch in checks if not ch.ok}
    assert ("demo/learns", "verdict") in failed  # reproduced → not reproduced
    assert ("demo/learns", "treatment top1") in failed  # left its band
    assert ("demo/max-vs-avg", "Δ top1") in failed
    assert ("demo/max-vs-avg", "baseline top1") not in failed  # the avg arm is intact

    # the same through the CLI, reusing the broken runs: exit 1 and the committed-vs-now table
    rc = main(["--tasks", str(tmp_path / "tasks.toml"), "regression", "check", "--subset",
               str(tmp_path / "subset.toml"), "--reference", str(tmp_path / "reference.json"),
               "--run-db", f"sqlite:///{tmp_path / 'broken.db'}", "--no-progress"])
    assert rc == 1


def test_a_recipe_change_fails_and_update_says_what_changed(setup, capsys):
    tmp_path, chosen, ref = setup
    tasks = tmp_path / "tasks.toml"
    tasks.write_text(TASKS.replace("lr = 0.05", "lr = 0.02"), encoding="utf-8")
    (tmp_path / "subset.toml").write_text('tier = "full"\nclaims = ["demo/learns"]\n')
    argv = ["--tasks", str(tasks), "regression"]
    files = ["--subset", str(tmp_path / "subset.toml"), "--reference",
             str(tmp_path / "reference.json")]
    # a changed recipe fails without being run (nothing is in the fresh temporary DB)
    assert main([*argv, "check", *files, "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "recipe" in out and "params.lr: 0.05 → 0.02" in out
    _, claims = load_claims(tasks)
    engine = fresh(tmp_path, "new.db")
    run_claims(engine, claims[:1], "full", in_process=True)
    assert main([*argv, "update", *files, "--run-db", f"sqlite:///{tmp_path / 'new.db'}",
                 "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "demo/learns: recipe treatment params.lr: 0.05 → 0.02" in err
    assert "removed demo/max-vs-avg" in err
    new = json.loads((tmp_path / "reference.json").read_text())
    assert new["claims"]["demo/learns"]["configs"]["treatment"]["params"]["lr"] == 0.02
    assert any("recipe" in line for line in changes(ref, new))
    assert main([*argv, "check", *files, "--run-db", f"sqlite:///{tmp_path / 'new.db'}",
                 "--no-progress"]) == 0


def test_a_claim_new_to_the_subset_or_gone_from_it_fails(setup):
    _, _, ref = setup
    now = dict(ref["claims"])
    gone = now.pop("demo/learns")
    assert any(ch.what == "claim" and not ch.ok for ch in compare(ref["claims"], now))
    assert any(ch.what == "claim" and "no reference" in ch.committed
               for ch in compare({"demo/max-vs-avg": ref["claims"]["demo/max-vs-avg"]},
                                 {**now, "demo/learns": gone}))
