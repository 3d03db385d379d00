"""loader_bench's timing helpers: interleaved, rotated rounds and paired medians."""

from __future__ import annotations

import pytest

from tasks.loader_bench import interleaved, paired_median


def test_interleaved_rotates_the_order_and_skips_warmup_rounds():
    calls = []

    def job(name):
        def f():
            calls.append(name)
            return 10
        return f

    rates = interleaved({"a": job("a"), "b": job("b"), "c": job("c")}, rounds=3, warmup=1)
    # round 0 is warm-up (a, b, c); the timed rounds start at b, then c, then a
    assert calls == list("abc" "bca" "cab" "abc")
    assert {k: len(v) for k, v in rates.items()} == {"a": 3, "b": 3, "c": 3}
    assert all(r > 0 for v in rates.values() for r in v)


def test_paired_median_pairs_rounds():
    # a slow round hits both loaders: pairing cancels it, a ratio of medians would not
    a = [10.0, 2.0, 10.0]
    b = [5.0, 1.0, 4.0]
    assert paired_median(a, b) == 2.0
    with pytest.raises(ValueError):
        paired_median([1.0], [1.0, 2.0])
