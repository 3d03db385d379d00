"""SoftPool charts: tables and PNGs from a real results DB holding runs planned from tasks.toml
(their metrics are set by the test, so the expected ranking and intervals are known)."""

from __future__ import annotations

import pytest

from dashboard import charts
from dashboard.charts import softpool as sp
from suite import db
from suite.claims import load_claims
from suite.plan import make_plan

TOP1 = {"softpool": 90.0, "max": 89.0, "avg": 88.0, "lp": 87.5, "stochastic": 87.0,
        "mixed": 89.5, "gated": 86.0, "lip": 85.0, "strided_conv": 84.0,
        "pixel_unshuffle": 83.0}


def _metrics(spec) -> dict[str, float]:
    if spec.task == "info_retention":
        out = {}
        for k in (2, 3):
            for pool, v in (("max", 0.80), ("avg", 0.86), ("softpool", 0.85)):
                out[f"k{k}.ssim.{pool}"] = v + 0.01 * spec.seed
                out[f"k{k}.psnr.{pool}"] = 30 * v + spec.seed
            out[f"k{k}.ssim.softpool_minus_max"] = 0.05
            out[f"k{k}.ssim.softpool_minus_avg"] = -0.001
        return out
    pool = spec.model_args.get("pool")
    return {"top1": TOP1.get(pool, 80.0) + (0.2 if spec.seed == 1 else 0.0)}


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    _, claims = load_claims(root / "tasks.toml")
    softpool = [c for c in claims if c.paper == "softpool" and "bench" not in c.tags]
    plan = make_plan(softpool, "mini")  # the claims' own seeds (12 photo shards, 3 seeds...)
    results = [{"spec": r.to_dict(), "status": "ok", "metrics": _metrics(r), "provenance": {}}
               for r in plan.runs]
    engine = db.connect(f"sqlite:///{tmp_path_factory.mktemp('sp') / 'r.db'}")
    db.record_runs(engine, results)
    return engine, claims


def test_ranking_is_sorted_with_intervals(filled) -> None:
    engine, claims = filled
    df = sp.ranking_table(engine, claims)
    assert df["pool"].tolist() == sorted(TOP1, key=TOP1.get, reverse=True)
    top = df.iloc[0]
    assert top["rank"] == 1 and top["n"] == 3
    assert top["mean"] == pytest.approx(90.0 + 0.2 / 3)
    assert top["lo"] < top["mean"] < top["hi"]


def test_retention_table_has_every_pool_kernel_and_score(filled) -> None:
    engine, claims = filled
    df = sp.retention_table(engine, claims)
    assert set(df["dataset"]) == {"sample_photos", "fashion_mnist"}
    assert set(df["kernel"]) == {"2×2", "3×3"} and set(df["score"]) == {"SSIM", "PSNR"}
    row = df[(df.dataset == "sample_photos") & (df.kernel == "2×2") & (df.score == "SSIM")
             & (df.pool == "softpool")].iloc[0]
    assert row["n"] == 12 and row["mean"] == pytest.approx(0.85 + 0.01 * 5.5)


def test_family_deltas_are_paired_differences(filled) -> None:
    engine, claims = filled
    df = sp.deltas_table(engine, claims).set_index("claim")
    assert df.loc["softpool/imagenet/resnet18", "mean"] == pytest.approx(90.0 - 89.0)
    assert df.loc["softpool/video/c3d-vs-avg", "mean"] == pytest.approx(2.0)
    assert set(df["verdict"]) <= {"reproduced", "not reproduced", "inconclusive"}


def test_retention_deltas_follow_the_claims(filled) -> None:
    engine, claims = filled
    df = sp.retention_deltas_table(engine, claims).set_index("claim")
    row = df.loc["softpool/retention/photos/k2-ssim-vs-max"]
    assert row["mean"] == pytest.approx(0.05) and row["verdict"] == "reproduced"
    assert df.loc["softpool/retention/photos/k2-ssim-vs-avg", "verdict"] == "not reproduced"
    assert "softpool/retention/photos/k2-psnr-vs-max" not in df.index  # no such metric: error


def test_pngs_render(filled, tmp_path) -> None:
    engine, claims = filled
    for name in ("softpool/retention", "softpool/ranking", "softpool/family-deltas",
                 "softpool/retention-deltas"):
        path = charts.render(charts.load_all()[name], engine, claims, tmp_path)
        assert path is not None and path.read_bytes()[:4] == b"\x89PNG"


def test_empty_db_draws_nothing(tmp_path) -> None:
    engine = db.connect(f"sqlite:///{tmp_path / 'empty.db'}")
    _, claims = load_claims(charts.FIGURES.parent.parent / "tasks.toml")
    assert sp.ranking(engine, claims) is None and sp.retention(engine, claims) is None
