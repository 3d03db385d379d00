"""``[[context]]`` entries (published numbers shown beside ours, never run), claim-less files,
and the ``n/a at this tier`` status."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from registry import published
from suite.claims import load_catalog, parse_catalog, parse_claims
from suite.errors import ClaimsError

ROWS = published.rows()
REF_A, REF_B = ROWS[0]["ref"], ROWS[1]["ref"]


def base(**context: Any) -> dict[str, Any]:
    entry = {"id": "p/ctx", "paper": "p", "source": "Table 9, quoted from X et al.",
             "ref": REF_B, "beside": ["p/a"], "reason": "not in the registry"}
    entry.update(context)
    return {"papers": {"p": {"title": "P"}},
            "claim": [{"id": "p/a", "paper": "p", "source": "s", "task": "param_count",
                       "model": "test_cnn", "published": {"ref": REF_A},
                       "expect": {"kind": "absolute", "metric": "params_m", "value": 1.0}}],
            "context": [{k: v for k, v in entry.items() if v is not None}]}


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ClaimsError) as ei:
        parse_catalog(raw)
    return [str(p) for p in ei.value.problems]


def test_a_context_entry_parses_and_is_found_beside_its_claim():
    cat = parse_catalog(base())
    (e,) = cat.context
    assert (e.id, e.paper, e.refs, e.beside) == ("p/ctx", "p", (REF_B,), ("p/a",))
    assert cat.context_beside("p/a") == [e] and cat.context_beside("p/b") == []
    both = parse_catalog(base(ref=None, refs=[REF_B, ROWS[2]["ref"]], beside=["p/*"]))
    assert both.context[0].refs == (REF_B, ROWS[2]["ref"])
    assert both.context_beside("p/a") == both.context  # a glob
    assert parse_claims(base())[1][0].id == "p/a"  # the two-value API is unchanged


@pytest.mark.parametrize("change,field,text", [
    ({"ref": "nope/x"}, "ref", "no row 'nope/x'"),
    ({"ref": None}, "ref", "names the published row(s)"),
    ({"ref": REF_A}, "ref", "also claimed by 'p/a'"),
    ({"beside": ["p/zz"]}, "beside", "no claim matches 'p/zz'"),
    ({"paper": "q"}, "paper", "no [papers.q] table"),
    ({"source": None}, "source", "is required"),
    ({"id": "p/a"}, "id", "duplicate id"),
    ({"id": "Bad Id"}, "id", "lowercase"),
    ({"value": 3.0}, "value", "unknown key"),
])
def test_context_problems_name_the_entry_and_field(change, field, text):
    found = problems(base(**change))
    hits = [p for p in found if f"field '{field}'" in p and text in p]
    assert hits, found
    assert all(p.startswith("context ") for p in hits)


def test_context_must_be_an_array_of_tables():
    raw = base()
    raw["context"] = {"id": "x"}
    assert any("use [[context]]" in p for p in problems(raw))


@pytest.mark.parametrize("raw", [{}, {"papers": {"p": {"title": "P"}}},
                                 {"papers": {"p": {"title": "P"}}, "claim": []}])
def test_an_empty_or_claimless_file_is_an_error(raw):
    found = problems(raw)
    assert any("field 'claim'" in p and "no [[claim]] tables" in p for p in found), found


def test_validate_refuses_an_empty_file(tmp_path, capsys):
    from suite.cli import main

    path = tmp_path / "empty.toml"
    path.write_text("# nothing here\n", encoding="utf-8")
    assert main(["--tasks", str(path), "validate", "--shallow"]) == 2
    out = capsys.readouterr()
    assert "no [[claim]] tables" in out.err and "is valid" not in out.out + out.err


def test_report_says_na_at_this_tier_for_a_claim_without_a_form(tmp_path):
    from suite import db, report

    raw = copy.deepcopy(base())
    raw["claim"][0]["tiers"] = {"smoke": {"skip": "too big"}}
    _, claims = parse_claims(raw)
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    (mini,) = report.claim_rows(engine, claims, "mini")
    (smoke,) = report.claim_rows(engine, claims, "smoke")
    (full,) = report.claim_rows(engine, claims, "full")
    assert mini.verdict.status == "n/a" and report.verdict_label(mini.verdict) == \
        "n/a at this tier"
    assert smoke.verdict.status == "skipped" and smoke.verdict.message == "too big"
    assert full.verdict.status == "pending"  # a form, no runs yet
    assert report.context_rows(parse_catalog(raw).context, claims)[0][0] == "p/ctx"


def test_committed_context_sits_only_beside_claims_of_its_own_comparison():
    """Each committed context entry names the claims it informs; a paper-wide glob would put a
    CIFAR-100 VGG16-BN pooling table beside the video claims (it once did)."""
    cat = load_catalog(Path(__file__).resolve().parents[1] / "tasks.toml")
    ids = {e.id for e in cat.context_beside("softpool/compare/vs-max")}
    assert "softpool/third-party/c100/vgg16-bn-pools" in ids
    for claim in ("softpool/ucf101/r3d_18", "softpool/imagenet/resnet18"):
        assert "softpool/third-party/c100/vgg16-bn-pools" not in {
            e.id for e in cat.context_beside(claim)}
    for e in cat.context:
        assert all(b not in (f"{e.paper}/*", "*") for b in e.beside), (e.id, e.beside)
