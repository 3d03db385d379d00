"""The results DB on real SQLite files: Alembic schema, one transaction per run, retries."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from sqlalchemy import func, select, text

from suite import db
from suite.errors import DatabaseError
from suite.specs import MAX_ARTIFACT_BYTES, RunSpec, blob


def spec(seed: int = 0, **kw) -> RunSpec:
    base = dict(claim_id="demo/a", tier="smoke", arm="treatment", seed=seed, task="train_eval",
                model="test_cnn", dataset="synthetic", model_args={"width": 4},
                dataset_args={"size": 16}, params={"epochs": 2}, claim_hash="h1")
    base.update(kw)
    return RunSpec(**base)


def result(seed: int = 0, status: str = "ok", metrics=None, series=None, message: str = "",
           **kw) -> dict:
    r = {
        "spec": spec(seed).to_dict(), "status": status, "message": message,
        "metrics": {"top1": 50.0 + seed, "test_loss": 1.25} if metrics is None else metrics,
        "series": {"train_loss": [2.0, 1.5], "test_top1": [40.0, 50.0]}
        if series is None else series,
        "provenance": {"git_sha": "abc123", "git_dirty": True, "python": "3.11.7",
                       "torch": "2.x", "device_name": "cpu", "loader": "tensor"},
        "started_at": "2025-01-02T03:04:05", "finished_at": "2025-01-02T03:04:09",
        "wall_s": 4.0,
    }
    r.update(kw)
    return r


@pytest.fixture
def engine(db_url):
    e = db.connect(db_url)
    yield e
    e.dispose()


def count(engine, model) -> int:
    with db.session(engine) as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def counts(engine) -> tuple[int, int, int]:
    return count(engine, db.Run), count(engine, db.Metric), count(engine, db.SeriesPoint)


# -- schema ---------------------------------------------------------------------------------
def test_fresh_sqlite_gets_the_schema_via_alembic(tmp_path):
    path = tmp_path / "fresh.db"
    e = db.connect(str(path))  # a bare path means SQLite
    e.dispose()
    con = sqlite3.connect(path)
    tables = {r[0] for r in con.execute("select name from sqlite_master where type='table'")}
    assert tables >= {"claims", "runs", "metrics", "series", "artifacts", "alembic_version"}
    head = db.head_revision()
    assert head >= "0002"
    assert con.execute("select version_num from alembic_version").fetchall() == [(head,)]
    cols = {r[1] for r in con.execute("pragma table_info(runs)")}
    assert {"run_key", "status", "attempts", "git_sha", "provenance", "mlflow_run_id"} <= cols
    con.close()


def test_connect_twice_is_idempotent(db_url):
    db.connect(db_url).dispose()
    e = db.connect(db_url)
    with e.connect() as c:
        assert c.execute(text("select count(*) from alembic_version")).scalar() == 1
    e.dispose()


def test_wal_journal_mode_and_foreign_keys(engine):
    with engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar().lower() == "wal"
        assert c.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_newer_schema_is_refused(db_url, tmp_path):
    db.connect(db_url).dispose()
    con = sqlite3.connect(tmp_path / "results.db")
    con.execute("update alembic_version set version_num = '9999'")
    con.commit()
    con.close()
    with pytest.raises(DatabaseError, match="newer poolrepro"):
        db.connect(db_url)


# -- URLs -------------------------------------------------------------------------------------
def test_resolve_url(monkeypatch):
    monkeypatch.delenv("POOLREPRO_DB", raising=False)
    assert db.resolve_url(None) == "sqlite:///results.db"
    assert db.resolve_url("out/r.db") == "sqlite:///out/r.db"
    assert db.resolve_url("/abs/r.db") == "sqlite:////abs/r.db"
    assert db.resolve_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.setenv("POOLREPRO_DB", "/env/r.db")
    assert db.resolve_url(None) == "sqlite:////env/r.db"
    assert db.resolve_url("sqlite:///x.db") == "sqlite:///x.db"  # the flag wins


@pytest.mark.parametrize("url", ["not a url://x", "://nothing"])
def test_garbage_url_names_the_fix(url):
    with pytest.raises(DatabaseError) as ei:
        db.resolve_url(url)
    msg = str(ei.value)
    assert repr(url) in msg and "sqlite:///results.db" in msg and "--db" in msg
    assert "POOLREPRO_DB" in msg


def test_unknown_driver_is_a_database_error():
    with pytest.raises(DatabaseError, match="cannot open database"):
        db.connect("postgresql+nosuchdriver://u@localhost/db")


def test_missing_directory_is_a_database_error(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        db.connect(str(tmp_path / "no" / "such" / "dir" / "r.db"))
    assert not (tmp_path / "no").exists()


def test_readonly_does_not_create(tmp_path):
    path = tmp_path / "ro.db"
    e = db.connect(str(path), readonly=True)
    with pytest.raises(Exception), e.connect() as c:  # noqa: B017 - sqlite3 "unable to open"
        c.execute(text("select 1"))
    e.dispose()
    assert not path.exists()


# -- writing runs -------------------------------------------------------------------------------
def test_record_run_writes_run_metrics_and_series(engine):
    row = db.record_run(engine, result())
    assert row.run_key == spec().run_key
    assert counts(engine) == (1, 2, 4)
    r = db.runs_by_key(engine)[spec().run_key]
    assert (r.status, r.attempts, r.seed, r.tier, r.arm) == ("ok", 1, 0, "smoke", "treatment")
    assert (r.git_sha, r.git_dirty, r.python_version, r.device_name) == (
        "abc123", True, "3.11.7", "cpu")
    assert r.claim_hash == "h1" and r.config["run_key"] == r.run_key
    assert r.metric_dict() == {"top1": 50.0, "test_loss": 1.25}
    assert r.provenance["loader"] == "tensor"
    assert r.wall_s == 4.0 and r.started_at.isoformat() == "2025-01-02T03:04:05"


def test_non_finite_metrics_and_points_are_dropped(engine):
    m = {"top1": 50.0, "nan": math.nan, "inf": math.inf, "neg": -math.inf, "text": "x"}
    db.record_run(engine, result(metrics=m, series={"loss": [1.0, math.nan, 0.5]},
                                 wall_s=math.nan))
    r = db.runs_by_key(engine)[spec().run_key]
    assert r.metric_dict() == {"top1": 50.0}
    assert sorted((p.step, p.value) for p in r.series) == [(0, 1.0), (2, 0.5)]
    assert r.wall_s is None


def test_series_gap_keeps_epoch_alignment_in_export(engine):
    db.record_run(engine, result(series={"loss": [1.0, math.nan, 0.5]}))
    out = db.run_to_result(db.runs_by_key(engine)[spec().run_key])
    assert len(out["series"]["loss"]) == 3 and out["series"]["loss"][2] == 0.5


def test_error_row_is_replaced_by_a_later_ok_row(engine):
    db.record_run(engine, result(status="error", metrics={}, series={}, message="diverged"))
    r = db.runs_by_key(engine)[spec().run_key]
    assert (r.status, r.attempts, r.message) == ("error", 1, "diverged")
    db.record_run(engine, result())
    assert counts(engine) == (1, 2, 4)
    r = db.runs_by_key(engine)[spec().run_key]
    assert (r.status, r.attempts, r.message) == ("ok", 2, "")


def test_retries_count_attempts(engine):
    for _ in range(3):
        db.record_run(engine, result(status="timeout", metrics={}, series={}))
    db.record_run(engine, result())
    assert db.runs_by_key(engine)[spec().run_key].attempts == 4
    assert count(engine, db.Run) == 1


def test_ok_row_is_not_overwritten_by_a_later_error(engine):
    db.record_run(engine, result())
    back = db.record_run(engine, result(status="error", metrics={}, series={}, message="boom"))
    assert back.status == "ok"
    r = db.runs_by_key(engine)[spec().run_key]
    assert (r.status, r.attempts, r.message) == ("ok", 1, "")
    assert counts(engine) == (1, 2, 4)


def test_forced_ok_rerun_replaces_metrics(engine):
    db.record_run(engine, result())
    db.record_run(engine, result(metrics={"top1": 77.0}, series={}))
    r = db.runs_by_key(engine)[spec().run_key]
    assert r.metric_dict() == {"top1": 77.0} and r.attempts == 2
    assert counts(engine) == (1, 1, 0)  # old metrics and series went with the old row


def test_record_runs_is_all_or_nothing(engine):
    broken = result(seed=1)
    del broken["spec"]["tier"]
    with pytest.raises(KeyError):
        db.record_runs(engine, [result(seed=0), broken, result(seed=2)])
    assert counts(engine) == (0, 0, 0)
    assert db.record_runs(engine, [result(seed=0), result(seed=2)]) == 2
    assert counts(engine) == (2, 4, 8)


def test_record_runs_rollback_keeps_existing_rows(engine):
    db.record_run(engine, result(seed=0, status="error", metrics={}, series={}))
    broken = result(seed=1)
    del broken["spec"]["run_key"]
    with pytest.raises(KeyError):
        db.record_runs(engine, [result(seed=0), broken])
    r = db.runs_by_key(engine)[spec(0).run_key]
    assert r.status == "error" and count(engine, db.Run) == 1


def test_record_claims_keeps_history(engine):
    from suite.claims import parse_claims

    def claims(value):
        raw = {"papers": {"demo": {"title": "d"}},
               "claim": [{"id": "demo/a", "paper": "demo", "source": "s", "task": "train_eval",
                          "model": "test_cnn", "dataset": "synthetic",
                          "expect": {"kind": "absolute", "metric": "top1", "value": value}}]}
        return parse_claims(raw)[1]

    assert db.record_claims(engine, claims(50.0)) == 1
    assert db.record_claims(engine, claims(50.0)) == 0
    assert db.record_claims(engine, claims(51.0)) == 1
    with db.session(engine) as s:
        rows = s.execute(select(db.ClaimDef)).scalars().all()
        assert len(rows) == 2 and {r.claim_id for r in rows} == {"demo/a"}
        assert {r.definition["tiers"]["full"]["expect"]["value"] for r in rows} == {50.0, 51.0}


def test_set_mlflow_id(engine):
    db.record_run(engine, result())
    db.set_mlflow_id(engine, spec().run_key, "mlf-123")
    assert db.runs_by_key(engine)[spec().run_key].mlflow_run_id == "mlf-123"


def test_runs_by_key_filters(engine):
    db.record_runs(engine, [result(seed=s) for s in range(3)])
    keys = [spec(0).run_key, spec(2).run_key, "missing"]
    assert set(db.runs_by_key(engine, keys)) == {spec(0).run_key, spec(2).run_key}
    assert db.runs_by_key(engine, []) == {}


def test_run_to_result_round_trips(engine, tmp_path):
    original = result(seed=3, mlflow_run_id="m1")
    db.record_run(engine, original)
    out = db.run_to_result(db.runs_by_key(engine)[spec(3).run_key])
    for k in ("spec", "status", "message", "metrics", "series", "provenance", "started_at",
              "finished_at", "wall_s", "mlflow_run_id"):
        assert out[k] == original[k], k
    assert out["attempts"] == 1
    json.dumps(out)  # the export format is plain JSON
    # and it writes back identically into a fresh DB
    other = db.connect(f"sqlite:///{tmp_path / 'other.db'}")
    db.record_run(other, out)
    again = db.run_to_result(db.runs_by_key(other)[spec(3).run_key])
    assert again == out
    other.dispose()


def test_artifacts_round_trip_and_cascade(engine, tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    original = result(seed=4, artifacts={"layers": [{"name": "conv1", "l2_l1": 0.25}],
                                         "map.png": blob(png)})
    db.record_run(engine, original)
    row = db.runs_by_key(engine)[spec(4).run_key]
    by_name = {a.name: a for a in row.artifacts}
    assert by_name["map.png"].media_type == "image/png" and by_name["map.png"].data == png
    assert by_name["layers"].media_type == "application/json"
    out = db.run_to_result(row)
    assert out["artifacts"] == original["artifacts"]
    json.dumps(out)
    other = db.connect(f"sqlite:///{tmp_path / 'other.db'}")  # export -> import keeps them
    db.record_run(other, out)
    assert db.run_to_result(db.runs_by_key(other)[spec(4).run_key])["artifacts"] == \
        original["artifacts"]
    other.dispose()
    db.record_run(engine, result(seed=4, artifacts={}))  # a rerun replaces the run's files
    assert db.runs_by_key(engine)[spec(4).run_key].artifacts == []
    assert count(engine, db.Artifact) == 0


def test_oversized_artifact_is_dropped_with_a_note(engine):
    big = blob(b"x" * (MAX_ARTIFACT_BYTES + 1))
    db.record_run(engine, result(seed=5, artifacts={"huge.png": big, "ok": [1]}))
    row = db.runs_by_key(engine)[spec(5).run_key]
    assert [a.name for a in row.artifacts] == ["ok"]
    assert "huge.png" in row.provenance["artifacts_dropped"][0]


def test_session_rolls_back_on_error(engine):
    with pytest.raises(RuntimeError), db.session(engine) as s:
        db.write_run(s, result())
        s.flush()
        raise RuntimeError("boom")
    assert count(engine, db.Run) == 0
