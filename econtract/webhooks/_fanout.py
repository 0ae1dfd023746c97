"""From the outbox to the deliveries owed: who hears of a change.

An outbox row's audience depends on its subject. A change of a licence is owed to every
live subscription, asking for that event type, of a department that used the licence (a
usage record with result ``granted``) in the ``settings.usage_notify_days`` before the
change. A change of an envelope (``envelope.*``, the deadline's reminder included) is owed
to every live subscription, asking for that event type, of the envelope's initiator and of
each of its parties, departments and enterprises alike. Fanning out an outbox row writes those
deliveries and sets the row's ``delivered_at`` in one transaction; the rows are claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL (on SQLite the write queue orders the workers), so
several workers share the outbox without owing an event twice.

Expiry is not a status change and no use case records it: :func:`sweep_expired` writes one
``certificate.expired`` outbox row for a licence that passed its last day, and only for the
licences used in the window (the only ones anybody would be told about). The outbox row
itself is the mark that keeps it from being written twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, select, union
from sqlalchemy.orm import Session

from econtract.clock import Clock
from econtract.config import Settings
from econtract.envelopes import Envelope, EnvelopeParty
from econtract.models import (
    Certificate,
    CertificateStatus,
    Delivery,
    OutboxEvent,
    Subscription,
    UsageRecord,
)
from econtract.sharing import GRANTED
from econtract.webhooks._sign import ENVELOPE_EVENT_TYPES, LICENCE_EVENT_TYPES

EXPIRED = "certificate.expired"
#: Outbox rows fanned out per transaction.
BATCH = 100


def sweep_expired(session: Session, *, settings: Settings, clock: Clock) -> int:
    """Write a ``certificate.expired`` outbox row for each valid licence used in the window
    that passed its last day and has none yet; return how many were written."""
    since = clock.now() - timedelta(days=settings.usage_notify_days)
    already = exists().where(OutboxEvent.subject_id == Certificate.id, OutboxEvent.type == EXPIRED)
    # Led by the window's usage records (their time index), not by the certificates: "used"
    # as a correlated EXISTS made SQLite read every certificate of the registry, once a
    # minute, in a write transaction.
    used = select(UsageRecord.certificate_id).where(
        UsageRecord.result == GRANTED, UsageRecord.created_at >= since
    )
    expired = session.scalars(
        select(Certificate).where(
            Certificate.id.in_(used),
            Certificate.status == CertificateStatus.VALID.value,
            Certificate.valid_until.is_not(None),
            Certificate.valid_until < clock.today(),
            ~already,
        )
    ).all()
    for certificate in expired:
        session.add(
            OutboxEvent(
                event_id=str(uuid.uuid4()),
                type=EXPIRED,
                subject_id=certificate.id,
                department_id=certificate.department_id,
                payload={
                    "certificate_id": certificate.id,
                    "number": certificate.number,
                    "type": certificate.type_code,
                    "from": certificate.status,
                    "to": "expired",
                    "valid_until": certificate.valid_until.isoformat()
                    if certificate.valid_until
                    else None,
                },
                created_at=clock.now(),
            )
        )
    session.flush()
    return len(expired)


def fan_out(session: Session, *, settings: Settings, clock: Clock) -> int:
    """Turn up to :data:`BATCH` outbox rows into the deliveries they owe, mark them
    fanned out, and return how many deliveries were written."""
    stmt = (
        select(OutboxEvent)
        .where(OutboxEvent.delivered_at.is_(None))
        .order_by(OutboxEvent.id)
        .limit(BATCH)
    )
    if session.get_bind().dialect.name != "sqlite":
        stmt = stmt.with_for_update(skip_locked=True)
    now = clock.now()
    written = 0
    for event in session.scalars(stmt).all():
        # Every row is marked, those nobody subscribes to as well: this worker is the
        # outbox's consumer, and a row left unmarked would be read again at every tick.
        event.delivered_at = now
        audience = _audience(event, settings=settings)
        if audience is not None:
            written += _owe(session, event, audience, now=now)
    session.flush()
    return written


def _audience(event: OutboxEvent, *, settings: Settings) -> Select[Any] | None:
    """The bodies an outbox row is owed to, by its subject; ``None`` for a row that is
    nobody's event (a seal's creation, a document's registration)."""
    if event.type in LICENCE_EVENT_TYPES:
        # The departments that used the licence in the window before the change.
        return (
            select(UsageRecord.department_id)
            .where(
                UsageRecord.certificate_id == event.subject_id,
                UsageRecord.result == GRANTED,
                UsageRecord.created_at
                >= event.created_at - timedelta(days=settings.usage_notify_days),
            )
            .distinct()
        )
    if event.type in ENVELOPE_EVENT_TYPES:
        # The initiator and every party, departments and enterprises alike.
        bodies = union(
            select(Envelope.initiator_id.label("body_id")).where(Envelope.id == event.subject_id),
            select(EnvelopeParty.department_id).where(
                EnvelopeParty.envelope_id == event.subject_id
            ),
        ).subquery()
        return select(bodies.c.body_id)
    return None


def _owe(session: Session, event: OutboxEvent, audience: Select[Any], *, now: datetime) -> int:
    subscriptions = session.scalars(
        select(Subscription).where(
            Subscription.department_id.in_(audience), Subscription.deleted_at.is_(None)
        )
    ).all()
    owed = [s for s in subscriptions if event.type in s.events]
    known = set(
        session.scalars(
            select(Delivery.subscription_id).where(
                Delivery.event_id == event.event_id,
                Delivery.subscription_id.in_([s.id for s in owed]),
            )
        )
    )
    for subscription in owed:
        if subscription.id in known:
            continue
        session.add(
            Delivery(
                subscription_id=subscription.id,
                event_id=event.event_id,
                event_type=event.type,
                # An envelope's delivery names its envelope through the outbox row.
                certificate_id=event.subject_id if event.type in LICENCE_EVENT_TYPES else None,
                attempts=0,
                status="pending",
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(owed) - len(known)
