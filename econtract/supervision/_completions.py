"""The overview's completion times: the median and the 90th percentile of the time from an
envelope's start to its completion, per initiating department, exact, without sorting every
duration of the period.

Each duration (in microseconds, the timestamps' own precision) falls in a bin
(:func:`duration_bin`: under a second, then 64 bins per doubling of whole seconds), and bins
grow with the duration. When a day is rolled up, its completed envelopes are written with
their durations and bins (:class:`Completion`), and per initiator the cumulative count of
each bin over the rolled-up days up to that day (:class:`CompletionTotal`). A period's count
per bin is then the difference of two cumulative rows per initiator, plus the durations of
its days not rolled up (read live); the bin of the value of rank ``r`` follows from the
counts, and only the durations of that bin are read and sorted. The numbers are those of
sorting every duration (:func:`econtract.supervision._overview.percentile`): the same values
at the same ranks, the same interpolation.

Steps of a read: the rolled-up counts per bin (one statement), the live durations of the
days not rolled up (one per run of them), the bins' durations (one statement).
"""

from __future__ import annotations

import json
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any

from sqlalchemy import delete, func, insert, select, tuple_
from sqlalchemy.orm import Session, aliased

from econtract.envelopes import Envelope
from econtract.models import Department
from econtract.supervision._conditions import Period, as_date, china_day, completed_in
from econtract.supervision._rollup_models import Completion, CompletionTotal

#: The percentiles the figure shows, with their labels.
FRACTIONS = (("median", 0.5), ("p90", 0.9))
#: Bins per doubling of a duration: 2 ** 6 (a bin is at most 1/64 of its lower bound wide).
_MANTISSA_BITS = 6
_MICROSECOND = timedelta(microseconds=1)


def duration_bin(micros: int) -> int:
    """The bin of a duration in microseconds: 0 under a whole second, then 64 per doubling
    of the whole seconds; never smaller for a longer duration (integers only, so that every
    process bins alike)."""
    seconds = micros // 1_000_000
    if seconds <= 0:
        return 0
    exponent = seconds.bit_length() - 1
    shift = exponent - _MANTISSA_BITS
    # The leading 7 bits of the seconds: 64 to 127.
    leading = seconds >> shift if shift >= 0 else seconds << -shift
    return 1 + (exponent << _MANTISSA_BITS) + leading - (1 << _MANTISSA_BITS)


def micros_between(started: datetime, finished: datetime) -> int:
    """The microseconds from ``started`` to ``finished``."""
    return (finished - started) // _MICROSECOND


# --- writing, when days are rolled up ---------------------------------------------------------


def write_completions(session: Session, period: Period) -> None:
    """Write the envelopes completed on the period's days (their rows deleted before), then
    the cumulative counts from the period's first day on (later rolled-up days included: a
    day rolled up again changes every total after it)."""
    rows = session.execute(
        select(
            Envelope.id,
            Envelope.initiator_id,
            Envelope.created_at,
            Envelope.completed_at,
            china_day(session, Envelope.completed_at),
        ).where(completed_in(period, None))
    ).all()
    values = []
    for envelope_id, initiator, started, finished, day in rows:
        micros = micros_between(started, finished)
        values.append(
            {
                "initiator_id": initiator,
                "bin": duration_bin(micros),
                "day": as_date(day),
                "micros": micros,
                "envelope_id": envelope_id,
            }
        )
    if values:
        session.execute(insert(Completion), values)
    _write_totals(session, period.since)


def _write_totals(session: Session, since: date) -> None:
    session.execute(delete(CompletionTotal).where(CompletionTotal.day >= since))
    later = aliased(CompletionTotal)
    latest = (
        select(func.max(later.day))
        .where(later.initiator_id == CompletionTotal.initiator_id, later.day < since)
        .scalar_subquery()
    )
    totals: dict[int, list[int]] = {
        initiator: json.loads(counts)
        for initiator, counts in session.execute(
            select(CompletionTotal.initiator_id, CompletionTotal.counts).where(
                CompletionTotal.day == latest
            )
        )
    }
    per_day = session.execute(
        select(Completion.initiator_id, Completion.day, Completion.bin, func.count())
        .where(Completion.day >= since)
        .group_by(Completion.initiator_id, Completion.day, Completion.bin)
        .order_by(Completion.initiator_id, Completion.day)
    ).all()
    days: dict[tuple[int, date], list[tuple[int, int]]] = defaultdict(list)
    for initiator, day, bin_, n in per_day:
        days[initiator, as_date(day)].append((bin_, int(n)))
    values = []
    for (initiator, day), bins in days.items():  # in order of initiator, then day
        counts = list(totals.get(initiator, ()))
        for bin_, n in bins:
            if bin_ >= len(counts):
                counts += [0] * (bin_ + 1 - len(counts))
            counts[bin_] += n
        totals[initiator] = counts
        values.append({"initiator_id": initiator, "day": day, "counts": json.dumps(counts)})
    if values:
        session.execute(insert(CompletionTotal), values)


# --- reading, for the figure ------------------------------------------------------------------


def completion_percentiles(
    session: Session, period: Period, department_id: int | None, live: Sequence[Period]
) -> list[tuple[int, float, float]]:
    """``(initiator, median, p90)`` in seconds for each department that completed
    envelopes in the period; ``live`` are the runs of its days not rolled up."""
    bins = _rolled_bins(session, period, department_id)
    # The live durations by initiator and bin.
    live_bins: dict[int, dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for run in live:
        for initiator, started, finished in session.connection().execute(
            select(Envelope.initiator_id, Envelope.created_at, Envelope.completed_at).where(
                completed_in(run, department_id)
            )
        ):
            assert finished is not None  # completed in the run
            micros = micros_between(started, finished)
            live_bins[initiator][duration_bin(micros)].append(micros)
    for initiator, by_bin in live_bins.items():
        counts = bins.setdefault(initiator, [])
        top = max(by_bin) + 1
        if top > len(counts):
            counts += [0] * (top - len(counts))
        for bin_, durations in by_bin.items():
            counts[bin_] += len(durations)
    # The ranks each percentile needs, the bins they fall in, and the count below each bin.
    wanted: dict[int, list[tuple[int, int, float]]] = {}
    below: dict[int, list[int]] = {}
    needed: set[tuple[int, int]] = set()
    for initiator, counts in bins.items():
        running = list(accumulate(counts))
        total = running[-1] if running else 0
        if not total:
            continue
        below[initiator] = running
        ranks = []
        for _, fraction in FRACTIONS:
            position = fraction * (total - 1)
            low = math.floor(position)
            ranks.append((low, min(low + 1, total - 1), position - low))
        wanted[initiator] = ranks
        needed |= {
            (initiator, bisect_right(running, rank))
            for low, high, _ in ranks
            for rank in (low, high)
        }
    rolled = _bin_values(session, period, needed)
    figures: list[tuple[int, float, float]] = []
    for initiator, ranks in wanted.items():
        running = below[initiator]
        ordered: dict[int, list[int]] = {}
        values = []
        for low, high, part in ranks:
            lo, hi = (
                _value_of_rank(initiator, rank, running, ordered, rolled, live_bins) / 1_000_000
                for rank in (low, high)
            )
            values.append(lo + (hi - lo) * part)
        figures.append((initiator, values[0], values[1]))
    return figures


def _rolled_bins(
    session: Session, period: Period, department_id: int | None
) -> dict[int, list[int]]:
    """Per initiator, the count of each bin over the period's rolled-up days: the last
    cumulative row before the period's end less the last before its start."""

    def last_before(day: date) -> Any:
        return (
            select(CompletionTotal.counts)
            .where(CompletionTotal.initiator_id == Department.id, CompletionTotal.day < day)
            .order_by(CompletionTotal.day.desc())
            .limit(1)
            .scalar_subquery()
        )

    stmt = select(Department.id, last_before(period.until), last_before(period.since))
    if department_id is not None:
        stmt = stmt.where(Department.id == department_id)
    bins = {}
    for initiator, until, since in session.connection().execute(stmt):
        if until is None or until == since:
            continue
        counts: list[int] = json.loads(until)
        if since is not None:
            # A bin the initiator had no envelope in before the period is not in ``since``.
            before: list[int] = json.loads(since)
            counts[: len(before)] = [n - m for n, m in zip(counts, before, strict=False)]
        bins[initiator] = counts
    return bins


def _bin_values(
    session: Session, period: Period, needed: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], list[int]]:
    """The rolled-up durations of the period in each ``(initiator, bin)``."""
    found: dict[tuple[int, int], list[int]] = defaultdict(list)
    pairs = sorted(needed)
    if not pairs:
        return found
    # A row IN list: PostgreSQL reads it as one index range per pair.
    stmt = select(Completion.initiator_id, Completion.bin, Completion.micros).where(
        tuple_(Completion.initiator_id, Completion.bin).in_(pairs),
        Completion.day >= period.since,
        Completion.day < period.until,
    )
    for initiator, bin_, micros in session.connection().execute(stmt).all():
        found[initiator, bin_].append(micros)
    return found


def _value_of_rank(
    initiator: int,
    rank: int,
    running: Sequence[int],
    ordered: dict[int, list[int]],
    rolled: dict[tuple[int, int], list[int]],
    live: dict[int, dict[int, list[int]]],
) -> int:
    """The duration of rank ``rank`` (from 0, shortest first) of the initiator's period;
    ``running`` counts the durations up to each bin, ``ordered`` keeps the bins sorted."""
    bin_ = bisect_right(running, rank)
    if bin_ not in ordered:
        ordered[bin_] = sorted([*rolled.get((initiator, bin_), ()), *live[initiator][bin_]])
    return ordered[bin_][rank - (running[bin_ - 1] if bin_ else 0)]
