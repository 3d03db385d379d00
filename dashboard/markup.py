"""Small HTML fragments the pages render with ``st.markdown(..., unsafe_allow_html=True)``:
verdict badges, the overview's claim table (links to the claim page) and the papers' tables
of published numbers beside ours. Pure functions; every value is escaped.
"""

from __future__ import annotations

import math
from html import escape
from urllib.parse import urlencode

import pandas as pd

from dashboard.plots import VERDICT_COLORS

CSS = """
<style>
.pr-badge{display:inline-block;padding:1px 8px;border-radius:10px;color:#fff;font-size:.78rem;
  font-weight:600;white-space:nowrap;line-height:1.5}
.pr-badge.skipped,.pr-badge.pending{color:#24292f}
table.pr{border-collapse:collapse;width:100%;font-size:.86rem}
table.pr th{text-align:left;border-bottom:2px solid #d0d7de;padding:4px 8px;white-space:nowrap;
  position:sticky;top:0;background:var(--background-color,#fff)}
table.pr td{border-bottom:1px solid #eaeef2;padding:4px 8px;vertical-align:top}
table.pr td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
table.pr .sub{color:#57606a;font-size:.76rem}
table.pr a{text-decoration:none;font-family:ui-monospace,monospace;font-size:.82rem}
table.pr tr.paper td{background:#f6f8fa;font-weight:600;border-bottom:1px solid #d0d7de}
table.pr .pub{font-weight:600}
table.pr .ours{font-size:.8rem}
.pr-facts{display:flex;gap:12px 36px;flex-wrap:wrap;margin:.4rem 0 1rem 0}
.pr-fact .l{color:#57606a;font-size:.8rem}
.pr-fact .v{font-size:1.2rem;font-weight:600;font-variant-numeric:tabular-nums}
.pr-counts span.c{white-space:nowrap;margin-right:14px;line-height:2}
</style>
"""


def badge(verdict: str) -> str:
    color = VERDICT_COLORS.get(verdict, "#57606a")
    cls = verdict.replace(" ", "-")
    return (f'<span class="pr-badge {escape(cls)}" style="background:{color}" '
            f'title="{escape(verdict)}">{escape(verdict)}</span>')


def facts(items: list[tuple[str, str]]) -> str:
    """A row of label / value pairs (values are escaped text)."""
    return '<div class="pr-facts">' + "".join(
        f'<div class="pr-fact"><div class="l">{escape(k)}</div><div class="v">{escape(v)}'
        f"</div></div>" for k, v in items) + "</div>"


def counts(totals: dict[str, int]) -> str:
    """Verdict badges with their counts, one unbreakable item each."""
    return '<div class="pr-counts">' + "".join(
        f'<span class="c">{badge(v)} <b>{n}</b></span>' for v, n in totals.items()) + "</div>"


def claim_href(claim_id: str, tier: str = "") -> str:
    """A same-tab link to the claim page (relative, so it works under any base path)."""
    q = {"claim": claim_id, **({"tier": tier} if tier else {})}
    return "claim?" + urlencode(q)


def link(claim_id: str, tier: str = "", text: str | None = None) -> str:
    return (f'<a href="{escape(claim_href(claim_id, tier))}" target="_self">'
            f'{escape(text or claim_id)}</a>')


def overview_table(df: pd.DataFrame) -> str:
    """The overview's rows as one HTML table, grouped by paper."""
    head = ("<tr><th>verdict</th><th>claim</th><th>tier</th><th>n</th><th>ours</th>"
            "<th>published</th><th>expected</th></tr>")
    body = []
    paper = None
    for r in df.itertuples(index=False):
        if r.paper != paper:
            paper = r.paper
            body.append(f'<tr class="paper"><td colspan="7">{escape(paper)}</td></tr>')
        n = f"{r.n}/{r.planned}" if r.planned else str(r.n)
        title = f'<div class="sub">{escape(r.title)}</div>' if r.title else ""
        body.append(
            f"<tr><td>{badge(r.verdict)}</td>"
            f"<td>{link(r.claim, r.tier)}{title}</td><td>{escape(r.tier)}</td>"
            f'<td class="num" title="ok seeds (paired for a delta claim) / planned">{n}</td>'
            f'<td class="num" title="{escape(r.message)}">{escape(r.ours)}</td>'
            f"<td>{escape(r.published)}</td><td>{escape(r.expected)}</td></tr>")
    return f'<table class="pr" id="overview-table">{head}{"".join(body)}</table>'


def _num(x) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.4g}"


def cell_html(c: dict) -> str:
    """One published number with ours under it (and the claim's verdict)."""
    pub = _num(c["published"]) if c["published"] is not None else escape(c["note"] or "–")
    unit = escape(c["unit"] or "")
    star = "" if c["verified"] else ' <span title="unverified (read off a plot or quoted)">*</span>'
    out = f'<span class="pub">{pub}</span> {unit}{star}'
    if c["claim"]:
        if c["ours"] is not None and not (isinstance(c["ours"], float)
                                          and math.isnan(c["ours"])):
            ci = ""
            if c["ours_lo"] is not None and c["ours_hi"] is not None and \
                    math.isfinite(c["ours_lo"]) and math.isfinite(c["ours_hi"]):
                ci = f" ± {(c['ours_hi'] - c['ours_lo']) / 2:.2g}"
            ours = f"ours {_num(c['ours'])}{ci} (n={c['n']}, {escape(c['our_metric'])})"
        else:
            ours = "ours –"
        out += (f'<div class="ours">{link(c["claim"], c["tier"], ours)} '
                f'{badge(c["verdict"]) if c["verdict"] else ""}</div>')
    return out


def paper_table(cells: pd.DataFrame) -> str:
    """One published table: rows = model, columns = dataset · metric, cells = published and
    ours."""
    cols: list[tuple[str, str]] = []
    rows: list[str] = []
    grid: dict[tuple[str, tuple[str, str]], dict] = {}
    for c in cells.to_dict("records"):
        col = (c["dataset"], c["metric"])
        if col not in cols:
            cols.append(col)
        if c["model"] not in rows:
            rows.append(c["model"])
        grid[(c["model"], col)] = c
    one_dataset = len({d for d, _ in cols}) == 1
    head = "<tr><th>model</th>" + "".join(
        f"<th>{escape(m if one_dataset else f'{d} · {m}')}</th>" for d, m in cols) + "</tr>"
    body = []
    for model in rows:
        tds = "".join(f"<td>{cell_html(grid[(model, col)])}</td>" if (model, col) in grid
                      else "<td></td>" for col in cols)
        body.append(f"<tr><td>{escape(model)}</td>{tds}</tr>")
    return f'<table class="pr">{head}{"".join(body)}</table>'
