"""Every page of the Streamlit dashboard through Streamlit's AppTest, on the fixture DB
(tests/dashboard_data.py), a real Optuna storage, an empty and a missing database. The app
reads its sources from $POOLREPRO_DB / $POOLREPRO_TASKS / $POOLREPRO_OPTUNA."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import altair as alt
import pandas as pd
import pytest
from dashboard_data import build, build_optuna
from streamlit.testing.v1 import AppTest

from dashboard import charts
from suite import db

ENTRY = str(Path(__file__).resolve().parent.parent / "dashboard" / "streamlit_app.py")


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    d = tmp_path_factory.mktemp("dashapp")
    url, tasks = build(d)
    optuna_url = build_optuna(d / "optuna.db")
    mp = pytest.MonkeyPatch()
    mp.setenv("POOLREPRO_DB", url)
    mp.setenv("POOLREPRO_TASKS", str(tasks))
    mp.setenv("POOLREPRO_OPTUNA", optuna_url)
    yield {"dir": d, "url": url, "tasks": tasks, "optuna": optuna_url,
           "digest": hashlib.sha256((d / "results.db").read_bytes()).hexdigest()}
    mp.undo()


@pytest.fixture
def demo_chart():
    """A chart registered for the fixture's paper, as paper helpers register theirs."""
    before = dict(charts.load_all())  # every module imported first: teardown restores them

    @charts.chart("demo/top1-per-seed", title="top-1 of every ok run")
    def _top1(engine, claims):
        runs = [r for r in db.runs_by_key(engine).values() if "top1" in r.metric_dict()]
        df = pd.DataFrame([{"seed": r.seed, "top1": r.metric_dict()["top1"],
                            "claim": r.claim_id} for r in runs])
        return alt.Chart(df).mark_point().encode(x="seed:O", y="top1:Q", color="claim:N")

    @charts.chart("demo/empty", title="a chart without data yet")
    def _empty(engine, claims):
        return None

    @charts.chart("demo/broken", title="a chart whose builder fails")
    def _broken(engine, claims):
        raise ValueError("builder bug")

    yield
    charts.CHARTS.clear()
    charts.CHARTS.update(before)


def page(name: str, **query) -> AppTest:
    at = AppTest.from_file(ENTRY, default_timeout=60)
    at.query_params.update(query)
    if name != "overview":  # the pages are files named after their URL path
        at.switch_page(f"views/{name}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def html(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def charts_on(at: AppTest) -> list:
    return at.get("vega_lite_chart")


def test_overview_lists_every_claim_with_its_verdict(fx):
    at = page("overview")
    assert at.title[0].value == "Claims and verdicts"
    h = html(at)
    for cid, verdict in [("demo/delta", "reproduced"), ("demo/error", "error"),
                         ("demo/skipped", "skipped"), ("demo/pending", "pending"),
                         ("demo/kernel", "inconclusive"),
                         ("allconv/params/model_a", "not reproduced")]:
        assert f">{cid}</a>" in h, cid
        assert f">{verdict}</span>" in h
    tier = next(m for m in at.multiselect if m.label == "Tier")
    assert tier.value == ["mini"]  # the tier with the most ok runs
    assert len(charts_on(at)) == 1  # claims per paper by verdict


def test_overview_filters(fx):
    at = page("overview")
    next(m for m in at.multiselect if m.label == "Verdict").set_value(["error"]).run()
    h = html(at)
    assert ">demo/error</a>" in h and ">demo/delta</a>" not in h
    at.text_input[0].set_value("nobody ran").run()
    assert "No claim matches" in at.info[0].value


def test_claim_page_of_a_delta_claim(fx):
    at = page("claim", claim="demo/delta", tier="mini")
    assert at.title[0].value == "SoftPool beats max pooling by a point"
    assert at.selectbox[0].value == "demo/delta"
    h = html(at)
    assert ">reproduced</span>" in h and "Δ +3.167" in h
    # both arms, the paired difference, the training curves
    assert len(charts_on(at)) == 3
    frames = at.dataframe
    recipe = next(f.value for f in frames if "field" in f.value.columns)
    assert set(recipe.columns) == {"field", "treatment", "baseline"}
    runs = next(f.value for f in frames if "mlflow" in f.value.columns)
    assert len(runs) == 6 and set(runs["mlflow"].str.contains("/#/runs/mlflow")) == {True}
    assert any("sweep trials" in e.label for e in at.expander)


def test_claim_page_shows_artifacts_and_earlier_runs(fx):
    at = page("claim", claim="demo/abs-ok", tier="mini")
    assert len(at.get("image")) == 1  # the PNG artifact
    assert any("earlier run(s)" in e.label for e in at.expander)
    h = html(at)
    assert ">reproduced</span>" in h


def test_claim_page_of_a_failed_claim_explains_it(fx):
    at = page("claim", claim="demo/error", tier="mini")
    h = html(at)
    assert ">error</span>" in h and "NaN loss" in h
    assert any("No ok runs" in i.value for i in at.info)


def test_claim_page_tier_switch(fx):
    at = page("claim", claim="demo/abs-ok")
    tier = at.radio[0]
    assert tier.options == ["mini (3 ok)", "full (0 ok)"] and tier.value == "mini"
    tier.set_value("full").run()
    assert at.query_params["tier"] in ("full", ["full"])
    assert ">pending</span>" in html(at) and "no runs yet" in html(at)


def test_papers_page_puts_ours_beside_the_published_table(fx):
    at = page("papers", paper="allconv")
    h = html(at)
    assert "ours 0.8392 (n=1, params_m)" in h and ">not reproduced</span>" in h
    assert any(s.value == "Table 3" for s in at.subheader)
    assert len(charts_on(at)) == 1  # ours vs published


def test_analysis_page_renders_registered_charts_and_images(fx, demo_chart):
    at = page("analysis", paper="demo")
    titles = [s.value for s in at.subheader]
    assert "top-1 of every ok run" in titles and "Images from runs" in titles
    assert len(charts_on(at)) == 1
    assert any("no data for this chart yet" in c.value for c in at.caption)
    assert "builder bug" in at.code[0].value and at.error
    assert len(at.get("image")) == 1


def test_sweeps_page_reads_the_optuna_storage(fx):
    at = page("sweeps")
    assert not at.info
    studies_table = at.dataframe[0].value
    assert set(studies_table["arm"]) == {"treatment", "baseline"}
    assert len(charts_on(at)) == 3  # best per arm, trials over time, importances


def test_sweeps_page_without_storage(fx, monkeypatch, tmp_path):
    monkeypatch.setenv("POOLREPRO_OPTUNA", f"sqlite:///{tmp_path / 'none.db'}")
    at = page("sweeps")
    assert "No sweeps yet" in at.info[0].value
    assert not (tmp_path / "none.db").exists()


def test_cost_page(fx):
    at = page("cost")
    labels = {m.label: m.value for m in at.metric}
    assert labels["Runs"] == "20"
    assert labels["With a throughput measurement"] == "1"
    assert len(charts_on(at)) >= 4


def test_kernels_page(fx):
    at = page("kernels")
    assert at.selectbox[0].value == "fwdbwd_ratio_vs_avg"
    assert len(charts_on(at)) == 1
    rows = at.dataframe[-1].value
    assert set(rows["pool"]) == {"softpool2d", "avg2d"}  # the run's `rows` artifact


def test_runs_page_search(fx):
    at = page("runs")
    assert "20 of 20 runs" in at.caption[0].value
    at.text_input[0].set_value("nan loss").run()
    assert "3 of 20 runs" in at.caption[0].value
    shown = at.dataframe[0].value
    assert set(shown["status"]) == {"error"} and shown["message"].str.contains("NaN").all()


def test_pages_leave_the_database_untouched(fx):
    """Runs after the tests above rendered every page on the fixture DB."""
    page("overview")
    page("claim", claim="demo/delta")
    assert hashlib.sha256((fx["dir"] / "results.db").read_bytes()).hexdigest() == fx["digest"]


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_missing_or_empty_database_shows_how_to_produce_results(fx, monkeypatch, tmp_path,
                                                                 kind):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    if kind == "empty":
        db.connect(url).dispose()
    monkeypatch.setenv("POOLREPRO_DB", url)
    for name in ("overview", "claim", "runs"):
        at = page(name)
        assert ("No results database yet" if kind == "missing" else "holds no runs yet") in \
            at.info[0].value
        assert "python -m suite run" in html(at)
    assert kind == "empty" or not (tmp_path / "r.db").exists()
    at = page("papers")  # published numbers need no database
    assert "without ours" in at.info[0].value


def test_a_broken_database_url_is_an_error_not_a_traceback(fx, monkeypatch):
    monkeypatch.setenv("POOLREPRO_DB", "nosuchdialect://x/y")
    at = page("overview")
    assert "cannot be read" in at.error[0].value


def test_no_page_imports_torch(fx):
    """Render every page in a fresh interpreter and check torch never got imported."""
    code = f"""
import sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file({ENTRY!r}, default_timeout=60)
at.run()
import dashboard.bench  # noqa: F401  (the benchmark imports no torch either)
for p in ["claim", "papers", "analysis", "sweeps", "cost", "kernels", "runs"]:
    at.switch_page(f"views/{{p}}.py").run()
    assert not at.exception, (p, [e.value for e in at.exception])
torch = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
assert not torch, torch
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=300, cwd=str(Path(ENTRY).parent.parent))
    assert r.returncode == 0, r.stderr[-3000:]


@pytest.mark.parametrize("kind", ["missing", "invalid"])
def test_without_a_valid_tasks_file_claims_come_from_the_database(fx, monkeypatch, tmp_path,
                                                                  kind):
    tasks = tmp_path / "tasks.toml"
    if kind == "invalid":
        tasks.write_text("[[claim]]\nid = 3\n")
    monkeypatch.setenv("POOLREPRO_TASKS", str(tasks))
    at = page("overview")
    assert ">demo/delta</a>" in html(at) and ">reproduced</span>" in html(at)
    note = " ".join(c.value for c in at.sidebar.caption)
    assert "claims come from the database" in note
