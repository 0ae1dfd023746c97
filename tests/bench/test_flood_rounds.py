"""The upload flood benchmark's rounds (``bench.bench_flood``): the phases alternate from
round to round, and the verdict is the p99 of every round's answers pooled."""

from __future__ import annotations

import pytest

from bench.bench_flood import FLOODED, UNLOADED, Answers, p99_ratios, pooled, round_order


def test_the_phases_alternate_from_round_to_round() -> None:
    assert round_order(4) == [
        (UNLOADED, FLOODED),
        (FLOODED, UNLOADED),
        (UNLOADED, FLOODED),
        (FLOODED, UNLOADED),
    ]
    assert round_order(1) == [(UNLOADED, FLOODED)]


def test_a_quiet_round_does_not_average_a_bad_rounds_tail_away() -> None:
    unloaded = [Answers([1.0] * 100), Answers([1.0] * 100)]
    flooded = [Answers([3.0] * 100), Answers([1.0] * 100)]

    ratio, each = p99_ratios(unloaded, flooded)

    assert each == [3.0, 1.0]
    # Half of the pooled flooded answers took 3 ms: the pooled p99 is 3 ms, not a mean of 2.
    assert ratio == 3.0


def test_the_pooled_p99_is_of_all_answers_and_errors_add_up() -> None:
    rounds = [Answers([float(n) for n in range(1, 101)], errors=1), Answers([0.5] * 100, errors=2)]

    result = pooled(rounds)

    assert result.n == 200
    assert result.errors == 3
    # 200 answers: the p99 is the 198th smallest, 98 of the first round's.
    assert result.p99_ms == 98.0
    assert result.p50_ms == pytest.approx(0.5)
