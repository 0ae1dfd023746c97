"""Timing helpers shared by the benchmarks: repeated runs, median with min and max, and two
contenders compared in alternating pairs of blocks."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    """Operations per second over repeated runs."""

    name: str
    """What was measured."""
    per_second: tuple[float, ...]
    """The rate of each repetition."""

    @property
    def median(self) -> float:
        """Median rate."""
        return statistics.median(self.per_second)

    def line(self, unit: str = "docs/s") -> str:
        """One printable line: median, min and max."""
        return (
            f"{self.name:<48} {self.median:10.1f} {unit}  "
            f"(min {min(self.per_second):.1f}, max {max(self.per_second):.1f}, "
            f"n={len(self.per_second)})"
        )


def measure_rate(
    name: str, operation: Callable[[], object], *, count: int, repeats: int = 3, warmup: int = 1
) -> Rate:
    """Run ``operation`` ``count`` times per repetition and return the rates."""
    for _ in range(warmup):
        operation()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(count):
            operation()
        rates.append(count / (time.perf_counter() - started))
    return Rate(name=name, per_second=tuple(rates))


def ratio_line(label: str, project: Rate, baseline: Rate, target: str = "") -> str:
    """A line giving project / baseline."""
    value = project.median / baseline.median
    return f"{label:<48} {value:10.2f}x  {target}".rstrip()


@dataclass(frozen=True)
class Comparison:
    """Two contenders timed in alternating blocks of the same size: block ``i`` of the first
    and block ``i`` of the second ran back to back, so they form a pair."""

    first: Rate
    """The first contender's rate in each block."""
    second: Rate
    """The second contender's rate in each block."""

    @property
    def rate_ratios(self) -> tuple[float, ...]:
        """First rate / second rate, pair by pair."""
        pairs = zip(self.first.per_second, self.second.per_second, strict=True)
        return tuple(first / second for first, second in pairs)

    @property
    def rate_ratio(self) -> float:
        """Median of the pairs' rate ratios, first / second.

        A pair's two blocks ran within a fraction of a second of each other, so the drift of a
        shared machine (a neighbour's load, the host's frequency) cancels within a pair; the
        median leaves out the pairs that one blip hit on one side only.
        """
        return statistics.median(self.rate_ratios)

    @property
    def time_ratio(self) -> float:
        """Median of the pairs' ratios of time per operation, first / second."""
        return statistics.median(1 / ratio for ratio in self.rate_ratios)

    def quartiles(self, *, times: bool = False) -> tuple[float, float]:
        """The first and third quartiles of the pairs' rate ratios (or time ratios)."""
        values = [1 / r for r in self.rate_ratios] if times else list(self.rate_ratios)
        if len(values) < 2:
            return values[0], values[0]
        low, _, high = statistics.quantiles(values, n=4)
        return low, high


def compare(
    first: tuple[str, Callable[[], object]],
    second: tuple[str, Callable[[], object]],
    *,
    count: int,
    repeats: int,
) -> Comparison:
    """``repeats`` pairs of blocks of ``count`` operations of each contender.

    The order alternates from pair to pair (first-second, then second-first), so that neither
    contender always inherits the other's warm or cold caches.
    """
    contenders = (first, second)
    for _, operation in contenders:
        operation()  # warm-up: imports, caches, the first allocation of each size
    rates: tuple[list[float], list[float]] = ([], [])
    for pair in range(repeats):
        for index in (0, 1) if pair % 2 == 0 else (1, 0):
            rates[index].extend(
                measure_rate(
                    contenders[index][0], contenders[index][1], count=count, repeats=1, warmup=0
                ).per_second
            )
    return Comparison(
        first=Rate(name=first[0], per_second=tuple(rates[0])),
        second=Rate(name=second[0], per_second=tuple(rates[1])),
    )


def cpu_time_ratio(
    first: Callable[[], object], second: Callable[[], object], *, count: int, rounds: int
) -> tuple[float, float, float]:
    """CPU time per operation of ``first`` over ``second``: median, min and max of ``rounds``
    rounds of ``count`` operations each, the order alternating from round to round.

    On a shared machine the wall-clock rates count the time spent waiting for a core; the
    process's CPU time does not, and alternating gives both the same conditions.
    """
    ratios = []
    for round_ in range(rounds):
        spent = [0.0, 0.0]
        operations = (first, second)
        for index in (0, 1) if round_ % 2 == 0 else (1, 0):
            started = time.process_time()
            for _ in range(count):
                operations[index]()
            spent[index] = time.process_time() - started
        ratios.append(spent[0] / spent[1])
    return statistics.median(ratios), min(ratios), max(ratios)
