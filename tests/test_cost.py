"""The throughput probe (tasks/throughput.py) and the cost report (suite/cost.py,
``report --cost``): device-seconds from stored runs, full-tier device-hours from a probe."""

from __future__ import annotations

import json
import textwrap

import pytest

from suite import cost, db
from suite.claims import load_claims
from suite.cli import main as cli
from suite.plan import make_plan
from suite.specs import RunSpec, TaskContext
from tasks import TASKS
from tasks.throughput import probe

pytestmark = pytest.mark.usefixtures("one_thread")


def test_probe_measures_a_training_step():
    m = probe("test_cnn", {"width": 4}, "cpu", batch_size=4, steps=2, warmup=1)
    assert m["images_per_s"] > 0 and m["step_ms"] > 0
    assert m["images_per_s"] == pytest.approx(4 / (m["step_ms"] / 1e3))
    assert m["gflops_per_image"] > 0 and m["params_m"] > 0
    small = probe("test_cnn", {"width": 4}, "cpu", batch_size=2, steps=1, warmup=0,
                  input_size=[1, 16, 16])
    assert small["gflops_per_image"] < m["gflops_per_image"]  # 1×16×16 < 3×32×32


def test_probe_task_and_its_errors():
    spec = RunSpec(claim_id="x", tier="smoke", arm="treatment", seed=0, task="throughput",
                   model="test_cnn", dataset="", model_args={"width": 4},
                   params={"batch_size": 2, "steps": 1, "warmup": 0})
    ctx = TaskContext(device="cpu")
    r = TASKS.get("throughput")(spec, ctx)
    assert set(r.metrics) == set(TASKS.entry("throughput").meta["metrics"])
    assert "training step" in ctx.provenance["throughput"]["what"]
    with pytest.raises(ValueError, match="unknown params"):
        probe("test_cnn", {}, "cpu", stepz=1)
    with pytest.raises(ValueError, match="≥ 1"):
        probe("test_cnn", {}, "cpu", steps=0)


TOML = textwrap.dedent("""
    [papers.demo]
    title = "demo"
    [defaults]
    task = "train_eval"
    [[claim]]
    id = "demo/delta"
    paper = "demo"
    source = "s"
    model = "test_cnn"
    model_args = { width = 4, pool = "avg" }
    dataset = "fashion_mnist"
    params = { epochs = 3, batch_size = 256 }
    seeds = [0, 1]
    expect = { kind = "delta", metric = "top1", baseline = { model_args = { pool = "max" } } }
    [claim.tiers.smoke]
    dataset = "synthetic"
    [[claim]]
    id = "demo/sub"
    paper = "demo"
    source = "s"
    model = "test_cnn"
    model_args = { width = 4 }
    dataset = "fashion_mnist"
    dataset_args = { train_subset = 1000 }
    params = { epochs = 2 }
    seeds = [0]
    expect = { kind = "absolute", metric = "top1", value = 1.0 }
    [[claim]]
    id = "demo/params"
    paper = "demo"
    source = "s"
    task = "param_count"
    model = "test_cnn"
    expect = { kind = "absolute", metric = "params", value = 1.0 }
    tiers = { full = { skip = "nothing to do" } }
    """)


def _result(spec: RunSpec, wall: float) -> dict:
    return {"spec": spec.to_dict(), "status": "ok", "wall_s": wall, "provenance": {},
            "metrics": {"top1": 50.0, "images_per_s": 100.0 * (1 + spec.seed),
                        "gflops_per_image": 0.5}}


def test_cost_rows_device_seconds_and_estimates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks.toml").write_text(TOML)
    _, claims = load_claims(tmp_path / "tasks.toml")
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    plan = make_plan(claims, "smoke")
    db.record_runs(engine, [_result(r, 10.0 + r.seed) for r in plan.runs])
    cache = tmp_path / "probe.json"
    rows = {r.claim: r for r in cost.cost_rows(engine, claims, "smoke", cache_path=cache)}
    d = rows["demo/delta"]
    assert d.runs == 4 and d.device_s == pytest.approx(10 + 11 + 10 + 11)
    assert d.images_per_s == pytest.approx(150.0) and d.gflops_per_image == 0.5
    assert d.full_hours is None and "--probe" in d.full_note  # nothing probed yet
    assert rows["demo/sub"].runs == 0 and rows["demo/sub"].device_s == 0
    assert "skipped" in rows["demo/params"].full_note

    rows = {r.claim: r for r in cost.cost_rows(engine, claims, "smoke", probe=True,
                                                batch_cap=4, cache_path=cache)}
    d = rows["demo/delta"]
    assert [a["arm"] for a in d.arms] == ["treatment", "baseline"]
    # epochs × training images (fashion_mnist: 60k) × seeds ÷ probe images/s, per arm
    want = sum(3 * 60_000 * 2 / a["images_per_s"] / 3600 for a in d.arms)
    assert d.full_hours == pytest.approx(want)
    assert all(a["probe_batch"] == 4 for a in d.arms) and "60,000 images" in d.full_note
    s = rows["demo/sub"]  # train_subset is the training-set size
    assert s.full_hours == pytest.approx(2 * 1000 * 1 / s.arms[0]["images_per_s"] / 3600)
    # the probes are cached for this device: no --probe needed the second time
    cached = json.loads(cache.read_text())
    assert any(k.startswith("__device__:") for k in cached)
    again = {r.claim: r for r in cost.cost_rows(engine, claims, "smoke", batch_cap=4,
                                                cache_path=cache)}
    assert again["demo/delta"].full_hours == pytest.approx(d.full_hours)


def test_report_cost_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tasks.toml").write_text(TOML)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    _, claims = load_claims(tmp_path / "tasks.toml")
    engine = db.connect(url)
    db.record_runs(engine, [_result(r, 5.0) for r in make_plan(claims, "smoke").runs])
    assert cli(["--db", url, "report", "--tier", "smoke", "--cost", "--probe",
                "--probe-device", "cpu", "--probe-batch", "2"]) == 0
    text = capsys.readouterr().out
    assert "device-seconds" in text and "demo/delta" in text and "total device-seconds" in text
    assert (tmp_path / ".cache/poolrepro/probe.json").is_file()
    assert cli(["--db", url, "report", "--tier", "smoke", "--cost", "--json",
                "--probe-batch", "2"]) == 0  # the cached probe of that batch size
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    costs = {x["cost"]["claim"]: x["cost"] for x in lines if "cost" in x}
    assert costs["demo/delta"]["device_s"] == 20.0 and costs["demo/delta"]["full_hours"] > 0
