"""The overview's figures (电子监察总览), and the records behind each of their points.

A figure is one aggregate query over an indexed range of a period of China days
``[since, until)``, optionally for one department (a department admin's own, or the one a
supervisor picked): the database counts, Python only labels the groups. A timestamp is moved
to China time in SQL before it is cut to a day (PostgreSQL ``timezone('Asia/Shanghai', …)``,
SQLite ``date(…, '+8 hours')``; China has kept one offset since 1991).

The certificates' and envelopes' ranges are read through their (department, time) indexes,
one department at a time (``department_id IN (…)``: a few hundred bodies, not a million
rows). Status changes, uses and completions are read by time: their indexes are declared
below, beside the queries that need them, and made by migration 0022; the issuer of a use or
a status change is read from the licences' (id, department) index (migration 0023).

The counting figures (licences issued, status changes, uses by other departments, QR answers)
read the daily roll-ups (:mod:`econtract.supervision._rollup`) for the days rolled up, and the
records, as above, for the others (any day not rolled up yet, and of today, rolled up so far
to an instant an hour or two back, what came since): at a million licences a year's figure
reads a few rows a day. The two give the same numbers; a group of today's counted in both is
summed. So do the
envelopes by status: those of a rolled-up day are counted there once closed (a closed envelope
never changes again), the open ones are read live through the envelopes' status index (the
few in flight), and those closed since their day was rolled up are read one by one until the
worker counts them in. The completion times' exact percentiles read, for the days rolled
up, the count of durations per bin and the durations of the bins they fall in
(:mod:`econtract.supervision._completions`), not every duration of the period.

The records behind a point are listed by :mod:`econtract.supervision._drilldown`, through
the same conditions (the ``…_in`` and ``…_query`` functions of
:mod:`econtract.supervision._conditions`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from operator import attrgetter
from typing import Any

from sqlalchemy import (
    case,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from econtract.envelopes import Envelope, EnvelopeStatus
from econtract.models import (
    Certificate,
    CertificateType,
    Department,
    UsageRecord,
)
from econtract.services import Services
from econtract.supervision._completions import completion_percentiles
from econtract.supervision._conditions import (
    FAILED_QR_ANSWERS,
    DayCount,
    Period,
    Query,
    as_date,
    bodies,
    per_day,
    scans_in,
    started_in,
    use_query,
)
from econtract.supervision._models import ScanCount
from econtract.supervision._rollup_models import (
    EnvelopeDay,
    IssuedDay,
    OpenEnvelope,
    RolledUpDay,
    ScanDay,
    UseDay,
)


# Not frozen (nothing changes a point once made): a year's status changes on a large registry
# make thousands, and a frozen dataclass's construction cost three times as much. Positional
# arguments allowed for the same reason (keywords cost twice as much); the figures name them.
@dataclass(slots=True)
class Point:
    """One value of a figure, as a chart draws it, with the keys that name its records."""

    label: str
    """The series it belongs to (a chart's line or bar colour)."""
    x: str
    """Where it stands: a day ``2026-11-18``, a week ``2026-W47``, a status, a department."""
    y: float
    """Its value: a count, seconds or a share."""
    day: date | None = None
    """The day, or the Monday of the week, of a point in time."""
    department_id: int | None = None
    """The department the point is about: issuer, initiator or (uses) the using one."""
    other_department_id: int | None = None
    """A use's issuing department."""
    type_code: str | None = None
    status: str | None = None
    """A certificate's new status, or an envelope's."""
    reason: str | None = None
    """A status change's reason as given (``None`` when none was)."""


@dataclass(frozen=True, kw_only=True)
class Series:
    """A figure: its name and its points, in a stable order."""

    name: str
    points: tuple[Point, ...]


# --- the figures -------------------------------------------------------------------------------


def issued_per_day(
    services: Services, period: Period, *, department_id: int | None = None
) -> Series:
    """Certificates issued per China day, by issuing department and type."""
    return _issued(services, period, department_id, weekly=False)


def issued_per_week(
    services: Services, period: Period, *, department_id: int | None = None
) -> Series:
    """Certificates issued per ISO week (from Monday), by issuing department and type."""
    return _issued(services, period, department_id, weekly=True)


def _issued(
    services: Services, period: Period, department_id: int | None, *, weekly: bool
) -> Series:
    with services.sessions() as session:
        rows = issued_rows(session, period, department_id)
        names = _names(session, (keys[0] for _, keys, _ in rows))
        types = dict(session.execute(select(CertificateType.code, CertificateType.name)).all())
    if weekly:
        rows = _summed((_monday(day), keys, n) for day, keys, n in rows)
    points = [
        Point(
            label=f"{names[issuer]} · {types.get(type_code, type_code)}",
            x=_week_label(day) if weekly else day.isoformat(),
            y=n,
            day=day,
            department_id=issuer,
            type_code=type_code,
        )
        for day, (issuer, type_code), n in rows
    ]
    return Series(name="issued-per-week" if weekly else "issued-per-day", points=_sorted(points))


def issued_rows(session: Session, period: Period, department_id: int | None) -> list[DayCount]:
    """Licences issued per China day of the period: ``(day, (issuer, type), count)``, from
    the roll-ups for the days rolled up and from the licences for the others."""
    rolled = select(IssuedDay.day, IssuedDay.department_id, IssuedDay.type_code, IssuedDay.count)
    if department_id is not None:
        rolled = rolled.where(IssuedDay.department_id == department_id)
    rows = _rolled_rows(session, rolled, IssuedDay.day, period)
    runs = live_periods(session, period)
    fresh: list[DayCount] = []
    for live in runs:
        issued = select(Certificate).where(
            Certificate.department_id.in_(bodies(session, department_id)),
            Certificate.issued_at >= live.start,
            Certificate.issued_at < live.end,
        )
        fresh += per_day(
            session, issued, Certificate.issued_at, Certificate.department_id, Certificate.type_code
        )
    return _joined(rows, fresh, runs)


def envelopes_by_status(
    services: Services, period: Period, *, department_id: int | None = None
) -> Series:
    """Envelopes started in the period, by status now and initiating department."""
    with services.sessions() as session:
        counts = envelope_counts(session, period, department_id)
        names = _names(session, (initiator for initiator, _ in counts))
    points = [
        Point(label=names[initiator], x=status, y=n, department_id=initiator, status=status)
        for (initiator, status), n in counts.items()
    ]
    return Series(name="envelopes-by-status", points=_sorted(points))


def completion_times(
    services: Services, period: Period, *, department_id: int | None = None
) -> Series:
    """Seconds from an envelope's start to its completion, for the envelopes completed in
    the period, per initiating department: two points each, ``median`` and ``p90``
    (continuous percentiles, interpolated between the two nearest durations)."""
    with services.sessions() as session:
        figures = completion_percentiles(
            session, period, department_id, live_periods(session, period)
        )
        names = _names(session, (row[0] for row in figures))
    points = [
        # To the millisecond: a duration's microseconds are noise on a chart.
        Point(label=label, x=names[initiator], y=round(value, 3), department_id=initiator)
        for initiator, p50, p90 in figures
        for label, value in (("median", p50), ("p90", p90))
    ]
    return Series(name="completion-times", points=_sorted(points))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The continuous percentile of ``values`` (PostgreSQL's ``percentile_cont``)."""
    if not values:
        raise ValueError("A percentile needs at least one value.")
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def uses_by_other_departments(
    services: Services, period: Period, *, department_id: int | None = None
) -> Series:
    """Granted uses of licences by a department other than their issuer, per China day and
    (using department, issuing department); for one department, the uses it made of others'
    licences and the uses others made of its own."""
    with services.sessions() as session:
        rows = use_rows(session, period, department_id)
        names = _names(session, (body for _, keys, _ in rows for body in keys))
    points = [
        Point(
            label=f"{names[user]} → {names[issuer]}",
            x=day.isoformat(),
            y=n,
            day=day,
            department_id=user,
            other_department_id=issuer,
        )
        for day, (user, issuer), n in rows
    ]
    return Series(name="uses-by-other-departments", points=_sorted(points))


def scans_per_day(
    services: Services, period: Period, *, department_id: int | None = None
) -> Series:
    """QR scans per China day: three points a day, ``scans`` (every answer),
    ``forged-or-unknown`` and ``failed-share`` (their share of the day's scans, 0 to 1).

    For one department, the scans of its licences (a code that names no licence of the
    registry belongs to none)."""
    with services.sessions() as session:
        rows = scan_rows(session, period, department_id)
    points = []
    for day, total, bad in rows:
        x = day.isoformat()
        points += [
            Point(label="scans", x=x, y=total, day=day),
            Point(label="forged-or-unknown", x=x, y=bad, day=day),
            Point(label="failed-share", x=x, y=bad / total if total else 0.0, day=day),
        ]
    return Series(name="scans-per-day", points=_sorted(points))


# --- the rows of the counting figures: roll-ups for the days rolled up, live for the rest ------


def envelope_counts(
    session: Session, period: Period, department_id: int | None
) -> Counter[tuple[int, str]]:
    """Envelopes started in the period by ``(initiator, status now)``: the closed ones of the
    rolled-up days from their roll-up, the open ones from the records (every department's,
    through the index of the envelopes by status: a few hundred at most), the closed ones of
    the other days from the records; and those still open when their day was rolled up and
    closed since, until the worker counts them in.

    An envelope open now and started on a rolled-up day was open when its day was rolled up
    (a closed envelope never opens again), so it is one of :class:`OpenEnvelope`: when there
    are as many of them as there are such envelopes, none of them has closed since, and they
    need not be read one by one."""
    live = live_periods(session, period)
    counts: Counter[tuple[int, str]] = Counter()
    rolled = select(
        EnvelopeDay.initiator_id, EnvelopeDay.status, func.sum(EnvelopeDay.count)
    ).where(EnvelopeDay.day >= period.since, EnvelopeDay.day < period.until)
    if department_id is not None:
        rolled = rolled.where(EnvelopeDay.initiator_id == department_id)
    statements = [rolled.group_by(EnvelopeDay.initiator_id, EnvelopeDay.status)]
    statements += [
        select(Envelope.initiator_id, Envelope.status, func.count())
        .where(
            started_in(session, run, department_id),
            Envelope.status != EnvelopeStatus.OPEN.value,
        )
        .group_by(Envelope.initiator_id, Envelope.status)
        for run in live
    ]
    for stmt in statements:
        for initiator, status, n in session.connection().execute(stmt):
            counts[initiator, status] += int(n)
    # The open ones one by one (a few hundred at most, index only): whether one was started
    # in a part of the period rolled up is a matter of its instant, not only of its day.
    open_now = session.connection().execute(
        select(Envelope.initiator_id, Envelope.created_at).where(
            Envelope.status == EnvelopeStatus.OPEN.value,
            Envelope.created_at >= period.start,
            Envelope.created_at < period.end,
        )
    )
    open_on_rolled_days = 0
    for initiator, started in open_now:
        if not any(run.start <= started < run.end for run in live):
            open_on_rolled_days += 1
        if department_id is None or initiator == department_id:
            counts[initiator, EnvelopeStatus.OPEN.value] += 1
    pending = select(OpenEnvelope.envelope_id).where(
        OpenEnvelope.day >= period.since, OpenEnvelope.day < period.until
    )
    if session.scalar(select(func.count()).select_from(pending.subquery())) == open_on_rolled_days:
        return counts
    closed_since = select(Envelope.initiator_id, Envelope.status, func.count()).where(
        # Read by their key: joined to them, the planner read every envelope of the department.
        Envelope.id.in_(list(session.scalars(pending))),
        Envelope.status != EnvelopeStatus.OPEN.value,
    )
    if department_id is not None:
        closed_since = closed_since.where(Envelope.initiator_id == department_id)
    for initiator, status, n in session.execute(
        closed_since.group_by(Envelope.initiator_id, Envelope.status)
    ):
        counts[initiator, status] += int(n)
    return counts


def use_rows(session: Session, period: Period, department_id: int | None) -> list[DayCount]:
    """Granted uses of others' licences per China day of the period: ``(day, (using
    department, issuing department), count)``."""
    rolled = select(
        UseDay.day, UseDay.user_department_id, UseDay.issuer_department_id, UseDay.count
    )
    if department_id is not None:
        rolled = rolled.where(
            or_(
                UseDay.user_department_id == department_id,
                UseDay.issuer_department_id == department_id,
            )
        )
    rows = _rolled_rows(session, rolled, UseDay.day, period)
    runs = live_periods(session, period)
    fresh: list[DayCount] = []
    for live in runs:
        fresh += per_day(
            session,
            use_query(live, department_id),
            UsageRecord.created_at,
            UsageRecord.department_id,
            Certificate.department_id,
        )
    return _joined(rows, fresh, runs)


def scan_rows(
    session: Session, period: Period, department_id: int | None
) -> list[tuple[date, int, int]]:
    """QR answers per China day of the period: ``(day, answers, FORGED or UNKNOWN)``."""
    failed = func.sum(case((ScanDay.verdict.in_(FAILED_QR_ANSWERS), ScanDay.count), else_=0))
    rolled = select(ScanDay.day, func.sum(ScanDay.count), failed).where(
        ScanDay.day >= period.since, ScanDay.day < period.until
    )
    if department_id is not None:
        rolled = rolled.where(ScanDay.department_id == department_id)
    rows = [
        (as_date(day), int(total), int(bad))
        for day, total, bad in session.execute(rolled.group_by(ScanDay.day))
    ]
    failed = func.sum(case((ScanCount.verdict.in_(FAILED_QR_ANSWERS), ScanCount.count), else_=0))
    for live in live_periods(session, period):
        rows += [
            (as_date(day), int(total), int(bad))
            for day, total, bad in session.execute(
                select(ScanCount.day, func.sum(ScanCount.count), failed)
                .where(scans_in(live, department_id))
                .group_by(ScanCount.day)
            )
        ]
    return rows


def live_periods(session: Session, period: Period) -> list[Period]:
    """The runs of ``period`` that are not rolled up, each read from the records: the days
    not rolled up (any the worker has not reached yet), and of a day rolled up in part
    (today so far) what came after the instant it was rolled up to."""
    marks: dict[date, datetime | None] = {
        as_date(day): through
        for day, through in session.connection().execute(
            select(RolledUpDay.day, RolledUpDay.through).where(
                RolledUpDay.day >= period.since, RolledUpDay.day < period.until
            )
        )
    }
    runs: list[Period] = []
    day = period.since
    while day < period.until:
        if day in marks and marks[day] is None:
            day += timedelta(days=1)
            continue
        first, start_at = day, marks.get(day)
        day += timedelta(days=1)
        # A day rolled up in part begins a run, and ends the one before it.
        while day < period.until and day not in marks:
            day += timedelta(days=1)
        if first == period.since and period.start_at is not None:
            start_at = max(start_at or period.start_at, period.start_at)
        run_end = period.end_at if day == period.until else None
        if start_at is not None and run_end is not None and run_end <= start_at:
            continue  # rolled up past the period's end
        runs.append(Period(since=first, until=day, start_at=start_at, end_at=run_end))
    return runs


def _rolled_rows(session: Session, stmt: Query, day: Any, period: Period) -> list[DayCount]:
    """The rows ``(day, *keys, count)`` of a roll-up statement within the period."""
    # Through the connection: the ORM's row handling cost more than the statement itself
    # for the thousands of rows of a year's status changes.
    rows = session.connection().execute(stmt.where(day >= period.since, day < period.until)).all()
    days = {value: as_date(value) for value in {row[0] for row in rows}}
    return [(days[row[0]], tuple(row[1:-1]), int(row[-1])) for row in rows]


def _joined(rolled: list[DayCount], fresh: list[DayCount], runs: list[Period]) -> list[DayCount]:
    """The rows of the roll-ups and those read from the records (``fresh``, of the ``runs``),
    a group of a day rolled up in part (today so far) counted once, in both summed."""
    parts = {run.since for run in runs if run.start_at is not None}
    if not parts or not fresh:
        return rolled + fresh
    totals: Counter[tuple[date, tuple[Any, ...]]] = Counter()
    rows = []
    for row in rolled:
        if row[0] in parts:
            totals[row[0], row[1]] += row[2]
        else:
            rows.append(row)
    for day, keys, n in fresh:
        totals[day, keys] += n
    return rows + [(day, keys, n) for (day, keys), n in totals.items()]


def _summed(rows: Iterable[DayCount]) -> list[DayCount]:
    totals: Counter[tuple[date, tuple[Any, ...]]] = Counter()
    for day, keys, n in rows:
        totals[day, keys] += n
    return [(day, keys, n) for (day, keys), n in totals.items()]


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


# --- labels ----------------------------------------------------------------------------------


def _week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def _short(reason: str | None) -> str:
    if not reason:
        return "—"
    return reason if len(reason) <= 40 else reason[:39] + "…"


def _sorted(points: Iterable[Point]) -> tuple[Point, ...]:
    return tuple(sorted(points, key=attrgetter("x", "label")))


def _names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(
        session.execute(
            select(Department.id, Department.name).where(Department.id.in_(wanted))
        ).all()
    )
