"""The benchmarks' pairing of two contenders (``bench.timing.compare``): blocks back to back,
the order alternating, each ratio the median of the pairs' ratios."""

from __future__ import annotations

import time

import pytest

from bench.timing import Comparison, Rate, compare, cpu_time_ratio


def test_blocks_alternate_and_pair_up() -> None:
    calls: list[str] = []
    comparison = compare(
        ("a", lambda: calls.append("a")), ("b", lambda: calls.append("b")), count=2, repeats=4
    )
    # One warm-up call each, then pairs of two-call blocks: a-b, b-a, a-b, b-a.
    assert "".join(calls) == "ab" + "aabb" + "bbaa" + "aabb" + "bbaa"
    assert len(comparison.first.per_second) == len(comparison.second.per_second) == 4
    assert comparison.first.name == "a"
    assert comparison.second.name == "b"


def test_a_slower_contender_has_a_lower_rate_ratio() -> None:
    comparison = compare(
        ("slow", lambda: time.sleep(0.004)), ("fast", lambda: time.sleep(0.001)), count=3, repeats=3
    )
    assert comparison.rate_ratio < 0.6
    assert comparison.time_ratio > 1.6


def test_ratios_are_medians_of_the_pairs() -> None:
    # Pair 2 was hit by a blip on one side only: the median leaves it out, the ratio of the
    # median rates would not.
    comparison = Comparison(
        first=Rate(name="a", per_second=(100.0, 100.0, 10.0)),
        second=Rate(name="b", per_second=(50.0, 50.0, 50.0)),
    )
    assert comparison.rate_ratios == (2.0, 2.0, 0.2)
    assert comparison.rate_ratio == 2.0
    assert comparison.time_ratio == 0.5
    low, high = comparison.quartiles()
    assert low <= 2.0 <= high
    assert comparison.quartiles(times=True)[1] >= 0.5


def test_one_pair_has_its_own_ratio_as_quartiles() -> None:
    comparison = Comparison(
        first=Rate(name="a", per_second=(30.0,)), second=Rate(name="b", per_second=(10.0,))
    )
    assert comparison.quartiles() == (3.0, 3.0)
    assert comparison.quartiles(times=True) == pytest.approx((1 / 3, 1 / 3))


def test_cpu_time_ratio_sees_work_not_sleep() -> None:
    def work() -> None:
        sum(range(20_000))

    median, low, high = cpu_time_ratio(work, lambda: time.sleep(0.002), count=5, rounds=3)
    # Sleeping costs no CPU time: the worker's share is far above the sleeper's.
    assert low <= median <= high
    assert median > 2
