"""Command-line start-up benchmark: how long ``econtract`` takes to answer help and usage errors.

Run::

    .venv/bin/python -m bench.bench_cli [--runs N]

Runs each command ``--runs`` times (default 15, after one warm-up run) as a fresh process, the
way a person at a terminal does: ``econtract --help``, a usage error (``econtract verify`` with
no file, exit 64) and ``econtract verify --help``; and, as the baseline in the same run, the
interpreter alone (``python -c pass``). Prints the wall time of each (median, min, max) and the
ratio to the baseline, with the target: help and usage errors well under 0.3 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: The console script installed next to this interpreter.
ECONTRACT = str(Path(sys.executable).with_name("econtract"))

#: What is timed: a label, the command, and the exit status it must give.
COMMANDS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("econtract --help", (ECONTRACT, "--help"), 0),
    ("econtract verify (usage error)", (ECONTRACT, "verify"), 64),
    ("econtract verify --help", (ECONTRACT, "verify", "--help"), 0),
)
BASELINE = ("python -c pass", (sys.executable, "-c", "pass"), 0)
TARGET_SECONDS = 0.3


@dataclass(frozen=True)
class Timing:
    """Wall times of one command over the runs."""

    name: str
    """What was run."""
    seconds: tuple[float, ...]
    """The wall time of each run."""

    @property
    def median(self) -> float:
        """Median wall time."""
        return statistics.median(self.seconds)

    def line(self, baseline: Timing | None) -> str:
        """One printable line: median, min, max, and the ratio to the baseline."""
        ratio = f"  {self.median / baseline.median:6.1f}x baseline" if baseline else ""
        return (
            f"{self.name:<34} {self.median * 1000:7.0f} ms  (min {min(self.seconds) * 1000:.0f},"
            f" max {max(self.seconds) * 1000:.0f}, n={len(self.seconds)}){ratio}"
        )


def time_command(name: str, argv: tuple[str, ...], status: int, runs: int) -> Timing:
    """Run ``argv`` once to warm the file cache, then ``runs`` times, timing each."""
    seconds = []
    for index in range(runs + 1):
        started = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != status:
            raise SystemExit(
                f"{name} exited {done.returncode}, not {status}: {done.stderr.decode()[:200]}"
            )
        if index:
            seconds.append(elapsed)
    return Timing(name=name, seconds=tuple(seconds))


def main() -> None:
    """Time the commands and the baseline; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="Timed runs per command.")
    args = parser.parse_args()
    baseline = time_command(*BASELINE, runs=args.runs)
    print(baseline.line(None))
    worst = 0.0
    for name, argv, status in COMMANDS:
        timing = time_command(name, argv, status, args.runs)
        worst = max(worst, timing.median)
        print(timing.line(baseline))
    verdict = "met" if worst < TARGET_SECONDS else "NOT met"
    print(f"target: every median under {TARGET_SECONDS:.1f} s: {verdict} (slowest {worst:.3f} s)")


if __name__ == "__main__":
    main()
