"""The dashboard's queries on a real PostgreSQL server (the fixture DB written there): the
same verdicts as on SQLite, and a connection that refuses to write."""

from __future__ import annotations

import pytest
from dashboard_data import VERDICTS, build
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from dashboard import queries as q
from suite.claims import load_claims

pytest.importorskip("psycopg")
from test_postgres import pg_url  # noqa: E402,F401  (the throwaway server fixture)


def test_queries_on_postgres_are_read_only_and_agree(pg_url, tmp_path):  # noqa: F811
    url, tasks = build(tmp_path, pg_url)
    _, claims = load_claims(tasks)
    engine = q.open_readonly(url)
    with pytest.raises(DBAPIError, match="read-only"), engine.begin() as conn:
        conn.execute(text("DELETE FROM runs"))
    rows = q.verdicts(claims, q.load_runs(engine, q.judged_metrics(claims)), ["mini"])
    assert {r.claim.id: r.verdict.status for r in rows} == VERDICTS
    assert q.db_status(engine).n_runs == 20
    assert list(q.artifact_index(engine, None, "image/")["name"]) == ["saliency"]
    assert q.artifact_index(engine)["bytes"].min() > 0
    assert set(q.kernel_frame(engine)["family"]) == {"softpool", "avg", "max"}
    assert q.full_estimates(engine, claims).set_index("claim").loc[
        "demo/abs-ok", "images_per_s"] == 100.0
    _, stored = q.claims_from_db(engine)
    assert {c.id for c in stored} == {c.id for c in claims}
