"""The judge: summaries, t-intervals and verdicts of absolute and delta claims."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from suite.specs import VERDICTS, Expect
from suite.verdict import Observation, Summary, judge, t975


def ok(seed: int, value: float, metric: str = "top1") -> Observation:
    return Observation(seed, "ok", {metric: value})


def obs(*values: float, metric: str = "top1", start: int = 0) -> list[Observation]:
    return [ok(start + i, v, metric) for i, v in enumerate(values)]


def absolute(value: float, direction: str = "higher", tolerance: float = 0.0) -> Expect:
    return Expect(kind="absolute", metric="top1", direction=direction, value=value,
                  tolerance=tolerance)


def delta(direction: str = "higher", min_diff: float = 0.0, tolerance: float = 0.0) -> Expect:
    return Expect(kind="delta", metric="top1", direction=direction, min_diff=min_diff,
                  tolerance=tolerance, baseline={"model_args": {"pool": "max"}})


# -- t quantiles and intervals ----------------------------------------------------------------
def test_t_quantiles():
    assert t975(1) == pytest.approx(12.706)
    assert t975(2) == pytest.approx(4.303)
    assert t975(10) == pytest.approx(2.228)
    assert t975(30) == pytest.approx(2.042)
    assert t975(0) == math.inf


@pytest.mark.parametrize("df,exact", [(40, 2.0211), (60, 2.0003), (120, 1.9799),
                                      (1000, 1.9623), (10**6, 1.9600)])
def test_t_quantiles_large_df(df, exact):
    assert t975(df) == pytest.approx(exact, abs=0.002)


def test_t_quantiles_decrease():
    qs = [t975(d) for d in range(1, 200)]
    assert all(a > b for a, b in pairwise(qs))


def test_hand_computed_interval():
    s = Summary.of([1.0, 2.0, 3.0])
    # mean 2, sample std 1, half width t975(2) * 1 / sqrt(3) = 4.303 / 1.7320508 = 2.484338
    assert (s.n, s.mean, s.std) == (3, 2.0, 1.0)
    assert s.lo == pytest.approx(2.0 - 2.484338, abs=1e-6)
    assert s.hi == pytest.approx(2.0 + 2.484338, abs=1e-6)


def test_summary_edge_cases():
    s0 = Summary.of([])
    assert s0.n == 0 and math.isnan(s0.mean)
    s1 = Summary.of([4.0])
    assert (s1.n, s1.mean, s1.lo, s1.hi) == (1, 4.0, -math.inf, math.inf)
    assert math.isnan(s1.std)


# -- absolute claims ------------------------------------------------------------------------
def test_absolute_higher_reproduced():
    v = judge(absolute(90.0), obs(92.0, 92.5, 93.0))
    assert v.status == "reproduced"
    assert v.summary.n == 3 and v.summary.mean == pytest.approx(92.5)
    assert v.values == (92.0, 92.5, 93.0)
    assert "top1 = 92.5" in v.message and "inside" in v.message


def test_absolute_higher_not_reproduced():
    v = judge(absolute(90.0), obs(80.0, 80.5, 81.0))
    assert v.status == "not reproduced" and "outside" in v.message


def test_absolute_tolerance_widens_the_region():
    assert judge(absolute(90.0), obs(88.0, 88.2, 88.4)).status == "not reproduced"
    assert judge(absolute(90.0, tolerance=3.0), obs(88.0, 88.2, 88.4)).status == "reproduced"


def test_absolute_lower():
    e = absolute(10.0, "lower")  # e.g. an error rate
    assert judge(e, obs(8.0, 8.2, 8.4)).status == "reproduced"
    assert judge(e, obs(12.0, 12.2, 12.4)).status == "not reproduced"
    assert judge(absolute(10.0, "lower", 3.0), obs(12.0, 12.2, 12.4)).status == "reproduced"


def test_absolute_equal():
    e = absolute(50.0, "equal", 1.0)
    assert judge(e, obs(49.9, 50.0, 50.1)).status == "reproduced"
    assert judge(e, obs(55.0, 55.1, 55.2)).status == "not reproduced"
    assert judge(e, obs(44.8, 45.0, 45.2)).status == "not reproduced"


def test_inconclusive_when_interval_straddles():
    # mean 90, std √2, half width t975(1)·√2/√2 = 12.706: [77.3, 102.7] covers 90
    v = judge(absolute(90.0), obs(89.0, 91.0))
    assert v.status == "inconclusive" and "straddles" in v.message
    assert v.summary.lo == pytest.approx(90.0 - 12.706)
    assert v.summary.hi == pytest.approx(90.0 + 12.706)


def test_inconclusive_with_too_few_runs():
    v = judge(absolute(90.0), obs(95.0, 95.1), min_runs=3)
    assert v.status == "inconclusive"
    assert "2 ok run(s)" in v.message and "at least 3" in v.message


def test_single_run_is_inconclusive_when_two_are_needed():
    v = judge(absolute(90.0), obs(95.0), min_runs=1)
    assert v.status == "reproduced"  # exact value, min_runs = 1 allows it
    v = judge(absolute(90.0), obs(95.0), min_runs=2)
    assert v.status == "inconclusive"


def test_deterministic_metric_single_run():
    e = Expect(kind="absolute", metric="params", direction="equal", value=1.37e6,
               tolerance=0.01e6)
    v = judge(e, [ok(0, 1.372e6, "params")], min_runs=1)
    assert v.status == "reproduced"
    assert judge(e, [ok(0, 1.5e6, "params")], min_runs=1).status == "not reproduced"


def test_zero_spread_is_an_exact_interval():
    # identical values: std 0, the interval collapses to the mean (not inconclusive)
    v = judge(absolute(1.0, "equal", 0.0), obs(1.0, 1.0, 1.0))
    assert v.status == "reproduced"
    assert judge(absolute(1.0, "higher"), obs(0.999, 0.999)).status == "not reproduced"


def test_failed_runs_beside_ok_runs_are_ignored():
    runs = obs(92.0, 92.5, 93.0) + [Observation(9, "error", {}, "boom")]
    v = judge(absolute(90.0), runs)
    assert v.status == "reproduced" and v.summary.n == 3


def test_error_when_ok_runs_lack_the_metric():
    runs = [ok(0, 92.0), Observation(1, "ok", {"top5": 99.0})]
    v = judge(absolute(90.0), runs)
    assert v.status == "error"
    assert "seeds [1]" in v.message and "'top1'" in v.message


def test_error_when_metric_is_not_finite():
    v = judge(absolute(90.0), obs(92.0, math.nan))
    assert v.status == "error" and "not finite" in v.message


# -- statuses without numbers -------------------------------------------------------------
def test_pending_without_runs():
    v = judge(absolute(90.0), [])
    assert v.status == "pending" and v.summary is None


def test_skipped_when_all_skipped():
    runs = [Observation(0, "skipped", {}, "dataset unavailable: CIFAR-10 not found"),
            Observation(1, "skipped", {}, "dataset unavailable: CIFAR-10 not found")]
    v = judge(absolute(90.0), runs)
    assert v.status == "skipped" and "CIFAR-10 not found" in v.message


def test_error_when_all_failed():
    runs = [Observation(0, "timeout", {}, "after 300 s"), Observation(1, "error", {}, "nan")]
    v = judge(absolute(90.0), runs)
    assert v.status == "error" and v.message == "timeout: after 300 s"


def test_error_message_names_the_failure_not_a_skip():
    runs = [Observation(0, "skipped", {}, "dataset unavailable"),
            Observation(1, "error", {}, "training diverged")]
    v = judge(absolute(90.0), runs)
    assert v.status == "error" and "training diverged" in v.message


def test_no_expectation_is_shown_not_judged():
    v = judge(None, obs(1.0, 2.0))
    assert v.status == "inconclusive" and "not judged" in v.message
    assert judge(None, []).status == "pending"


def test_every_status_is_a_known_verdict():
    cases = [judge(absolute(0.0), obs(1.0, 1.1)), judge(absolute(5.0), obs(1.0, 1.1)),
             judge(absolute(1.0), obs(0.0, 2.0)), judge(absolute(1.0), []),
             judge(absolute(1.0), [Observation(0, "error")]),
             judge(absolute(1.0), [Observation(0, "skipped")])]
    # "n/a" (no form at the tier) is given by the report, never by the judge
    assert {v.status for v in cases} == set(VERDICTS) - {"n/a"}
    for v in cases:
        d = v.to_dict()
        assert d["status"] == v.status and isinstance(d["values"], list)


# -- delta claims -----------------------------------------------------------------------------
def test_delta_higher_paired_by_seed():
    t = [ok(0, 91.0), ok(1, 92.0), ok(2, 93.0)]
    b = [ok(2, 92.0), ok(0, 90.0), ok(1, 91.0)]  # order does not matter, seeds do
    v = judge(delta("higher", 0.5), t, b)
    assert v.status == "reproduced"
    assert v.values == (1.0, 1.0, 1.0)
    assert v.treatment.mean == pytest.approx(92.0) and v.baseline.mean == pytest.approx(91.0)
    assert "paired diff +1" in v.message


def test_delta_unpaired_seeds_are_ignored():
    t = [ok(0, 91.0), ok(1, 92.0), ok(5, 0.0)]
    b = [ok(0, 90.0), ok(1, 90.9), ok(7, 100.0)]
    v = judge(delta("higher", 0.0), t, b)
    assert v.summary.n == 2
    assert v.values == pytest.approx((1.0, 1.1))
    assert v.status == "reproduced"
    assert v.treatment.mean == pytest.approx(91.5) and v.baseline.mean == pytest.approx(90.45)


def test_delta_pairing_beats_unpaired_means():
    # per-seed noise is large, the paired difference is tiny and consistent
    t = [ok(0, 80.2), ok(1, 90.2), ok(2, 70.2)]
    b = [ok(0, 80.0), ok(1, 90.0), ok(2, 70.0)]
    v = judge(delta("higher", 0.1), t, b)
    assert v.status == "reproduced"
    assert v.summary.mean == pytest.approx(0.2) and v.summary.std == pytest.approx(0.0, abs=1e-9)


def test_delta_lower():
    t = [ok(0, 5.0), ok(1, 5.1), ok(2, 4.9)]
    b = [ok(0, 7.0), ok(1, 7.2), ok(2, 7.0)]
    assert judge(delta("lower", 1.0), t, b).status == "reproduced"  # diff ≈ −2 ≤ −1
    assert judge(delta("lower", 3.0), t, b).status == "not reproduced"
    assert judge(delta("higher", 0.0), t, b).status == "not reproduced"


def test_delta_equal():
    t = [ok(0, 90.0), ok(1, 90.1), ok(2, 89.9)]
    b = [ok(0, 90.05), ok(1, 90.0), ok(2, 90.0)]
    assert judge(delta("equal", tolerance=1.0), t, b).status == "reproduced"
    assert judge(delta("equal", tolerance=0.0), t, b).status in ("inconclusive",
                                                                 "not reproduced")


def test_delta_too_few_pairs_is_inconclusive():
    v = judge(delta("higher"), [ok(0, 2.0), ok(1, 2.0)], [ok(0, 1.0), ok(3, 1.0)])
    assert v.status == "inconclusive" and "paired seeds" in v.message


def test_delta_pending_until_baseline_runs():
    v = judge(delta("higher"), obs(2.0, 2.0), [])
    assert v.status == "pending"
    v = judge(delta("higher"), obs(2.0, 2.0), None)
    assert v.status == "pending"


def test_delta_baseline_failures():
    bad = [Observation(0, "error", {}, "oom"), Observation(1, "error", {}, "oom")]
    v = judge(delta("higher"), obs(2.0, 2.0), bad)
    assert v.status == "error" and "oom" in v.message


@pytest.mark.parametrize("bad", [{"top5": 1.0}, {"top1": math.nan}])
def test_delta_baseline_missing_metric_is_an_error(bad):
    t = obs(2.0, 2.1, 2.2)
    b = [ok(0, 1.0), ok(1, 1.0), Observation(2, "ok", bad)]
    v = judge(delta("higher"), t, b, min_runs=3)
    assert v.status == "error"
