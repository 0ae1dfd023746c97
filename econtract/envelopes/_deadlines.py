"""Deadlines that act on their own: a passed one expires the envelope, a near one reminds.

An envelope expires when someone looks at it after its open step's deadline; the sweep
(:func:`sweep_deadlines`, run by the webhook worker's round) makes it expire although nobody
looks, so that the parties hear of it (``envelope.expired``). It also writes one
``envelope.reminder`` outbox row for each open step whose deadline is less than
``settings.envelope_remind_hours`` away; that row is the mark that keeps the step from
being reminded twice.

The sweep first reads which envelopes are due, then takes each in a short transaction of
its own: the envelope's row is locked (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: another
worker busy with it is passed by; the write queue on SQLite) and read again there, so that
two workers sweeping at once never expire an envelope twice or remind its step twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from econtract import db
from econtract.envelopes._changes import DEADLINE_ACTOR, expire_if_due, record_envelope_change
from econtract.envelopes._models import Envelope, EnvelopeParty, EnvelopeStatus
from econtract.models import OutboxEvent
from econtract.services import Services

REMINDER = "envelope.reminder"
#: Envelopes taken per sweep for each of expiry and reminders; the next sweep takes the rest.
BATCH = 100


def sweep_deadlines(services: Services) -> tuple[int, int]:
    """Expire the open envelopes whose open step's deadline has passed and remind the open
    steps whose deadline is near; return how many were expired and how many reminded."""
    now = services.clock.now()
    horizon = now + timedelta(hours=services.settings.envelope_remind_hours)
    with services.sessions() as session:
        overdue = _due(session, before=now, after=None)
        near = _due(session, before=horizon, after=now)
    expired = sum(expire(services, envelope_id) for envelope_id in overdue)
    reminded = sum(_remind(services, envelope_id, horizon) for envelope_id in near)
    return expired, reminded


def _due(session: Session, *, before: datetime, after: datetime | None) -> list[str]:
    """The open envelopes whose open step's deadline is before ``before`` (and after
    ``after``), soonest first."""
    deadline = func.min(EnvelopeParty.deadline)
    stmt = (
        select(Envelope.id)
        .join(
            EnvelopeParty,
            (EnvelopeParty.envelope_id == Envelope.id) & (EnvelopeParty.step == Envelope.step),
        )
        .where(Envelope.status == EnvelopeStatus.OPEN.value)
        .group_by(Envelope.id)
        .having(deadline < before)
        .order_by(deadline, Envelope.id)
        .limit(BATCH)
    )
    if after is not None:
        stmt = stmt.having(deadline > after)
    return list(session.scalars(stmt))


def _locked(services: Services, session: Session, envelope_id: str) -> Envelope | None:
    """The envelope, locked for this transaction, while it is open; ``None`` when it closed
    meanwhile or another worker holds it."""
    stmt = select(Envelope).where(
        Envelope.id == envelope_id, Envelope.status == EnvelopeStatus.OPEN.value
    )
    if not db.is_embedded(services.engine):
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalars(stmt).one_or_none()


def expire(services: Services, envelope_id: str) -> bool:
    """Expire the envelope in a transaction of its own when it is still open and its step's
    deadline has passed; whether it did."""
    with db.transaction(services.sessions) as session:
        envelope = _locked(services, session, envelope_id)
        return envelope is not None and expire_if_due(services, session, envelope)


def _remind(services: Services, envelope_id: str, horizon: datetime) -> bool:
    with db.transaction(services.sessions) as session:
        envelope = _locked(services, session, envelope_id)
        if envelope is None:
            return False
        deadline = session.scalar(
            select(func.min(EnvelopeParty.deadline)).where(
                EnvelopeParty.envelope_id == envelope.id, EnvelopeParty.step == envelope.step
            )
        )
        if deadline is None or not services.clock.now() < deadline <= horizon:
            return False
        reminded = session.scalars(
            select(OutboxEvent.payload).where(
                OutboxEvent.subject_id == envelope.id, OutboxEvent.type == REMINDER
            )
        )
        if any(payload.get("step") == envelope.step for payload in reminded):
            return False
        record_envelope_change(
            services,
            session,
            DEADLINE_ACTOR,
            envelope_id=envelope.id,
            happened="reminder",
            department_id=envelope.initiator_id,
            detail={"step": envelope.step, "deadline": deadline.isoformat()},
            state=(envelope.status, envelope.step),
        )
        return True
