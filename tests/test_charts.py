"""The chart registry behind the README figures and the dashboard's Analysis page."""

from __future__ import annotations

import altair as alt
import pandas as pd
import pytest

from dashboard import charts
from suite import db


@pytest.fixture
def registered():
    before = dict(charts.load_all())  # every module imported first: teardown restores them

    @charts.chart("demo/top1", title="top-1 per seed")
    def _top1(engine, claims):
        runs = db.runs_by_key(engine)
        if not runs:
            return None
        df = pd.DataFrame([{"seed": r.seed, "top1": r.metric_dict()["top1"]}
                           for r in runs.values()])
        return alt.Chart(df).mark_point().encode(x="seed:O", y="top1:Q")

    yield charts.CHARTS["demo/top1"]
    charts.CHARTS.clear()
    charts.CHARTS.update(before)


def _result(seed: int) -> dict:
    spec = {"run_key": f"k{seed}", "claim_id": "demo/x", "tier": "smoke", "arm": "treatment",
            "seed": seed, "task": "train_eval", "model": "test_cnn", "dataset": "synthetic"}
    return {"spec": spec, "status": "ok", "metrics": {"top1": 50.0 + seed}, "provenance": {}}


def test_render_writes_a_png_and_skips_a_chart_without_data(registered, tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    assert charts.render(registered, engine, [], tmp_path / "figs") is None  # empty DB
    db.record_runs(engine, [_result(0), _result(1)])
    path = charts.render(registered, engine, [], tmp_path / "figs")
    assert path.name == "demo__top1.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_duplicate_chart_name_is_refused(registered):
    with pytest.raises(ValueError, match="registered twice"):
        charts.chart("demo/top1", title="again")(lambda e, c: None)


def test_cli_lists_and_refuses_a_bad_db(registered, capsys, tmp_path):
    assert charts.main(["--list", "--only", "demo/*"]) == 0
    assert "demo/top1" in capsys.readouterr().out
    assert charts.main(["--db", str(tmp_path / "missing" / "r.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
