"""Every published number is accounted for: each row of registry/published.toml is a claim's
``published.ref``/``refs`` or a ``[[context]]`` entry's ref, and the mapping follows the
project's rule (a paper's own models are claims with a full form; numbers a paper copied
from other works are context unless the registry has the model)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from registry import published
from suite.claims import load_catalog

#: Rows a paper quotes from other works (S3Net "baseline_reported") or third-party
#: comparisons: the only rows that may be context entries.
QUOTED_VARIANTS = {"baseline_reported"}
THIRD_PARTY_KINDS = ("secondary-third-party",)


def _claim_refs(claim) -> list[str]:
    p = claim.published
    return ([p["ref"]] if isinstance(p.get("ref"), str) else []) + list(p.get("refs") or [])


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(Path(__file__).resolve().parent.parent / "tasks.toml")


def test_every_published_row_is_mapped(catalog):
    mapped = {ref for c in catalog.claims for ref in _claim_refs(c)}
    mapped |= {ref for e in catalog.context for ref in e.refs}
    missing: dict[str, list[str]] = defaultdict(list)
    for row in published.rows():
        if row["ref"] not in mapped:
            missing[row["paper"]].append(row["ref"])
    if missing:
        n = sum(map(len, missing.values()))
        lines = [f"{n} row(s) of registry/published.toml are neither a claim's published.ref"
                 f"/refs nor a [[context]] ref in tasks.toml:"]
        for paper, refs in sorted(missing.items()):
            lines.append(f"{paper} — {len(refs)} unmapped:")
            lines += [f"    {r}" for r in refs]
        pytest.fail("\n".join(lines), pytrace=False)


def test_context_entries_only_hold_numbers_quoted_from_other_works(catalog):
    rows = published.by_ref()
    wrong = [f"{e.id}: {ref} (variant {rows[ref].get('variant')!r}, source_kind "
             f"{rows[ref].get('source_kind')!r})"
             for e in catalog.context for ref in e.refs
             if rows[ref].get("variant") not in QUOTED_VARIANTS
             and not str(rows[ref].get("source_kind", "")).startswith(THIRD_PARTY_KINDS)]
    assert not wrong, ("a paper's own number must be a claim, not context:\n  "
                       + "\n  ".join(wrong))


def test_claims_that_map_rows_have_a_full_form_or_say_why_not(catalog):
    bad = [c.id for c in catalog.claims if _claim_refs(c)
           and "full" not in c.tiers and not c.skip.get("full")]
    assert not bad, f"claims mapping published rows without a full form or skip reason: {bad}"


def test_context_entries_say_why_they_are_not_run(catalog):
    assert all(e.reason for e in catalog.context), [e.id for e in catalog.context
                                                    if not e.reason]


def test_the_failure_message_names_the_unmapped_refs_and_their_paper(catalog):
    """The coverage test's message is what a helper reads to fix the mapping."""
    from dataclasses import replace

    dropped = catalog.context[0]
    smaller = replace(catalog, context=catalog.context[1:])
    with pytest.raises(pytest.fail.Exception) as ei:
        test_every_published_row_is_mapped(smaller)
    msg = str(ei.value)
    row = published.by_ref()[dropped.refs[0]]
    assert f"{row['paper']} — " in msg and f"    {dropped.refs[0]}" in msg
