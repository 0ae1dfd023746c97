"""The records behind a point of the overview (:mod:`econtract.supervision._overview`).

A drill-down lists the records of one point, a page at a time in a fixed order that ends
with a unique key; ``after`` names the last record of the page before, which must be a record
of the same point (else :class:`NotFoundError`). A point of another department than the one
filtered on is not there either: a department admin sees only its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, select, tuple_
from sqlalchemy.orm import Session

from econtract.envelopes import Envelope, EnvelopeStatus
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import Certificate, StatusEvent, UsageRecord
from econtract.services import Services
from econtract.supervision._conditions import (
    FAILED_QR_ANSWERS,
    Period,
    Query,
    completed_in,
    scans_in,
    started_in,
    status_change_query,
    use_query,
)
from econtract.supervision._models import ScanCount

#: The most records a drill-down page holds.
MAX_LIMIT = 200

_T = TypeVar("_T")


@dataclass(frozen=True, kw_only=True)
class Page(Generic[_T]):
    """One page of a drill-down."""

    items: tuple[_T, ...]
    next_after: str | None
    """The ``after`` of the next page; ``None`` on the last."""


@dataclass(frozen=True, kw_only=True)
class IssuedRecord:
    """A certificate behind an issuance point."""

    id: str
    number: str
    type_code: str
    department_id: int
    holder_name: str
    status: str
    issued_at: datetime


@dataclass(frozen=True, kw_only=True)
class StatusChangeRecord:
    """A status change behind a revocation or suspension point."""

    id: int
    certificate_id: str
    department_id: int
    from_status: str | None
    to_status: str
    reason: str | None
    actor: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class EnvelopeRecord:
    """An envelope behind an envelope or completion-time point."""

    id: str
    title: str
    initiator_id: int
    status: str
    created_at: datetime
    completed_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class UseRecord:
    """A use of a licence by another department, behind a point of uses."""

    usage_id: str
    department_id: int
    """The using department."""
    issuer_id: int
    certificate_id: str
    identifier: str | None
    action: str
    matter: str
    created_at: datetime


@dataclass(frozen=True, kw_only=True)
class ScanRecord:
    """One day's count of one answer about one subject, behind a point of scans."""

    day: date
    subject: str
    """The certificate the QR token named, ``""`` for a token that does not read."""
    verdict: str
    count: int


# --- the drill-downs ---------------------------------------------------------------------------


def issued_certificates(
    services: Services,
    period: Period,
    *,
    issuer_id: int,
    type_code: str,
    department_id: int | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[IssuedRecord]:
    """The certificates of an issuance point (``Period.day`` or ``Period.week``), oldest
    first."""
    _own(department_id, issuer_id)
    stmt = select(Certificate).where(
        Certificate.department_id == issuer_id,
        Certificate.type_code == type_code,
        Certificate.issued_at >= period.start,
        Certificate.issued_at < period.end,
    )
    with services.sessions() as session:
        rows, more = _page(
            session, stmt, (Certificate.issued_at, Certificate.id), Certificate.id, limit, after
        )
        items = tuple(
            IssuedRecord(
                id=c.id,
                number=c.number,
                type_code=c.type_code,
                department_id=c.department_id,
                holder_name=c.holder_name,
                status=c.status,
                issued_at=c.issued_at,
            )
            for c in rows
        )
    return Page(items=items, next_after=items[-1].id if more else None)


def status_changes(
    services: Services,
    period: Period,
    *,
    status: str,
    reason: str | None,
    department_id: int | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[StatusChangeRecord]:
    """The status changes of a point (a day, a new status and a reason), oldest first."""
    same_reason = StatusEvent.reason.is_(None) if reason is None else StatusEvent.reason == reason
    stmt = (
        status_change_query(period, department_id)
        .with_only_columns(StatusEvent, Certificate.department_id)
        .where(StatusEvent.to_status == status, same_reason)
    )
    with services.sessions() as session:
        rows, more = _page(session, stmt, (StatusEvent.id,), StatusEvent.id, limit, _int(after))
        items = tuple(
            StatusChangeRecord(
                id=event.id,
                certificate_id=event.certificate_id,
                department_id=issuer,
                from_status=event.from_status,
                to_status=event.to_status,
                reason=event.reason,
                actor=event.actor,
                created_at=event.created_at,
            )
            for event, issuer in rows
        )
    return Page(items=items, next_after=str(items[-1].id) if more else None)


def envelopes_of_status(
    services: Services,
    period: Period,
    *,
    initiator_id: int,
    status: str,
    department_id: int | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[EnvelopeRecord]:
    """The envelopes of a point of :func:`envelopes_by_status`, oldest first."""
    _own(department_id, initiator_id)
    stmt = select(Envelope).where(
        started_in(None, period, initiator_id),
        Envelope.status == EnvelopeStatus(status).value,
    )
    with services.sessions() as session:
        rows, more = _page(
            session, stmt, (Envelope.created_at, Envelope.id), Envelope.id, limit, after
        )
        items = tuple(_envelope(row) for row in rows)
    return Page(items=items, next_after=items[-1].id if more else None)


def completed_envelopes(
    services: Services,
    period: Period,
    *,
    initiator_id: int,
    department_id: int | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[EnvelopeRecord]:
    """The envelopes behind a department's completion times, in the order they completed."""
    _own(department_id, initiator_id)
    stmt = select(Envelope).where(completed_in(period, initiator_id))
    with services.sessions() as session:
        rows, more = _page(
            session, stmt, (Envelope.completed_at, Envelope.id), Envelope.id, limit, after
        )
        items = tuple(_envelope(row) for row in rows)
    return Page(items=items, next_after=items[-1].id if more else None)


def uses_of_pair(
    services: Services,
    period: Period,
    *,
    user_id: int,
    issuer_id: int,
    department_id: int | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[UseRecord]:
    """The uses of a point of :func:`uses_by_other_departments`, oldest first (``after`` is a
    usage record's id)."""
    if department_id is not None and department_id not in (user_id, issuer_id):
        raise NotFoundError("There is no such point of this department.")
    stmt = (
        use_query(period, None)
        .with_only_columns(UsageRecord, Certificate.department_id)
        .where(UsageRecord.department_id == user_id, Certificate.department_id == issuer_id)
    )
    with services.sessions() as session:
        key = None
        if after is not None:
            key = session.scalar(select(UsageRecord.id).where(UsageRecord.usage_id == after))
            if key is None:
                raise NotFoundError(f"There is no record {after!r} in this point.")
        rows, more = _page(session, stmt, (UsageRecord.id,), UsageRecord.id, limit, key)
        items = tuple(
            UseRecord(
                usage_id=use.usage_id,
                department_id=use.department_id,
                issuer_id=issuer,
                certificate_id=use.certificate_id,
                identifier=use.identifier,
                action=use.action,
                matter=use.matter,
                created_at=use.created_at,
            )
            for use, issuer in rows
        )
    return Page(items=items, next_after=items[-1].usage_id if more else None)


def scans_of_day(
    services: Services,
    day: date,
    *,
    failed_only: bool = False,
    department_id: int | None = None,
    limit: int = 50,
    after: str | None = None,
) -> Page[ScanRecord]:
    """The QR answers of a day, per subject and answer, by subject (``after`` is
    ``subject|verdict``)."""
    where = scans_in(Period.day(day), department_id)
    if failed_only:
        where = and_(where, ScanCount.verdict.in_(FAILED_QR_ANSWERS))
    stmt = select(ScanCount).where(where)
    order = (ScanCount.subject, ScanCount.verdict)
    if after is not None:
        subject, _, verdict = after.rpartition("|")
        stmt = stmt.where(tuple_(*order) > tuple_(subject, verdict))
    with services.sessions() as session:
        rows = session.scalars(stmt.order_by(*order).limit(_limit(limit) + 1)).all()
    items = tuple(
        ScanRecord(day=r.day, subject=r.subject, verdict=r.verdict, count=r.count)
        for r in rows[:limit]
    )
    more = len(rows) > limit
    return Page(
        items=items, next_after=f"{items[-1].subject}|{items[-1].verdict}" if more else None
    )


def _own(department_id: int | None, point_department: int) -> None:
    if department_id is not None and department_id != point_department:
        raise NotFoundError("There is no such point of this department.")


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(
            f"A page holds 1 to {MAX_LIMIT} records.", errors=[("/limit", "out of range")]
        )
    return limit


def _int(after: str | None) -> int | None:
    if after is None:
        return None
    if not after.isdigit():
        raise NotFoundError(f"There is no record {after!r} in this point.")
    return int(after)


def _page(
    session: Session,
    stmt: Query,
    order: tuple[Any, ...],
    key: Any,
    limit: int,
    after: object | None,
) -> tuple[Sequence[Any], bool]:
    """A page of ``stmt`` in ``order`` (ending with the unique ``key``) after the record
    whose key is ``after``, which must be one of ``stmt``'s records."""
    limit = _limit(limit)
    if after is not None:
        cursor = session.execute(stmt.where(key == after).with_only_columns(*order)).first()
        if cursor is None:
            raise NotFoundError(f"There is no record {after!r} in this point.")
        stmt = stmt.where(tuple_(*order) > tuple_(*cursor))
    rows = session.execute(stmt.order_by(*order).limit(limit + 1)).all()
    items = [row[0] if len(row) == 1 else tuple(row) for row in rows[:limit]]
    return items, len(rows) > limit


def _envelope(row: Envelope) -> EnvelopeRecord:
    return EnvelopeRecord(
        id=row.id,
        title=row.title,
        initiator_id=row.initiator_id,
        status=row.status,
        created_at=row.created_at,
        completed_at=row.completed_at,
    )
