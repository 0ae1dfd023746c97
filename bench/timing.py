"""Timing helpers shared by the benchmarks: repeated runs, median with min and max."""

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
