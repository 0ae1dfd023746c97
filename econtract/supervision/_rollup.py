"""Rolling the overview's counting figures up per China day (日汇总).

A day is rolled up once it is over: its counts (licences issued by department and type,
revocations and suspensions by the licence's department, status and reason, granted uses by
using and issuing department, QR answers by department and answer, envelopes by start day,
initiator and final status, completed envelopes with their durations per completion day and
the running counts of their duration bins, :mod:`econtract.supervision._completions`) are
written to the roll-up tables with the day in :class:`RolledUpDay`, in one transaction,
through the same queries the figures run live. The figures then read these rows for that day.

The rule for late writes: a day is rolled up only :data:`ROLLUP_GRACE` after it ended. Every
record is dated "now" by the process that writes it, and the QR counters are added at the
worker's next tick, so a record of a rolled-up day can only come from a process whose clock
was more than an hour behind; after such a fault, ``econtract supervision rollup --since DAY``
writes the days from ``DAY`` again from the records (a day rolled up again replaces its rows),
so nothing stays lost.

The worker's round rolls up the days since the last one rolled up (from the first day with
records on a new registry), :data:`CHUNK_DAYS` days per transaction; two processes rolling the
same day at once collide on the day's key, and the second gives way.

Today so far is rolled up too, by the same rule: up to :func:`today_watermark` (the last full
hour less the grace), kept as the day's ``through``, its rows replaced once an hour and by the
whole day's once it is over. The figures read those rows and the records written since the
watermark only (an hour or two of them), so that no figure reads more of today on a busy
registry than on a quiet one. The QR counters are kept per licence and day, not per instant:
they are rolled up with the whole day, and today's are read from them until then. Nothing is
counted on the write paths (no counter row for issuance or the QR page to update).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from econtract import db
from econtract.clock import CHINA, Clock
from econtract.envelopes import Envelope, EnvelopeStatus
from econtract.models import Base, Certificate, Department, StatusEvent, UsageRecord
from econtract.services import Services
from econtract.supervision._completions import write_completions
from econtract.supervision._conditions import (
    DayCount,
    Period,
    as_date,
    china_day,
    per_day,
    scans_in,
    started_in,
    status_change_query,
)
from econtract.supervision._models import ScanCount
from econtract.supervision._overview import issued_rows, use_rows
from econtract.supervision._rollup_models import (
    DAY_TABLES,
    EnvelopeDay,
    IssuedDay,
    OpenEnvelope,
    RolledUpDay,
    ScanDay,
    StatusChangeList,
    UseDay,
)

#: How long after its end a day is rolled up (longer than any clock skew the service allows
#: between its processes, and than the QR counters' flush).
ROLLUP_GRACE = timedelta(hours=1)
#: The most days one transaction rolls up.
CHUNK_DAYS = 31

#: The most envelopes of :class:`OpenEnvelope` one statement counts in.
SETTLE_BATCH = 1000


class _RacedError(Exception):
    """Another process counted the same closed envelopes first."""


def last_complete_day(clock: Clock) -> date:
    """The last China day that is over by :data:`ROLLUP_GRACE` at ``clock``'s now."""
    return (clock.now() - ROLLUP_GRACE).astimezone(CHINA).date() - timedelta(days=1)


def today_watermark(clock: Clock) -> datetime:
    """The instant up to which the day after the last complete one is rolled up so far: the
    last full hour less :data:`ROLLUP_GRACE` (China's hours are UTC's: a whole offset)."""
    now = clock.now().astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - ROLLUP_GRACE


def roll_up(services: Services, *, since: date | None = None, clock: Clock | None = None) -> int:
    """Roll up the days from ``since`` (again, when they were) to the last complete day;
    without ``since``, the days after the last one rolled up; then the day after it so far,
    up to :func:`today_watermark` (once an hour). Return how many whole days were written
    (0 when another process was writing the same days)."""
    clock = clock or services.clock
    last = last_complete_day(clock)
    try:
        with db.transaction(services.sessions) as session:
            _settle(session)
    except (IntegrityError, _RacedError):
        pass  # another process is counting them: its numbers are the same
    if since is None:
        with services.sessions() as session:
            since = _first_unrolled_day(session)
        if since is None:
            return 0
    days = 0
    for chunk in _chunks(since, last + timedelta(days=1)):
        try:
            with db.transaction(services.sessions) as session:
                _write(session, chunk, clock.now())
        except IntegrityError:
            # Another process rolled these days up first (its rows are the same).
            return days
        days += (chunk.until - chunk.since).days
    _roll_up_today(services, last + timedelta(days=1), today_watermark(clock), clock.now())
    return days


def _roll_up_today(services: Services, today: date, watermark: datetime, now: datetime) -> None:
    """Roll up ``today`` (the day after the last complete one) up to ``watermark``, unless
    it is already, or the watermark is still its midnight."""
    part = Period.day(today)
    if watermark <= part.start:
        return
    with services.sessions() as session:
        marked = session.get(RolledUpDay, today)
        if marked is not None and marked.through == watermark:
            return
    try:
        with db.transaction(services.sessions) as session:
            _write(session, Period(since=today, until=part.until, end_at=watermark), now)
    except IntegrityError:
        pass  # another process rolled it up first, to the same instant


def _chunks(since: date, until: date) -> Iterator[Period]:
    while since < until:
        end = min(since + timedelta(days=CHUNK_DAYS), until)
        yield Period(since=since, until=end)
        since = end


def _first_unrolled_day(session: Session) -> date | None:
    """The day after the last one rolled up, or, when none was, the first day with records."""
    # A day rolled up in part is rolled up whole once it is over.
    last = session.scalar(select(func.max(RolledUpDay.day)).where(RolledUpDay.through.is_(None)))
    if last is not None:
        return as_date(last) + timedelta(days=1)
    # Each through an index: the time indexes of the events and uses (migration 0022), the
    # counters' key, and each department's (department, issued) index of the licences.
    firsts: list[datetime | date | str | None] = [
        session.scalar(select(func.min(StatusEvent.created_at))),
        session.scalar(select(func.min(UsageRecord.created_at))),
        session.scalar(select(func.min(ScanCount.day))),
    ]
    for department_id in session.scalars(select(Department.id)):
        firsts.append(
            session.scalar(
                select(func.min(Certificate.issued_at)).where(
                    Certificate.department_id == department_id
                )
            )
        )
    days = [_china_date(first) for first in firsts if first is not None]
    return min(days) if days else None


def _write(session: Session, period: Period, now: datetime) -> None:
    """Replace the roll-ups of the period's days by counts of their records (up to its
    ``end_at`` for today so far)."""
    for table in DAY_TABLES:
        session.execute(delete(table).where(table.day >= period.since, table.day < period.until))
    # Read with no day of the period rolled up any more: the figures' live queries.
    issued = issued_rows(session, period, None)
    changes = per_day(
        session,
        status_change_query(period, None),
        StatusEvent.created_at,
        Certificate.department_id,
        StatusEvent.to_status,
        StatusEvent.reason,
    )
    uses = use_rows(session, period, None)
    # The QR counters hold a whole day's answers, rolled up with the whole day: until then
    # the figure reads the day's counters (they are per licence, not per answer).
    scans = (
        session.execute(
            select(
                ScanCount.day, ScanCount.department_id, ScanCount.verdict, func.sum(ScanCount.count)
            )
            .where(scans_in(period, None))
            .group_by(ScanCount.day, ScanCount.department_id, ScanCount.verdict)
        ).all()
        if period.end_at is None
        else []
    )
    started = select(Envelope).where(started_in(session, period, None))
    envelopes = per_day(
        session,
        started.where(Envelope.status != EnvelopeStatus.OPEN.value),
        Envelope.created_at,
        Envelope.initiator_id,
        Envelope.status,
    )
    still_open = session.execute(
        started.where(Envelope.status == EnvelopeStatus.OPEN.value).with_only_columns(
            Envelope.id, china_day(session, Envelope.created_at)
        )
    ).all()
    # The days first: a second process writing the same days stops on their key here.
    day = period.since
    days = []
    while day < period.until:
        days.append({"day": day, "rolled_at": now, "through": period.end_at})
        day += timedelta(days=1)
    session.execute(insert(RolledUpDay), days)
    rows: list[tuple[type[Base], list[dict[str, object]]]] = [
        (
            IssuedDay,
            [
                {"day": d, "department_id": k[0], "type_code": k[1], "count": n}
                for d, k, n in issued
            ],
        ),
        (StatusChangeList, _status_change_lists(changes)),
        (
            UseDay,
            [
                {"day": d, "user_department_id": k[0], "issuer_department_id": k[1], "count": n}
                for d, k, n in uses
            ],
        ),
        (
            ScanDay,
            [
                {"day": as_date(d), "department_id": body, "verdict": verdict, "count": int(n)}
                for d, body, verdict, n in scans
            ],
        ),
        (
            EnvelopeDay,
            [{"day": d, "initiator_id": k[0], "status": k[1], "count": n} for d, k, n in envelopes],
        ),
        (
            OpenEnvelope,
            [{"envelope_id": envelope_id, "day": as_date(d)} for envelope_id, d in still_open],
        ),
    ]
    for model, values in rows:
        if values:
            session.execute(insert(model), values)
    write_completions(session, period)


def _status_change_lists(changes: list[DayCount]) -> list[dict[str, object]]:
    """The status changes ``(day, (department, status, reason), count)`` as one list per day
    and department, and one per day for every department together (department ``None``)."""
    lists: dict[tuple[date, int | None], Counter[tuple[str, str | None]]] = defaultdict(Counter)
    for day, (department_id, status, reason), n in changes:
        lists[day, department_id][status, reason] += n
        lists[day, None][status, reason] += n
    return [
        {
            "day": day,
            "department_id": department_id,
            "changes": json.dumps(
                [
                    [status, reason, n]
                    for (status, reason), n in sorted(
                        counts.items(), key=lambda item: (item[0][0], item[0][1] or "")
                    )
                ],
                ensure_ascii=False,
            ),
        }
        for (day, department_id), counts in lists.items()
    ]


def _settle(session: Session) -> None:
    """Count in the envelopes of rolled-up days that were open then and are closed now (a
    closed envelope never changes again), and strike them off the open ones."""
    closed = session.execute(
        select(OpenEnvelope.envelope_id, OpenEnvelope.day, Envelope.initiator_id, Envelope.status)
        .join(Envelope, Envelope.id == OpenEnvelope.envelope_id)
        .where(Envelope.status != EnvelopeStatus.OPEN.value)
    ).all()
    ids = [row[0] for row in closed]
    for start in range(0, len(ids), SETTLE_BATCH):
        batch = ids[start : start + SETTLE_BATCH]
        deleted = session.execute(delete(OpenEnvelope).where(OpenEnvelope.envelope_id.in_(batch)))
        # Fewer rows than read: another process struck them off (and counted them) meanwhile.
        if deleted.rowcount != len(batch):  # type: ignore[attr-defined]
            raise _RacedError
    counts = Counter((as_date(day), initiator, status) for _, day, initiator, status in closed)
    for (day, initiator, status), n in counts.items():
        row = session.get(EnvelopeDay, (day, initiator, status))
        if row is None:
            session.add(EnvelopeDay(day=day, initiator_id=initiator, status=status, count=n))
        else:
            row.count += n
    session.flush()


def _china_date(value: datetime | date | str) -> date:
    if isinstance(value, str):
        value = (
            datetime.fromisoformat(value)
            if "T" in value or " " in value
            else date.fromisoformat(value)
        )
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(CHINA).date()
    return value
