"""The README's worked example of a claim is valid tasks.toml (docs must not rot)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

from suite.claims import parse_claims
from suite.deepcheck import deep_check

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_claim_example_validates() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Adding a claim"):]
    block = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    raw = tomllib.loads('[papers.allconv]\ntitle = "All-CNN"\n' + block)
    _, claims = parse_claims(raw, "README.md")
    assert [c.id for c in claims] == ["allconv/c10/all_cnn_c-vs-model_c",
                                      "allconv/c10/strided_c-vs-model_c"]
    assert claims[1].form("mini").model == "strided_cnn_c"
    deep_check("README.md", claims)
