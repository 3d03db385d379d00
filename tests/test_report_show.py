"""The verdict table (100 columns, the README between markers) and ``show CLAIM_ID``."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from suite import db, report
from suite.claims import load_catalog
from suite.cli import main
from suite.plan import make_plan
from suite.specs import RunSpec
from suite.ui import TABLE_WIDTH, verdict_table

REPO = Path(__file__).resolve().parent.parent

TASKS = """
[papers.demo]
title = "A demo paper"

[defaults]
task = "train_eval"
seeds = [0, 1, 2]

[[claim]]
id = "demo/a-rather-long-claim-identifier/with-parts"
paper = "demo"
source = "Table 1"
model = "test_cnn"
dataset = "synthetic"
params = { epochs = 1 }
expect = { kind = "delta", metric = "top1", direction = "higher", min_diff = 0.5, baseline = { model_args = { pool = "avg" } } }
published = { ref = "allconv/table-3/cifar-10/model-a/error" }

[[claim]]
id = "demo/kernel"
paper = "demo"
source = "Sec. 4"
task = "kernel_bench"
expect = { kind = "absolute", metric = "softpool2d.cifar.fwdbwd_ratio_vs_avg_of_a_long_name", direction = "lower", value = 1.3 }

[[claim]]
id = "demo/full-only"
paper = "demo"
source = "Table 2"
model = "test_cnn"
dataset = "synthetic"

[[context]]
id = "demo/quoted"
paper = "demo"
ref = "s3net/table-iii/cifar-100/nin-plus-dropout/error"
source = "Table 1, quoted from Lin et al."
beside = ["demo/a-*"]
reason = "NIN is not in the registry"
"""


def result(spec: RunSpec, value: float, **metrics: float) -> dict:
    return {"spec": spec.to_dict(), "status": "ok", "message": "",
            "metrics": {spec_metric(spec): value, **metrics},
            "provenance": {"git_sha": "0123456789abcdef", "git_dirty": False, "python": "3.11.2",
                           "torch": "2.14.1", "device_name": "CPU Test (1 threads)",
                           "loader": "tensor"},
            "started_at": "2026-01-01T00:00:00", "finished_at": "2026-01-01T00:00:10",
            "wall_s": 10.0 + spec.seed}


def spec_metric(spec: RunSpec) -> str:
    return "top1" if spec.task == "train_eval" else \
        "softpool2d.cifar.fwdbwd_ratio_vs_avg_of_a_long_name"


@pytest.fixture
def filled(tmp_path):
    tasks = tmp_path / "tasks.toml"
    tasks.write_text(TASKS, encoding="utf-8")
    cat = load_catalog(tasks)
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    rows = []
    for s in make_plan(cat.claims, "full").runs:
        v = 80.0 + s.seed * 0.7 + (1.1 if s.arm == "treatment" else 0.0)
        if s.task == "kernel_bench":
            v = 1.2 + 0.15 * s.seed
        rows.append(result(s, v, gflops=0.5, images_per_s=900.0 + s.seed))
    db.record_runs(engine, rows)
    return tasks, tmp_path / "r.db", cat, engine


def test_the_verdict_table_fits_100_columns(filled):
    _, _, cat, engine = filled
    rows = report.claim_rows(engine, cat.claims, "full")
    console = Console(width=TABLE_WIDTH, record=True)
    console.print(verdict_table(rows, "verdicts, tier full"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH
    for c in cat.claims:  # every claim id is readable on one line, never folded
        assert any(c.id in line for line in text.splitlines()), c.id
    assert "n/a" not in text  # every claim has a full form


def test_markdown_and_write_readme(filled, tmp_path):
    tasks, dbp, cat, engine = filled
    md = report.markdown(report.claim_rows(engine, cat.claims, "mini"), hide=("n/a",))
    assert md.count("\n") == 1  # header only: no claim has a mini form
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n{report.BEGIN}\nold table\n{report.END}\nafter\n",
                      encoding="utf-8")
    argv = ["--tasks", str(tasks), "--db", str(dbp), "report", "--tier", "full",
            "--markdown", "--write-readme", str(readme)]
    assert main(argv) == 0
    text = readme.read_text(encoding="utf-8")
    assert "old table" not in text and text.startswith("# x\n\nbefore\n")
    assert text.endswith(f"{report.END}\nafter\n")
    assert "| `demo/kernel` |" in text and "**inconclusive" in text
    assert main(argv) == 0  # idempotent
    assert readme.read_text(encoding="utf-8") == text
    readme.write_text("no markers\n", encoding="utf-8")
    assert main(argv) == 2


def test_write_readme_needs_markdown(filled, capsys):
    tasks, dbp, _, _ = filled
    assert main(["--tasks", str(tasks), "--db", str(dbp), "report", "--write-readme"]) == 2
    assert "add --markdown" in capsys.readouterr().err


def test_the_repo_readme_has_the_markers():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.count(report.BEGIN) == 1 and text.count(report.END) == 1


def test_show_prints_recipe_seeds_values_provenance_and_cost(filled, capsys):
    tasks, dbp, _, _ = filled
    rc = main(["--tasks", str(tasks), "--db", str(dbp), "show",
               "demo/a-rather-long-claim-identifier/with-parts", "--tier", "full"])
    out = capsys.readouterr().out
    assert rc == 0
    for text in ("recipe at tier full", "test_cnn", "baseline arm", '"pool": "avg"',
                 "allconv/table-3/cifar-10/model-a/error",  # the published row
                 "not run: NIN is not in the registry",
                 "runs (per-seed values)", "treatment", "baseline", "81.1", "81.8",
                 "0123456789", "2.14.1", "CPU Test (1 threads)", "device-seconds (total)",
                 "gflops (treatment)", "images_per_s (baseline)"):
        assert text in out, text
    assert "66.0 s" in out  # 2 arms × (10 + 11 + 12) s


def test_show_unknown_claim_suggests(filled, capsys):
    tasks, dbp, _, _ = filled
    assert main(["--tasks", str(tasks), "--db", str(dbp), "show", "demo/kernl"]) == 2
    assert "did you mean 'demo/kernel'" in capsys.readouterr().err


def test_show_a_claim_without_a_form_at_the_tier(filled, capsys):
    tasks, dbp, _, _ = filled
    assert main(["--tasks", str(tasks), "--db", str(dbp), "show", "demo/full-only",
                 "--tier", "mini"]) == 0
    assert "no mini form" in capsys.readouterr().out
