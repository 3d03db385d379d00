"""Enough evidence: seeds-needed estimates, the sequential look schedule with alpha spending,
a simulation of its error rate, and ``--until-decided`` end to end (in-process runs)."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest

from suite import db, report
from suite.claims import parse_claims
from suite.plan import make_plan
from suite.regression import InProcessRunner
from suite.scheduler import Outcome
from suite.sequential import (
    extend_until_decided,
    extension_seeds,
    look_alpha,
    look_index,
    look_sizes,
    next_step,
)
from suite.specs import Expect
from suite.verdict import Observation, Summary, judge, seeds_to_decide, t_crit

pytestmark = pytest.mark.usefixtures("one_thread")


def obs(*values: float) -> list[Observation]:
    return [Observation(i, "ok", {"top1": v}) for i, v in enumerate(values)]


# -- seeds needed --------------------------------------------------------------------------
@pytest.mark.parametrize("mean,std,border,alpha", [(1.0, 1.0, 0.0, 0.05), (0.3, 1.0, 0.0, 0.05),
                                                   (5.0, 2.0, 4.0, 0.01), (-1.0, 0.5, 0.0, 0.025)])
def test_seeds_to_decide_is_the_smallest_deciding_n(mean, std, border, alpha):
    s = Summary(3, mean, std, -math.inf, math.inf)
    n = seeds_to_decide(s, border, math.inf, alpha)
    d = abs(mean - border)
    assert t_crit(n - 1, alpha) * std / math.sqrt(n) < d  # n decides ...
    assert n == 2 or t_crit(n - 2, alpha) * std / math.sqrt(n - 1) >= d  # ... n - 1 does not


def test_seeds_to_decide_edge_cases():
    assert seeds_to_decide(Summary(1, 1.0, math.nan, -math.inf, math.inf), 0, 1) is None
    assert seeds_to_decide(Summary(3, 1.0, 0.0, 1.0, 1.0), 0, 2) is None  # no spread
    assert seeds_to_decide(Summary(3, 1.0, 1.0, 0, 2), 1.0, math.inf) is None  # on the border
    assert seeds_to_decide(Summary(3, 1.0, 1e3, 0, 2), 0.0, math.inf, cap=50) == 51
    # two borders: the nearer one decides how many seeds it takes
    two = seeds_to_decide(Summary(3, 0.5, 1.0, 0, 1), 0.4, 3.0)
    assert two == seeds_to_decide(Summary(3, 0.5, 1.0, 0, 1), 0.4, math.inf)


def test_inconclusive_verdict_says_how_many_seeds():
    e = Expect(kind="absolute", metric="top1", direction="higher", value=10.0)
    v = judge(e, obs(10.5, 11.5, 10.0))  # mean 10.67, interval straddles 10
    assert v.status == "inconclusive" and v.needed is not None and v.needed > 3
    assert f"≈{v.needed} seeds would decide it" in v.message
    assert report.verdict_label(v) == f"inconclusive (≈{v.needed} seeds)"
    d = Expect(kind="delta", metric="top1", direction="higher", min_diff=0.0,
               baseline={"model": "x"})
    v = judge(d, obs(1.0, -0.2, 0.8), obs(0.0, 0.0, 0.0))
    assert v.status == "inconclusive" and "paired seeds would decide it" in v.message
    assert judge(e, obs(12.0, 12.5, 13.0)).needed is None  # decided: nothing to add


def test_stricter_alpha_widens_the_interval():
    e = Expect(kind="absolute", metric="top1", direction="higher", value=10.0)
    values = obs(10.9, 11.4, 11.1, 11.6, 10.8, 11.2)
    v95, v99 = judge(e, values), judge(e, values, alpha=0.0125, look=2)
    assert v99.summary.lo < v95.summary.lo and v99.summary.hi > v95.summary.hi
    assert v99.alpha == 0.0125 and v99.look == 2 and "98.75% CI" in v99.message
    assert report.verdict_label(v99).endswith("(look 2)")


# -- the look schedule -----------------------------------------------------------------------
def test_look_schedule_and_alpha_spending():
    assert look_sizes(3, 10) == [6, 10]
    assert look_sizes(3, 12) == [6, 12]
    assert look_sizes(2, 10) == [4, 8, 10]
    assert look_sizes(3, 3) == []
    assert [look_index(3, n) for n in (2, 3, 4, 6, 7, 12, 13)] == [0, 0, 1, 1, 2, 2, 3]
    assert [look_alpha(k) for k in range(4)] == [0.05, 0.025, 0.0125, 0.00625]
    assert sum(look_alpha(k) for k in range(1, 60)) <= 0.05  # extra looks: ≤ α in all
    # every scheduled size falls in its own look
    for n0, cap in ((3, 20), (2, 9), (5, 64)):
        assert [look_index(n0, m) for m in look_sizes(n0, cap)] == list(
            range(1, len(look_sizes(n0, cap)) + 1))


def test_extension_seeds_are_deterministic_and_fresh():
    assert extension_seeds((0, 1, 2), 6) == [3, 4, 5]
    assert extension_seeds((7777, 1, 2), 5) == [0, 3]
    assert extension_seeds((0, 1, 2), 3) == []


def test_next_step_jumps_to_the_first_look_that_would_decide():
    e = Expect(kind="absolute", metric="top1", direction="higher", value=10.0)
    v = judge(e, obs(10.5, 11.5, 10.0))
    step = next_step("c", v, 3, 48)
    need6 = seeds_to_decide(v.summary, *v.region, look_alpha(1))
    assert step.target is not None and step.target in look_sizes(3, 48)
    assert step.target == 6 if need6 <= 6 else step.target > 6
    assert next_step("c", v, 3, 3).target is None  # already at --max-seeds
    decided = judge(e, obs(12.0, 12.5, 13.0))
    assert next_step("c", decided, 3, 12).target is None
    on_border = judge(e, obs(9.0, 11.0, 10.0))
    assert "sits on a border" in next_step("c", on_border, 3, 12).reason


def test_alpha_spending_bounds_the_error_of_adding_seeds_after_looking():
    """Simulation: a claim whose true mean sits on the border (reproduced is the truth);
    keep adding seeds while inconclusive. With 95% at every look the wrong-verdict rate
    grows with the looks; with alpha spending it stays ≤ α/2 (look 0) + α/2 (the rest)."""
    rng = np.random.default_rng(0)
    trials, n0, cap = 20000, 3, 48
    sizes = [n0, *look_sizes(n0, cap)]
    x = rng.normal(0.0, 1.0, size=(trials, cap))  # border at 0, region [0, ∞)

    def wrong_rate(alpha_of) -> float:
        wrong = np.zeros(trials, bool)
        open_ = np.ones(trials, bool)
        for k, n in enumerate(sizes):
            m = x[:, :n].mean(1)
            half = t_crit(n - 1, alpha_of(k)) * x[:, :n].std(1, ddof=1) / math.sqrt(n)
            wrong |= open_ & (m + half < 0)  # "not reproduced" although truth is inside
            open_ &= (m - half < 0) & (m + half >= 0)  # still straddling: add seeds
        return wrong.mean()

    naive = wrong_rate(lambda k: 0.05)
    spent = wrong_rate(look_alpha)
    assert spent <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / trials)
    assert naive > spent + 0.01  # the uncorrected procedure is measurably worse
    fixed = wrong_rate(lambda k: 0.05 if k == 0 else 0.0)
    assert fixed == pytest.approx(0.025, abs=0.005)  # one look: α/2 on one side


# -- until-decided end to end ---------------------------------------------------------------
def _claim(value: float, seeds=(0, 1)) -> dict:
    return {"papers": {"demo": {"title": "demo"}}, "claim": [{
        "id": "demo/seq", "paper": "demo", "source": "s", "task": "train_eval",
        "model": "test_cnn", "dataset": "synthetic", "model_args": {"width": 4},
        "dataset_args": {"train_size": 64, "test_size": 64, "size": 16, "num_classes": 4},
        "params": {"epochs": 1, "batch_size": 32, "lr": 0.05},
        "seeds": list(seeds),
        "expect": {"kind": "absolute", "metric": "top1", "direction": "higher",
                   "value": value}}]}


class _Quiet:
    def print(self, *a, **k) -> None:
        pass


def test_until_decided_adds_seeds_and_the_report_judges_them_at_their_look(tmp_path):
    engine = db.connect(f"sqlite:///{tmp_path / 'r.db'}")
    runner = InProcessRunner(engine)
    _, claims = parse_claims(_claim(0.0))
    runner.run(make_plan(claims, "full").runs)
    first = report.claim_rows(engine, claims, "full")[0].verdict
    a, b = first.values
    if a == b:
        pytest.skip("both seeds gave the same accuracy; no spread to straddle")
    # a border just below the mean: the 2-seed interval straddles it
    _, claims = parse_claims(_claim(first.summary.mean - 0.05 * abs(a - b)))
    row = report.claim_rows(engine, claims, "full")[0]
    assert report.straddles(row) and row.verdict.look == 0
    outcome = Outcome()
    steps = extend_until_decided(engine, runner, claims, "full", 4, None, outcome, _Quiet())
    assert {r["spec"]["seed"] for r in outcome.ran} == {2, 3}  # extension seeds, look 1 = 4
    assert "already 4 seeds" in steps[0].reason  # the last step: nothing more to add
    row = report.claim_rows(engine, claims, "full")[0]
    assert row.verdict.summary.n == 4 and row.verdict.look == 1
    assert row.verdict.alpha == 0.025 and row.verdict.message.startswith("sequential look 1")
    # the dashboard judges the same extended claim the same way (its light run records)
    dash = importlib.import_module("dashboard.queries.verdicts")  # (a function shadows it)
    lite = dash.load_runs(engine, dash.judged_metrics(claims))
    drow = dash.verdicts(claims, lite, ["full"])[0]
    assert (drow.verdict.status, drow.verdict.message, drow.verdict.look) == (
        row.verdict.status, row.verdict.message, 1)
    frame = dash.overview_frame([drow])
    assert frame.loc[0, "n"] == frame.loc[0, "planned"] == 4
    assert frame.loc[0, "ours"].endswith("(97.5%, look 1)")
    # the committed-seeds view is unchanged, and a --seeds override never mixes extra seeds in
    assert report.claim_rows(engine, claims, "full", sequential=False)[0].verdict.summary.n == 2
    assert report.claim_rows(engine, claims, "full", seeds=(0, 1))[0].verdict.look == 0


@pytest.mark.parametrize("argv,msg", [
    (["--until-decided"], "needs --max-seeds"),
    (["--max-seeds", "8"], "only applies with --until-decided"),
    (["--until-decided", "--max-seeds", "8", "--seeds", "0,1"], "drop --seeds"),
])
def test_until_decided_flag_errors(argv, msg, tmp_path, capsys):
    from suite.cli import main

    rc = main(["--db", f"sqlite:///{tmp_path / 'r.db'}", "run", "--tier", "smoke", *argv])
    assert rc == 2 and msg in capsys.readouterr().err
    assert not (tmp_path / "r.db").exists()  # nothing written
