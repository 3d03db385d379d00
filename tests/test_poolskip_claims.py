"""The PoolSkip claims of tasks.toml (issue 10): every published row is referenced, the arms
share their runs where the configs agree, the mini recipe is the one the file states, and the
new claims run end to end at the smoke tier (with the singularity analysis and the charts)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from registry import published
from suite import db
from suite.claims import load_claims, select
from suite.plan import make_plan

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def claims():
    _, all_claims = load_claims(REPO / "tasks.toml")
    return {c.id: c for c in select(all_claims, paper="poolskip")}


def _refs(c) -> set[str]:
    p = c.published
    return ({p["ref"]} if isinstance(p.get("ref"), str) else set()) | set(p.get("refs") or [])


def test_every_poolskip_row_is_referenced(claims):
    rows = {r for r in published.by_ref() if r.startswith("poolskip/")}
    used = set().union(*(_refs(c) for c in claims.values()))
    assert rows - used == set()
    assert used <= rows


def test_tables_2_3_5_are_recorded_and_skipped_at_every_tier(claims):
    rec = [c for c in claims.values() if c.id.startswith(("poolskip/t2/", "poolskip/t3/",
                                                          "poolskip/t5/"))]
    assert len(rec) == 4 + 12 + 6
    for c in rec:
        assert set(c.skip) == {"smoke", "mini", "full"} and not c.tiers, c.id
        assert "not in the registry" in c.skip["full"] and len(_refs(c)) == 2


def _keys(claims, cid, tier, arm=None):
    pc = make_plan([claims[cid]], tier).claims[0]
    return {r.run_key for r in pc.runs if arm is None or r.arm == arm}


@pytest.mark.parametrize("tier", ["full", "mini"])
def test_claims_share_their_runs(claims, tier):
    deep = "poolskip/c100/resnet420"
    # Figure 4's mechanism claims judge the very nets of Figure 3's accuracy claim
    assert _keys(claims, "poolskip/fig4/c100/resnet420-l2l1", tier) == _keys(claims, deep, tier)
    assert _keys(claims, "poolskip/fig4/c100/resnet420-zero-frac", tier) == _keys(
        claims, deep, tier)
    # the control claim reuses the Pool Skip arm
    assert _keys(claims, f"{deep}-vs-conv-skip", tier, "treatment") == _keys(
        claims, deep, tier, "treatment")
    # plain-degrades compares two plain arms that the depth claims train anyway
    assert _keys(claims, "poolskip/fig3/c100/plain-degrades", tier, "treatment") == _keys(
        claims, deep, tier, "baseline")
    assert _keys(claims, "poolskip/fig3/c100/plain-degrades", tier, "baseline") == _keys(
        claims, "poolskip/c100/resnet152", tier, "baseline")
    # Table 4's arms share VGG16's base with Table 1
    assert _keys(claims, "poolskip/t4/conv-skip-vs-base", tier, "baseline") == _keys(
        claims, "poolskip/t1/c100/vgg16-delta", tier, "baseline")
    if tier == "full":  # the absolute rows are the delta's arms
        assert _keys(claims, "poolskip/t1/c100/vgg16", tier) == _keys(
            claims, "poolskip/t1/c100/vgg16-delta", tier, "baseline")
        assert _keys(claims, "poolskip/fig4/c100/resnet420-plain", tier) == _keys(
            claims, deep, tier, "baseline")


def test_full_forms_follow_the_paper_recipe(claims):
    f = claims["poolskip/t1/c100/mobilenet-delta"].form("full")
    assert (f.dataset, f.seeds, f.params["epochs"], f.params["milestones"], f.params["gamma"],
            f.params["nesterov"], f.params["weight_decay"]) == (
        "cifar100", (0, 1, 2, 3, 4), 200, [60, 120, 160], 0.2, True, 5e-4)
    assert f.params.get("select", "last") == "last"  # final-epoch error
    deep = claims["poolskip/c100/resnet420"].form("full")
    assert deep.model_args == {"skip": "poolskip", "pool_size": 4}
    assert deep.params["analyze"] == ["singularity"]
    c10 = claims["poolskip/c10/resnet420"].form("full")
    assert (c10.dataset, c10.model_args["pool_size"]) == ("cifar10", 2)


def test_mini_forms(claims):
    d = claims["poolskip/c100/resnet420"].form("mini")
    assert (d.model, d.dataset, d.model_args["skip"], d.model_args["pool_size"]) == (
        "cifar_resnet_thin", "fashion_mnist_16", "poolskip", 2)
    assert d.params["augment"] == {"crop_padding": 0, "flip": True}
    depths = sorted(r.model_args["depth"] for r in make_plan(
        list(claims.values()), "mini").runs if r.model == "cifar_resnet_thin")
    assert len(set(depths)) >= 4
    arms = {(r.model_args["depth"], r.model_args["skip"]) for r in make_plan(
        list(claims.values()), "mini").runs if r.model == "cifar_resnet_thin"}
    assert arms == {(dp, s) for dp in set(depths) for s in ("identity", "poolskip", "residual")}
    t1 = claims["poolskip/t1/c100/vgg16-delta"].form("mini")
    assert (t1.dataset, t1.dataset_args["size"], t1.model_args["width"]) == (
        "fashion_mnist", 32, 0.125)


SMOKE = [  # one claim per new component, seed 0 only: each run is a worker process
    "poolskip/t1/c100/vgg16-delta",       # Table 1 net, Pool Skip after every conv
    "poolskip/t4/pool-conv-vs-base",      # a Table 4 ablation op (shares VGG16's base)
    "poolskip/c100/resnet420",            # depth curve + the analysis inside train_eval
    "poolskip/fig4/c100/resnet420-l2l1",  # Figure 4's mechanism claim (same runs)
    "poolskip/cost/throughput/resnet18",  # the throughput probe task
]


@pytest.fixture(scope="module")
def smoke_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ps_smoke")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    url = f"sqlite:///{tmp / 'r.db'}"
    run = subprocess.run([sys.executable, "-m", "suite", "--db", url, "run", "--tier", "smoke",
                          "--claim", ",".join(SMOKE), "--seeds", "0", "--jobs", "2",
                          "--no-mlflow",
                          "--no-progress", "--workdir", str(tmp / "w")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "error 0" in run.stderr and "timeout 0" in run.stderr, run.stderr[-3000:]
    rep = subprocess.run([sys.executable, "-m", "suite", "--db", url, "report", "--tier",
                          "smoke", "--claim", ",".join(SMOKE), "--seeds", "0", "--json"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return url, {d["claim"]: d for d in map(json.loads, rep.stdout.splitlines())}


@pytest.mark.slow
def test_new_claims_run_at_smoke_tier(smoke_db):
    url, rows = smoke_db
    assert set(rows) == set(SMOKE)
    for claim, row in rows.items():
        assert row["verdict"] in ("reproduced", "not reproduced", "inconclusive"), (claim, row)
        assert row["stats"]["summary"]["n"] >= 1, (claim, row)
    engine = db.connect(url, readonly=True)
    runs = db.runs_by_key(engine, rows["poolskip/c100/resnet420"]["run_keys"])
    for r in runs.values():  # the analysis ran on each trained net and was stored
        m = r.metric_dict()
        assert {"l2l1_max_shallow", "zero_frac_mean_shallow", "gflops_per_image"} <= set(m)
        names = {a.name for a in r.artifacts}
        assert {"singularity_plot", "singularity_layers"} <= names
        assert len([p for p in r.series if p.name == "layer_l2l1"]) == m["n_layers"]


@pytest.mark.slow
def test_poolskip_charts_render_from_the_runs(smoke_db, tmp_path, monkeypatch):
    from dashboard import charts
    from dashboard.charts import poolskip as ps_charts

    url, _ = smoke_db
    monkeypatch.setattr(ps_charts, "TIER", "smoke")
    engine = db.connect(url, readonly=True)
    _, all_claims = load_claims(REPO / "tasks.toml")
    specs = charts.load_all()
    for name in ("poolskip/depth-curve", "poolskip/layers", "poolskip/table1",
                 "poolskip/table4"):
        path = charts.render(specs[name], engine, all_claims, tmp_path)
        assert path is not None and path.read_bytes()[:4] == b"\x89PNG", name


def _readme_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## PoolSkip: claim families and what was found")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def test_readme_section_figures_are_committed_poolskip_charts():
    """Every figure the README's PoolSkip section shows is a registered poolskip chart's PNG
    (so `python -m dashboard.charts --only 'poolskip/*'` regenerates it) and exists."""
    import re

    from dashboard import charts

    section = _readme_section()
    shown = re.findall(r"!\[[^\]]*\]\((dashboard/figures/[^)]+)\)", section)
    assert {"dashboard/figures/poolskip__depth-curve.png",
            "dashboard/figures/poolskip__layers.png"} <= set(shown)
    files = {f"dashboard/figures/{s.filename}" for n, s in charts.load_all().items()
             if n.startswith("poolskip/")}
    for path in shown:
        assert path in files, f"{path} is not rendered by a poolskip/* chart"
        assert (REPO / path).read_bytes()[:4] == b"\x89PNG", path


def test_readme_section_names_only_existing_claims(claims):
    import fnmatch
    import re

    named = set(re.findall(r"`(poolskip/[A-Za-z0-9_./{},*-]+)`", _readme_section()))
    assert named, "the section names its claims"
    for pattern in named:
        # expand {a,b} alternatives, then match as a glob against the claim ids
        alts = [pattern]
        while any("{" in a for a in alts):
            a = next(a for a in alts if "{" in a)
            pre, rest = a.split("{", 1)
            body, post = rest.split("}", 1)
            alts.remove(a)
            alts += [pre + b + post for b in body.split(",")]
        for a in alts:
            assert fnmatch.filter(claims, a) or fnmatch.filter(claims, a + "/*"), (
                f"README names {a!r}, which matches no PoolSkip claim")
