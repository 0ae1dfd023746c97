"""Rendering a licence of a template seen before: CPU per licence of the project's renderer
against a naive reportlab script drawing the same fields, in the same run.

    python -m bench.bench_render [--count 60] [--repeats 5]

Each licence has a holder and a number of its own (the sample holders in turn), so that only
what never changes between licences of one template may be reused: the font's glyph subsets,
the QR code's drawing, the layout of the fixed parts. The figures are CPU time per licence
(``time.process_time``), which the machine's other load disturbs less than wall time; the
median of ``--repeats`` rounds of ``--count`` licences, alternating the two renderers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import statistics
import time
from collections.abc import Callable

from bench.bench_issuance import TYPE_CODE, distinct_holders, render_naive_licence
from econtract.issuance import TEMPLATES, LicenceContent, render_licence

_TARGET_MS = 10.0
_DEPARTMENT = "杭州市市场监督管理局"
# As long as a real verification URL (a signed token of ~330 characters).
_URL = "http://127.0.0.1:8000/v/" + "x" * 330


def _project(number: int, fields: dict[str, object]) -> None:
    template = TEMPLATES[TYPE_CODE]
    today = datetime.date.today()
    render_licence(
        LicenceContent(
            template=template,
            fields=fields,
            number=f"YYZZ330100{today.year}{number:06d}",
            department_name=_DEPARTMENT,
            issued_on=today,
            valid_from=today,
            valid_until=template.valid_until(fields, today),
            verify_url=_URL,
        )
    )


def _naive(number: int, fields: dict[str, object]) -> None:
    render_naive_licence(dict(fields), f"YYZZ{number:06d}", _URL)


def _cpu_ms(
    render: Callable[[int, dict[str, object]], None], holders: list[dict[str, object]], start: int
) -> float:
    """CPU milliseconds per licence over ``holders``, numbered from ``start``."""
    began = time.process_time()
    for offset, fields in enumerate(holders):
        render(start + offset, fields)
    return (time.process_time() - began) * 1000 / len(holders)


def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="licences per round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds of each renderer")
    args = parser.parse_args()
    holders: list[dict[str, object]] = list(distinct_holders(args.count))
    # The first licence of the template in this process, then warm both renderers.
    first = _cpu_ms(_project, holders[:1], 0)
    _cpu_ms(_naive, holders[:3], 0)
    _cpu_ms(_project, holders[:3], 1)
    ours: list[float] = []
    naive: list[float] = []
    for round_ in range(args.repeats):
        start = (round_ + 1) * args.count
        naive.append(_cpu_ms(_naive, holders, start))
        ours.append(_cpu_ms(_project, holders, start))
    ours_ms, naive_ms = statistics.median(ours), statistics.median(naive)
    print(f"rendering a business licence again; {args.count} holders x {args.repeats} rounds")
    print(f"{'first licence of the template (project)':<48} {first:8.1f} ms CPU")
    print(
        f"{'project render_licence, CPU per licence':<48} {ours_ms:8.1f} ms "
        f"(min {min(ours):.1f}, max {max(ours):.1f})"
    )
    print(
        f"{'naive reportlab script, CPU per licence':<48} {naive_ms:8.1f} ms "
        f"(min {min(naive):.1f}, max {max(naive):.1f})"
    )
    print(f"{'time ratio project / naive':<48} {ours_ms / naive_ms:8.2f}x")
    met = "met" if ours_ms <= _TARGET_MS else "not met"
    print(f"{'target: project <= 10 ms per licence':<48} {met}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
