"""The dashboard's pure query functions on a fixture results DB written by the suite's writer
(tests/dashboard_data.py: ok, error, skipped, pending, delta, kernel and parameter-count runs,
series and artifacts), a real Optuna storage, and the charts and HTML built from them."""

from __future__ import annotations

import hashlib
import math

import pandas as pd
import pytest
from dashboard_data import VERDICTS, build, build_optuna, png
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from dashboard import markup, plots, settings, studies
from dashboard import queries as q
from dashboard.queries.runs import _compatible_model
from suite import db
from suite.claims import load_claims
from suite.report import claim_rows


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    d = tmp_path_factory.mktemp("dash")
    url, tasks = build(d)
    digest = hashlib.sha256((d / "results.db").read_bytes()).hexdigest()
    engine = q.open_readonly(url)
    _, claims = load_claims(tasks)
    runs = q.load_runs(engine, q.judged_metrics(claims))
    rows = q.verdicts(claims, runs, ["mini"])
    yield {"dir": d, "url": url, "engine": engine, "claims": claims, "rows": rows,
           "by_id": {c.id: c for c in claims}, "digest": digest}
    engine.dispose()


def row(fx, cid, tier="mini"):
    return q.find_row(fx["rows"], cid, tier)


EXPECTED = VERDICTS


# --------------------------------------------------------------------------- opening
def test_missing_sqlite_file_is_no_database(tmp_path):
    with pytest.raises(q.NoDatabase, match="no results database"):
        q.open_readonly(f"sqlite:///{tmp_path / 'absent.db'}")
    assert not (tmp_path / "absent.db").exists()  # nothing was created


def test_engine_is_read_only_and_the_file_is_untouched(fx):
    with pytest.raises(OperationalError, match="readonly"), fx["engine"].begin() as conn:
        conn.execute(text("DELETE FROM runs"))
    q.overview_frame(q.verdicts(fx["claims"], q.load_runs(fx["engine"], ["top1"]), ["mini"]))
    q.runs_frame(fx["engine"], fx["claims"])
    digest = hashlib.sha256((fx["dir"] / "results.db").read_bytes()).hexdigest()
    assert digest == fx["digest"]


def test_db_status_counts_and_fingerprint(fx, tmp_path):
    s = q.db_status(fx["engine"])
    assert s.tables == q.TABLES and s.n_runs == 20 and not s.empty and s.revision
    empty_url = f"sqlite:///{tmp_path / 'empty.db'}"
    db.connect(empty_url).dispose()  # schema, no runs
    e = q.open_readonly(empty_url)
    assert q.db_status(e).empty
    assert q.db_status(e).fingerprint != s.fingerprint


# --------------------------------------------------------------------------- verdicts
def test_verdicts_cover_every_status(fx):
    assert {r.claim.id: r.verdict.status for r in fx["rows"]} == EXPECTED


def test_verdicts_match_the_cli_report(fx):
    """Light runs judge exactly as `suite report` does over full ORM rows."""
    full = claim_rows(db.connect(fx["url"], readonly=True), fx["claims"], "mini")
    assert {r.claim.id: (r.verdict.status, r.verdict.message) for r in full} == {
        r.claim.id: (r.verdict.status, r.verdict.message) for r in fx["rows"]}


def test_claims_from_db_rebuilds_the_definitions(fx):
    _, stored = q.claims_from_db(fx["engine"])
    by = {c.id: c for c in stored}
    assert set(by) == set(fx["by_id"])
    for cid, c in fx["by_id"].items():
        assert by[cid].tiers == c.tiers and by[cid].published == c.published
    rows = q.verdicts(stored, q.load_runs(fx["engine"], q.judged_metrics(stored)), ["mini"])
    assert {r.claim.id: r.verdict.status for r in rows} == EXPECTED


def test_tiers_with_runs(fx):
    assert q.tiers_with_runs(fx["engine"]) == ["mini"]


# --------------------------------------------------------------------------- overview
def test_overview_frame_rows(fx):
    df = q.overview_frame(fx["rows"]).set_index("claim")
    assert list(df.index[:1]) == ["allconv/params/model_a"]  # sorted by paper, then id
    ok = df.loc["demo/abs-ok"]
    assert (ok.n, ok.planned, ok.verdict) == (3, 3, "reproduced")
    assert ok.ours.startswith("42.23 ± ") and ok.ours.endswith(" %")
    assert ok.published == "30 %" and ok.expected == "≥ 30 %"
    d = df.loc["demo/delta"]
    assert d.ours.startswith("Δ +3.167") and d.kind == "delta"
    assert math.isclose(d["mean"], 19 / 6)
    assert df.loc["demo/pending"].n == 0 and df.loc["demo/pending"].ours == "–"
    assert df.loc["demo/error"].message.startswith("error: NaN loss")


def test_filters_and_counts(fx):
    df = q.overview_frame(fx["rows"])
    assert list(q.filter_overview(df, verdicts=["error"])["claim"]) == ["demo/error"]
    assert set(q.filter_overview(df, papers=["allconv"])["claim"]) == {"allconv/params/model_a"}
    assert list(q.filter_overview(df, tags=["pooling", "bench"])["claim"]) == [
        "demo/delta", "demo/kernel"]
    assert list(q.filter_overview(df, search="SOFTPOOL beats")["claim"]) == ["demo/delta"]
    assert q.filter_overview(df, tiers=["full"]).empty
    c = q.verdict_counts(df)
    assert c[c.paper == "demo"].set_index("verdict")["claims"].to_dict() == {
        "reproduced": 2, "inconclusive": 1, "pending": 1, "error": 1, "skipped": 1}


# --------------------------------------------------------------------------- one claim
def test_delta_seed_points_and_intervals(fx):
    r = row(fx, "demo/delta")
    pts = q.seed_points(r)
    diff = pts[pts.arm == q.DIFF_ARM].set_index("seed")["value"].to_dict()
    assert diff == pytest.approx({0: 3.0, 1: 3.5, 2: 3.0})
    iv = q.interval_frame(r).set_index("arm")
    assert set(iv.index) == {"treatment", "baseline", q.DIFF_ARM}
    assert iv.loc["baseline", "mean"] == pytest.approx(47.8333, abs=1e-3)
    lo, hi = q.accepted_region(r.claim.form("mini").expect)
    assert (lo, hi) == (1.0, math.inf) and lo < iv.loc[q.DIFF_ARM, "lo"]


def test_accepted_region_of_each_direction(fx):
    e = fx["by_id"]["allconv/params/model_a"].form("mini").expect
    assert q.accepted_region(e) == pytest.approx((0.85, 0.95))
    k = fx["by_id"]["demo/kernel"].form("mini").expect
    assert q.accepted_region(k) == (-math.inf, 1.3)


def test_claim_runs_separate_the_current_recipe_from_earlier_runs(fx):
    runs = q.claim_runs(fx["engine"], fx["by_id"]["demo/abs-ok"], "mini")
    assert len(runs) == 4 and runs["current"].sum() == 3 and not runs["trial"].any()
    assert runs.loc[~runs["current"], "run_key"].item() == "stale0000000000000000"
    cur = runs[runs["current"]]
    assert cur["device_hours"].sum() == pytest.approx((10 + 11 + 12) / 3600)
    assert set(cur["mlflow_run_id"].str[:6]) == {"mlflow"}
    assert cur["git_sha"].iloc[0].startswith("0123456789")
    assert cur["provenance"].iloc[0]["device_name"] == "CPU test"
    delta = q.claim_runs(fx["engine"], fx["by_id"]["demo/delta"], "mini")
    arms = delta[~delta["trial"]]
    assert sorted(arms["arm"]) == ["baseline"] * 3 + ["treatment"] * 3 and arms["current"].all()
    assert delta.loc[delta["trial"], "run_key"].item() == "trial000000000000000"


def test_series_metrics_and_artifacts(fx):
    runs = q.claim_runs(fx["engine"], fx["by_id"]["demo/abs-ok"], "mini")
    ids = list(runs.loc[runs["current"], "id"])
    s = q.series_frame(fx["engine"], ids)
    assert set(s["name"]) == {"test_top1", "train_loss"} and len(s) == 18
    m = q.run_metrics(fx["engine"], ids)
    assert set(m["name"]) == {"top1", "top1_err", "images_per_s"}
    arts = q.artifact_index(fx["engine"], ids)
    assert list(arts["name"]) == ["per_layer", "saliency"]
    assert list(q.artifact_index(fx["engine"], None, "image/")["name"]) == ["saliency"]
    media, data = q.artifact(fx["engine"], int(arts["run_id"].iloc[0]), "saliency")
    assert media == "image/png" and data == png()
    assert q.artifact(fx["engine"], 10**6, "saliency") is None


def test_recipe_table_shows_both_arms(fx):
    t = q.recipe_table(fx["by_id"]["demo/delta"], "mini").set_index("field")
    assert t.loc["model_args", "treatment"] == '{"pool": "softpool"}'
    assert t.loc["model_args", "baseline"] == '{"pool": "max"}'
    assert t.loc["seeds", "baseline"] == "0, 1, 2"
    assert q.recipe(fx["by_id"]["demo/pending"], "full")["treatment"]["params"] == {
        "epochs": 7}


def test_claim_history(fx):
    h = q.claim_history(fx["engine"], "demo/delta")
    assert len(h) == 1 and len(h["definition_hash"].iloc[0]) == 16


# --------------------------------------------------------------------------- runs, cost
def test_runs_frame_and_search(fx):
    runs = q.runs_frame(fx["engine"], fx["claims"])
    assert len(runs) == 20 and set(runs["status"]) == {"ok", "error", "skipped"}
    assert set(q.filter_runs(runs, search="nan loss")["claim_id"]) == {"demo/error"}
    assert len(q.filter_runs(runs, statuses=["skipped"])) == 3
    assert set(q.filter_runs(runs, papers=["allconv"])["claim_id"]) == {"allconv/params/model_a"}
    assert q.filter_runs(runs, tiers=["smoke"]).empty


def test_run_detail(fx):
    runs = q.runs_frame(fx["engine"], fx["claims"])
    rid = int(runs.loc[runs["claim_id"] == "allconv/params/model_a", "id"].item())
    d = q.run_detail(fx["engine"], rid)
    assert d["config"]["model"] == "allcnn_model_a" and d["provenance"]["python"] == "3.11.7"
    assert q.run_detail(fx["engine"], 10**6) == {}


def test_cost_by_paper(fx):
    runs = q.runs_frame(fx["engine"], fx["claims"])
    c = q.cost_by(runs, ["paper"]).set_index("paper")
    assert c.loc["allconv", "device_s"] == 10.0 and c.loc["allconv", "runs"] == 1
    assert c["device_s"].sum() == pytest.approx(runs["wall_s"].sum())
    assert c.loc["demo", "device_h"] == pytest.approx(c.loc["demo", "device_s"] / 3600)


def test_full_estimates_from_a_measured_throughput(fx):
    est = q.full_estimates(fx["engine"], fx["claims"]).set_index("claim")
    ok = est.loc["demo/abs-ok"]
    # 3 seeds × 10 epochs × 1000 images at 100 images/s (the mini runs' throughput)
    assert ok.train_images == 10_000 and ok.images_per_s == 100.0
    assert ok.est_device_h == pytest.approx(3 * 10_000 / 100 / 3600)
    assert "images_per_s of run" in ok.throughput_from
    assert math.isnan(est.loc["demo/pending", "est_device_h"])  # no throughput: no estimate
    assert "allconv/params/model_a" not in est.index  # nothing trained


def test_flops_match_a_model_with_compatible_args():
    form = {"model": "m", "model_args": {"pool": "max"}}
    assert _compatible_model({"model": "m", "model_args": {"num_classes": 10}}, form)
    assert not _compatible_model({"model": "m", "model_args": {"pool": "avg"}}, form)
    assert not _compatible_model({"model": "n", "model_args": {}}, form)


# --------------------------------------------------------------------------- kernels
def test_kernel_frame_splits_metric_names(fx):
    k = q.kernel_frame(fx["engine"])
    assert set(k["pool"]) == {"softpool2d", "avg2d", "max2d"} and set(k["shape"]) == {"cifar"}
    assert set(k["family"]) == {"softpool", "avg", "max"}
    assert "cuda_copy_gbps" not in set(k["stat"])
    s = q.kernel_summary(k, "fwdbwd_ratio_vs_avg").set_index("pool")
    assert s.loc["softpool2d", "mean"] == pytest.approx(1.0)
    assert s.loc["softpool2d", "n"] == 2 and s.loc["softpool2d", "max"] == 1.05
    assert q.kernel_summary(k, "nothing").empty


# --------------------------------------------------------------------------- papers
def test_paper_cells_put_ours_beside_the_published_row(fx):
    cells = q.cells_frame(q.paper_cells("allconv", fx["claims"], fx["rows"], "mini"))
    assert len(cells) == 29  # every allconv row of registry/published.toml
    c = cells.set_index("ref").loc["allconv/table-3/cifar-10/model-a/params"]
    assert (c.claim, c.arm, c.our_metric, c.verdict) == (
        "allconv/params/model_a", "treatment", "params_m", "not reproduced")
    assert c.ours == pytest.approx(0.8392) and c.published == 0.9 and c.n == 1
    assert (cells["claim"] == "").sum() == 28
    assert q.unmapped_claims("demo", fx["claims"])[0].id == "demo/abs-ok"


def test_delta_refs_map_treatment_first_then_baseline(fx):
    from dataclasses import replace

    c = replace(fx["by_id"]["demo/delta"], published={"refs": ["a/x", "a/y"]})
    assert {r: a for r, v in q.ref_arms([c]).items() for _, a in v} == {
        "a/x": "treatment", "a/y": "baseline"}


# --------------------------------------------------------------------------- optuna
def test_studies_from_a_real_optuna_storage(tmp_path):
    url = build_optuna(tmp_path / "optuna.db")
    storage = studies.open_storage(url)
    table = studies.list_studies(storage).set_index("arm")
    assert list(table["claim"]) == ["demo/delta", "demo/delta"]
    assert (table["trials"] == 6).all() and (table["complete"] == 6).all()
    assert table.loc["treatment", "best_value"] > table.loc["baseline", "best_value"] - 5
    assert set(table.loc["treatment", "best_params"]) == {"lr", "width"}
    trials = studies.trials_frame(storage, "demo/delta:treatment")
    assert len(trials) == 6 and set(trials["state"]) == {"complete"}
    imp = studies.importances(storage, "demo/delta:treatment")
    assert set(imp["param"]) == {"lr", "width"} and imp["importance"].sum() == pytest.approx(1)


def test_missing_optuna_storage(tmp_path):
    with pytest.raises(studies.NoStorage):
        studies.open_storage(f"sqlite:///{tmp_path / 'none.db'}")
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("name,attrs,want", [
    ("x", {"claim_id": "p/c", "arm": "baseline"}, ("p/c", "baseline")),
    ("p/c:treatment", {}, ("p/c", "treatment")),
    ("p/c/baseline", {}, ("p/c", "baseline")),
    ("lr-search", {}, ("lr-search", "-")),
])
def test_claim_and_arm_of_a_study(name, attrs, want):
    assert studies.claim_and_arm(name, attrs) == want


# --------------------------------------------------------------------------- settings
def test_settings_flags_win_over_environment():
    env = {"POOLREPRO_DB": "sqlite:///env.db", "POOLREPRO_OPTUNA": "o.db"}
    s = settings.from_args(["--db", "out/r.db", "--unknown", "x"], env)
    assert s.db == "sqlite:///out/r.db" and s.optuna == "sqlite:///o.db"
    assert settings.from_args([], env).db == "sqlite:///env.db"
    d = settings.from_args([], {})
    assert (d.db, d.tasks, d.optuna) == ("sqlite:///results.db", "tasks.toml",
                                         "sqlite:///optuna.db")


# --------------------------------------------------------------------------- charts, HTML
def test_charts_build_valid_vega_lite(fx):
    r = row(fx, "demo/delta")
    pts, iv = q.seed_points(r), q.interval_frame(r)
    specs = [
        plots.forest(pts, iv, x_title="top1", region=(1.0, math.inf), refs=[(2.0, "pub")]),
        plots.forest(pts.iloc[:0], iv.iloc[:0], x_title="empty"),
        plots.verdict_bar(q.verdict_counts(q.overview_frame(fx["rows"]))),
        plots.series_chart(pd.DataFrame({"name": ["a"] * 2, "step": [0, 1], "value": [1, 2],
                                         "arm": ["treatment"] * 2, "seed": [0, 0]})),
        plots.kernel_chart(q.kernel_summary(q.kernel_frame(fx["engine"]),
                                            "fwdbwd_ratio_vs_avg"), "fwdbwd_ratio_vs_avg"),
        plots.published_scatter(q.cells_frame(q.paper_cells("allconv", fx["claims"],
                                                            fx["rows"], "mini"))),
        plots.bar(q.cost_by(q.runs_frame(fx["engine"], fx["claims"]), ["paper"]),
                  y="paper", x="device_s"),
    ]
    for c in specs:
        d = c.to_dict()  # validates against the Vega-Lite schema
        assert "$schema" in d


def test_forest_shows_the_region_and_the_published_rule(fx):
    r = row(fx, "demo/abs-ok")
    d = plots.forest(q.seed_points(r), q.interval_frame(r), x_title="top1",
                     region=(30.0, math.inf), refs=[(30.0, "published 30 %")]).to_dict()
    marks = [layer["mark"]["type"] if isinstance(layer["mark"], dict) else layer["mark"]
             for layer in d["layer"]]
    assert marks.count("rect") == 1 and marks.count("rule") == 2 and "circle" in marks
    data = [v for vs in d["datasets"].values() for v in vs]
    assert {"value": 30.0, "label": "published 30 %"} in data


def test_overview_html_links_badges_and_escapes(fx):
    df = q.overview_frame(fx["rows"])
    df.loc[0, "title"] = "<script>x</script>"
    h = markup.overview_table(df)
    assert 'href="claim?claim=demo%2Fdelta&amp;tier=mini" target="_self"' in h
    assert "<script>" not in h and "&lt;script&gt;" in h
    assert h.count('class="pr-badge') == len(df)
    assert "background:#1a7f37" in markup.badge("reproduced")


def test_paper_table_has_one_cell_per_published_number(fx):
    cells = q.cells_frame(q.paper_cells("allconv", fx["claims"], fx["rows"], "mini"))
    t3 = cells[cells["table"] == "Table 3"]
    h = markup.paper_table(t3)
    assert h.count("<tr>") == 1 + t3["model"].nunique()
    assert "ours 0.8392 (n=1, params_m)" in h
