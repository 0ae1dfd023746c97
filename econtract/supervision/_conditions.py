"""The conditions the overview's figures, their roll-ups and drill-downs share: the period of
China days a figure covers, which rows fall in it (per department), and how a timestamp is cut
to a China day in SQL. One place, so that a figure and the records behind its points are
always read through the same conditions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, Index, Select, and_, cast, func, literal_column, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from econtract.envelopes import Envelope, EnvelopeStatus
from econtract.models import Certificate, CertificateStatus, Department, StatusEvent, UsageRecord
from econtract.sharing import GRANTED
from econtract.supervision._models import ScanCount
from econtract.supervision._rules import day_start

# The overview reads these tables by time alone (migration 0022).
Index("ix_status_events_time", StatusEvent.__table__.c.created_at)
Index("ix_usage_records_time", UsageRecord.__table__.c.created_at)
Index("ix_envelopes_completed", Envelope.__table__.c.completed_at)
# The issuer of each use and status change, read from the index alone (migration 0023).
Index("ix_certificates_issuer", Certificate.__table__.c.id, Certificate.__table__.c.department_id)
# The completion times read the completed envelopes of a period and their durations from this
# index alone (migration 0028).
Index(
    "ix_envelopes_completion_times",
    Envelope.__table__.c.status,
    Envelope.__table__.c.completed_at,
    Envelope.__table__.c.initiator_id,
    Envelope.__table__.c.created_at,
)

#: The answers of the QR page that the scans figure counts as failed.
FAILED_QR_ANSWERS = ("FORGED", "UNKNOWN")
#: The longest period a figure covers.
MAX_DAYS = 731


@dataclass(frozen=True, kw_only=True)
class Period:
    """The China days ``since`` up to, not including, ``until``."""

    since: date
    """The first day."""
    until: date
    """The day after the last."""
    start_at: datetime | None = None
    """The instant it starts, when after its first day's midnight: a run of days read from
    the records that begins with a day rolled up in part (up to this instant)."""
    end_at: datetime | None = None
    """The instant it ends, when before its last day is over: the part of today that the
    worker rolls up so far."""

    def __post_init__(self) -> None:
        if not isinstance(self.since, date) or not isinstance(self.until, date):
            raise TypeError("A period runs between two dates.")
        if self.until <= self.since:
            raise ValueError("A period ends after it begins.")
        if (self.until - self.since).days > MAX_DAYS:
            raise ValueError(f"A period covers at most {MAX_DAYS} days.")
        if self.start_at is None and self.end_at is None:
            # Whole days, checked above: the page makes one for each point's link.
            return
        first_end = day_start(self.since + timedelta(days=1))
        if self.start_at is not None and not day_start(self.since) <= self.start_at < first_end:
            raise ValueError("A period starts on its first day.")
        last_start = day_start(self.until - timedelta(days=1))
        if self.end_at is not None and not last_start < self.end_at <= day_start(self.until):
            raise ValueError("A period ends on its last day.")
        if self.end <= self.start:
            raise ValueError("A period ends after it begins.")

    @classmethod
    def day(cls, day: date) -> Period:
        """The one day ``day``: a day's point."""
        return cls(since=day, until=day + timedelta(days=1))

    @classmethod
    def week(cls, monday: date) -> Period:
        """The ISO week that begins on ``monday``: a week's point."""
        return cls(since=monday, until=monday + timedelta(days=7))

    @property
    def start(self) -> datetime:
        """The first instant, in UTC."""
        return day_start(self.since) if self.start_at is None else self.start_at

    @property
    def end(self) -> datetime:
        """The instant after the last, in UTC."""
        return day_start(self.until) if self.end_at is None else self.end_at


#: A day's count of a figure: ``(day, keys, count)``.
DayCount = tuple[date, tuple[Any, ...], int]


def china_day(session: Session, column: Any) -> ColumnElement[Any]:
    """The China day of a UTC timestamp column, in SQL.

    The zone and the modifier are written into the statement, not bound: PostgreSQL sees the
    grouped expression and the selected one as the same only when they are the same text."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(literal_column("'Asia/Shanghai'"), column), Date)
    return func.date(column, literal_column("'+8 hours'"))


def per_day(session: Session, stmt: Query, column: Any, *keys: Any) -> list[DayCount]:
    """How many rows of ``stmt`` fall on each China day of ``column``, by ``keys``:
    ``(day, keys, count)``."""
    bucket = china_day(session, column)
    rows = session.execute(
        stmt.with_only_columns(bucket, *keys, func.count()).group_by(bucket, *keys)
    ).all()
    return [(as_date(row[0]), tuple(row[1:-1]), int(row[-1])) for row in rows]


def as_date(value: date | str) -> date:
    """A date the database answered (SQLite's date() answers text)."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def bodies(session: Session, department_id: int | None) -> list[int]:
    """The departments whose (department, time) indexes a figure reads."""
    if department_id is not None:
        return [department_id]
    return list(session.scalars(select(Department.id)))


#: A statement of any columns.
Query = Select[*tuple[Any, ...]]


def status_change_query(period: Period, department_id: int | None) -> Query:
    """The revocations and suspensions of the period (of one department's licences), with
    their licences."""
    stmt = status_changes_in(period).join(Certificate, Certificate.id == StatusEvent.certificate_id)
    if department_id is not None:
        stmt = stmt.where(Certificate.department_id == department_id)
    return stmt


def status_changes_in(period: Period) -> Query:
    """The revocations and suspensions of the period, of every department's licences."""
    # Without the licences: every department's count needs none of them, and joining a
    # million licences to a month's changes made the planner scan them all.
    return select(StatusEvent).where(
        StatusEvent.to_status.in_(
            (CertificateStatus.REVOKED.value, CertificateStatus.SUSPENDED.value)
        ),
        StatusEvent.created_at >= period.start,
        StatusEvent.created_at < period.end,
    )


def started_in(
    session: Session | None, period: Period, department_id: int | None
) -> ColumnElement[bool]:
    """The envelopes started in the period (by one department; ``session`` lists the
    departments when none is given)."""
    if department_id is not None:
        initiators = [department_id]
    else:
        assert session is not None
        initiators = bodies(session, None)
    return and_(
        Envelope.initiator_id.in_(initiators),
        Envelope.created_at >= period.start,
        Envelope.created_at < period.end,
    )


def completed_in(period: Period, department_id: int | None) -> ColumnElement[bool]:
    """The envelopes completed in the period (initiated by one department)."""
    where = and_(
        Envelope.status == EnvelopeStatus.COMPLETED.value,
        Envelope.completed_at >= period.start,
        Envelope.completed_at < period.end,
    )
    if department_id is not None:
        where = and_(where, Envelope.initiator_id == department_id)
    return where


def use_query(period: Period, department_id: int | None) -> Query:
    """The granted uses of the period by another department than the licence's issuer
    (made or suffered by one department)."""
    stmt = (
        select(UsageRecord)
        .join(Certificate, Certificate.id == UsageRecord.certificate_id)
        .where(
            UsageRecord.result == GRANTED,
            UsageRecord.department_id != Certificate.department_id,
            UsageRecord.created_at >= period.start,
            UsageRecord.created_at < period.end,
        )
    )
    if department_id is not None:
        stmt = stmt.where(
            or_(
                UsageRecord.department_id == department_id,
                Certificate.department_id == department_id,
            )
        )
    return stmt


def scans_in(period: Period, department_id: int | None) -> ColumnElement[bool]:
    """The day counts of QR answers in the period (about one department's licences)."""
    where = and_(
        ScanCount.channel == "qr", ScanCount.day >= period.since, ScanCount.day < period.until
    )
    if department_id is not None:
        where = and_(where, ScanCount.department_id == department_id)
    return where
