"""Judge a claim from its runs: n, mean, std, a 95% t-interval, and a verdict.

Pure functions, no I/O. The rule (airbench-style evidence, never a single lucky run):

* absolute claim: the interval of the mean over seeds must lie wholly inside the accepted
  region (``higher``: ≥ value − tolerance; ``lower``: ≤ value + tolerance; ``equal``:
  within ± tolerance) for *reproduced*, wholly outside for *not reproduced*; an interval that
  straddles the border, or fewer than ``min_runs`` ok runs, is *inconclusive*.
* delta claim: the same, on the per-seed paired difference treatment − baseline against
  ``min_diff``.

An inconclusive verdict whose interval straddles a border also says how many (paired) seeds
the observed spread would need to decide it (:func:`seeds_to_decide`): the smallest n with
``t(1 − α/2, n − 1) · s / √n`` below the distance from the mean to the nearest border. It is
an estimate from a noisy spread, not a promise; ``run --until-decided`` acts on it with a
stricter interval per extra look (:mod:`suite.sequential`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from suite.specs import Expect

# two-sided 95% Student-t quantiles t_{0.975, df} for df = 1..30
_T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
         2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
         2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


ALPHA = 0.05  #: the fixed-n verdict's two-sided level: a 95% interval


def t975(df: int) -> float:
    if df < 1:
        return math.inf
    if df <= 30:
        return _T975[df - 1]
    z = 1.959964  # Cornish-Fisher expansion around the normal quantile; < 1e-4 off for df > 30
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def t_crit(df: int, alpha: float = ALPHA) -> float:
    """Two-sided Student-t critical value ``t(1 − alpha/2, df)`` (the table above for 95%,
    scipy for any other level)."""
    if df < 1:
        return math.inf
    if alpha == ALPHA:
        return t975(df)
    from scipy.stats import t

    return float(t.ppf(1.0 - alpha / 2.0, df))


def level(alpha: float) -> str:
    """``0.05`` → ``"95%"``, ``0.0125`` → ``"98.75%"``."""
    return f"{100 * (1 - alpha):.4g}%"


@dataclass(frozen=True)
class Observation:
    """One run as the judge sees it."""

    seed: int
    status: str
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float
    lo: float
    hi: float

    @classmethod
    def of(cls, xs: list[float], alpha: float = ALPHA) -> Summary:
        n = len(xs)
        if n == 0:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        mean = sum(xs) / n
        if n == 1:
            return cls(1, mean, math.nan, -math.inf, math.inf)
        std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
        half = t_crit(n - 1, alpha) * std / math.sqrt(n)
        return cls(n, mean, std, mean - half, mean + half)


def seeds_to_decide(summary: Summary, lo: float, hi: float, alpha: float = ALPHA,
                    cap: int = 10_000) -> int | None:
    """How many seeds (paired seeds for a delta) the observed mean and spread would need
    for the ``1 − alpha`` interval to clear every border of the accepted region ``[lo, hi]``.

    ``None`` when it cannot be estimated (fewer than 2 values, zero spread) or the mean sits
    on a border (no number of seeds decides it); ``cap + 1`` when more than ``cap``.
    """
    if summary.n < 2 or not math.isfinite(summary.std) or summary.std == 0:
        return None
    borders = [b for b in (lo, hi) if math.isfinite(b)]
    if not borders:
        return None
    d = min(abs(summary.mean - b) for b in borders)
    if d == 0:
        return None
    # start near the normal-approximation answer, then walk to the exact t answer
    z = t_crit(10**6, alpha)
    n = max(2, int((z * summary.std / d) ** 2))
    if n > cap:
        return cap + 1
    while n > 2 and t_crit(n - 2, alpha) * summary.std / math.sqrt(n - 1) < d:
        n -= 1
    while t_crit(n - 1, alpha) * summary.std / math.sqrt(n) >= d:
        n += 1
        if n > cap:
            return cap + 1
    return n


@dataclass(frozen=True)
class Verdict:
    status: str  # one of suite.specs.VERDICTS
    message: str
    summary: Summary | None = None  # of the metric (absolute) or of the paired diff (delta)
    treatment: Summary | None = None
    baseline: Summary | None = None
    values: tuple[float, ...] = ()
    alpha: float = ALPHA  # two-sided level of the interval the verdict used
    region: tuple[float, float] | None = None  # the accepted region [lo, hi]
    needed: int | None = None  # inconclusive: seeds the observed spread would need (same α)
    look: int = 0  # 0: the committed seeds (fixed n); k ≥ 1: k-th sequential extension look

    def to_dict(self) -> dict[str, Any]:
        def s(x: Summary | None) -> dict[str, float] | None:
            return None if x is None else x.__dict__.copy()

        return {"status": self.status, "message": self.message, "summary": s(self.summary),
                "treatment": s(self.treatment), "baseline": s(self.baseline),
                "values": list(self.values), "alpha": self.alpha,
                "region": list(self.region) if self.region else None,
                "needed": self.needed, "look": self.look}


def _region(expect: Expect, target: float, tol: float) -> tuple[float, float]:
    if expect.direction == "higher":
        return target - tol, math.inf
    if expect.direction == "lower":
        return -math.inf, target + tol
    return target - tol, target + tol


def _decide(summary: Summary, lo: float, hi: float, min_runs: int, what: str,
            alpha: float = ALPHA) -> tuple[str, str, int | None]:
    """``(status, message, seeds needed)``; the last only for a straddling interval."""
    if summary.n < min_runs:
        return ("inconclusive", f"{summary.n} ok run(s) of {what}; need at least {min_runs}",
                None)
    # A zero-spread metric (parameter count, a deterministic run) has an exact interval.
    a, b = (summary.mean, summary.mean) if summary.n == 1 or summary.std == 0 else (
        summary.lo, summary.hi)
    inside = lo <= a and b <= hi
    outside = b < lo or a > hi
    rng = f"[{lo:.4g}, {hi:.4g}]".replace("-inf", "−∞").replace("inf", "∞")
    ci = f"{level(alpha)} CI [{a:.4g}, {b:.4g}]"
    if inside:
        return "reproduced", f"{ci} lies inside the accepted region {rng}", None
    if outside:
        return "not reproduced", f"{ci} lies outside the accepted region {rng}", None
    needed = seeds_to_decide(summary, lo, hi, alpha)
    if needed is None:
        more = "; the mean sits on the border, so no number of seeds would decide it"
    elif needed > 10_000:
        more = "; the observed spread would need more than 10,000 seeds to decide it"
    else:
        more = (f"; at the observed spread ≈{needed} {what.replace('the claim', 'seeds')} "
                f"would decide it")
    return "inconclusive", f"{ci} straddles the border of the accepted region {rng}{more}", needed


def _failure(obs: list[Observation]) -> tuple[str, str] | None:
    if not obs:
        return "pending", "no runs yet"
    ok = [o for o in obs if o.status == "ok"]
    if ok:
        return None
    if all(o.status == "skipped" for o in obs):
        return "skipped", obs[0].message or "all runs skipped"
    bad = next((o for o in obs if o.status in ("error", "timeout")),
               next(o for o in obs if o.status != "ok"))
    return "error", f"{bad.status}: {bad.message}"


def judge(expect: Expect | None, treatment: list[Observation],
          baseline: list[Observation] | None = None, min_runs: int = 2,
          alpha: float = ALPHA, look: int = 0) -> Verdict:
    """The verdict of one claim at one tier, from its runs (any status).

    ``alpha``: two-sided level of the interval (0.05 for the committed seeds; smaller for a
    sequential look, see :mod:`suite.sequential`); ``look`` is recorded in the verdict.
    """
    if expect is None:
        f = _failure(treatment)
        if f:
            return Verdict(*f)
        return Verdict("inconclusive", "no expectation at this tier: results are shown, not judged",
                       treatment=Summary.of([]))
    f = _failure(treatment) or (_failure(baseline or []) if expect.kind == "delta" else None)
    if f:
        return Verdict(*f)
    m = expect.metric
    ok_t = {o.seed: o.metrics[m] for o in treatment if o.status == "ok" and m in o.metrics}
    missing = [o.seed for o in treatment if o.status == "ok" and m not in o.metrics]
    if missing:
        return Verdict("error", f"ok runs (seeds {missing}) did not report metric {m!r}")
    if any(not math.isfinite(v) for v in ok_t.values()):
        return Verdict("error", f"metric {m!r} is not finite in some runs")
    if expect.kind == "absolute":
        vals = [ok_t[s] for s in sorted(ok_t)]
        s = Summary.of(vals, alpha)
        lo, hi = _region(expect, float(expect.value), expect.tolerance)
        status, msg, needed = _decide(s, lo, hi, min_runs, "the claim", alpha)
        msg = f"{m} = {s.mean:.4g} ± {0 if math.isnan(s.std) else s.std:.3g} (n={s.n}); {msg}"
        return Verdict(status, msg, s, treatment=s, values=tuple(vals), alpha=alpha,
                       region=(lo, hi), needed=needed, look=look)
    ok_b = {o.seed: o.metrics.get(m) for o in (baseline or []) if o.status == "ok"}
    missing_b = [k for k, v in ok_b.items() if v is None]
    if missing_b:
        return Verdict("error", f"ok baseline runs (seeds {missing_b}) did not report metric {m!r}")
    if any(not math.isfinite(v) for v in ok_b.values()):
        return Verdict("error", f"metric {m!r} is not finite in some baseline runs")
    paired = sorted(set(ok_t) & set(ok_b))
    diffs = [ok_t[k] - ok_b[k] for k in paired]
    s = Summary.of(diffs, alpha)
    st = Summary.of([ok_t[k] for k in paired], alpha)
    sb = Summary.of([ok_b[k] for k in paired], alpha)
    if expect.direction == "higher":
        lo, hi = expect.min_diff, math.inf
    elif expect.direction == "lower":
        lo, hi = -math.inf, -expect.min_diff
    else:
        lo, hi = -expect.tolerance, expect.tolerance
    status, msg, needed = _decide(s, lo, hi, min_runs, "paired seeds", alpha)
    msg = (f"{m}: treatment {st.mean:.4g} vs baseline {sb.mean:.4g}, paired diff "
           f"{s.mean:+.4g} (n={s.n}); {msg}")
    return Verdict(status, msg, s, treatment=st, baseline=sb, values=tuple(diffs), alpha=alpha,
                   region=(lo, hi), needed=needed, look=look)
