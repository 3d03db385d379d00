"""S3Net's claims cover the paper: every own-model row of registry/published.toml (variants
s3net, densenet, resnet_topology, baseline_reimpl) is referenced by some claim, and the claims
that share a mini-tier experiment grid really share their runs."""

from __future__ import annotations

from pathlib import Path

import tomllib

from suite.claims import load_claims
from suite.plan import make_plan

ROOT = Path(__file__).resolve().parent.parent
OWN = {"s3net", "densenet", "resnet_topology", "baseline_reimpl"}


def _claims():
    return load_claims(ROOT / "tasks.toml")[1]


def test_every_s3net_own_model_row_is_referenced():
    rows = tomllib.loads((ROOT / "registry" / "published.toml").read_text())["row"]
    own = {r["ref"] for r in rows if r["ref"].startswith("s3net/") and r["variant"] in OWN}
    cited = set()
    for c in _claims():
        p = c.published
        cited |= {p["ref"]} if isinstance(p.get("ref"), str) else set()
        cited |= set(p.get("refs") or [])
    assert own, "no S3Net own-model rows found"
    assert sorted(own - cited) == []


def test_mini_grid_is_four_arms_times_five_seeds():
    """The matched-parameter and saliency claims share one grid of trained models."""
    claims = [c for c in _claims() if c.id.startswith(("s3net/c100/", "s3net/saliency/"))]
    runs = make_plan(claims, "mini").runs
    models = sorted({r.model for r in runs})
    assert models == ["cifar_resnet20", "densenet22_k9", "s3net_k16_d22", "s3net_k9_d22"]
    assert len(runs) == 20


def test_ntk_claims_share_one_run():
    claims = [c for c in _claims() if c.id.startswith("s3net/ntk/")
              and "random-splits" not in c.id]
    assert len(claims) == 15
    assert len(make_plan(claims, "mini").runs) == 1


def test_charts_render_the_ntk_run_and_skip_without_data(tmp_path):
    """The S3Net chart builders: no data -> None; the NTK claim's run -> a PNG."""
    import pytest

    from dashboard import charts
    from dashboard.charts import s3net as s3charts
    from registry.datasets.base import DatasetError
    from suite import db
    from suite.specs import TaskContext
    from tasks import ntk

    claims = _claims()
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    for name in ("s3net/ntk-mse-by-depth", "s3net/matched-params-accuracy",
                 "s3net/saliency-scores", "s3net/saliency-examples",
                 "s3net/paired-differences"):
        assert charts.CHARTS[name].build(engine, claims) is None
    spec = make_plan([c for c in claims if c.id == "s3net/ntk/residual-k4"], "mini").runs[0]
    try:
        res = ntk.run(spec, TaskContext(device="cpu"))
    except DatasetError as e:
        pytest.skip(str(e))
    db.record_runs(engine, [{"spec": spec.to_dict(), "status": "ok", "metrics": res.metrics,
                             "series": res.series, "provenance": {}}])
    path = charts.render(charts.CHARTS["s3net/ntk-mse-by-depth"], engine, claims, tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert s3charts.TIER == "mini"


def test_paired_differences_follow_the_claims(tmp_path):
    """The paired-differences chart's table, from a real DB holding the grid's planned runs
    with metrics set here: S3Net k=16 one point better than DenseNet on every seed, ResNet
    equal to S3Net on average (spread ±1), so the verdicts are known."""
    import pytest

    from dashboard import charts
    from dashboard.charts import s3net as s3charts
    from suite import db

    claims = _claims()
    grid = [c for c in claims if c.id.startswith(("s3net/c100/", "s3net/saliency/"))]
    base = {"s3net_k16_d22": 66.0, "densenet22_k9": 65.0, "s3net_k9_d22": 64.0}
    results = []
    for r in make_plan(grid, "mini").runs:
        top1 = base.get(r.model, 66.0 + (1.0 if r.seed % 2 else -1.0))
        m = {"top1": top1, "top1_err": 100 - top1, "loc_energy": top1 / 200,
             "deletion_auc": 0.1, "insertion_auc": 0.4}
        results.append({"spec": r.to_dict(), "status": "ok", "metrics": m, "provenance": {}})
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    db.record_runs(engine, results)
    df, seeds = s3charts.paired_differences_table(engine, claims)
    df = df.set_index("claim")
    row = df.loc["s3net/c100/k24_d40-vs-densenet-k12"]
    assert row["comparison"] == "S3Net k=16 − DenseNet k=9"
    assert row["mean"] == pytest.approx(-1.0) and row["verdict"] == "reproduced"
    assert df.loc["s3net/c100/k12_d40-vs-densenet", "borders"] == [-2.5, 2.5]
    assert df.loc["s3net/saliency/loc-vs-resnet", "verdict"] == "inconclusive"
    assert len(seeds) == 5 * len(df)
    path = charts.render(charts.CHARTS["s3net/paired-differences"], engine, claims, tmp_path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_grid_charts_include_the_seeds_until_decided_added(tmp_path):
    """A grid arm extended by ``run --until-decided`` (seeds 5-9 beside the committed 0-4)
    shows all its seeds in the per-arm charts; unplanned seeds beyond them do not appear."""
    from dashboard.charts import s3net as s3charts
    from suite import db
    from suite.plan import plan_claim

    claims = _claims()
    claim = next(c for c in claims if c.id == "s3net/c100/k24_d40-vs-densenet-k12")
    results = [{"spec": r.to_dict(), "status": "ok", "provenance": {},
                "metrics": {"top1": 60.0 + r.seed, "top1_err": 40.0 - r.seed}}
               for r in plan_claim(claim, "mini", tuple(range(10))).runs]
    stray = plan_claim(claim, "mini", (99,)).runs  # not a seed any look would add
    results += [{"spec": r.to_dict(), "status": "ok", "provenance": {}, "metrics": {"top1": 1.0}}
                for r in stray]
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    db.record_runs(engine, results)
    df = s3charts._grid_frame(engine, claims)
    assert sorted(df["seed"].unique()) == list(range(10))
    assert len(df) == 2 * 10  # S3Net k=16 and DenseNet k=9, ten seeds each
