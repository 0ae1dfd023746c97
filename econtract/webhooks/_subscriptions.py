"""A department's or an enterprise's subscriptions and their delivery logs.

What a client may subscribe to follows its scopes: a using department's client (``use``)
the changes of the licences it used, a party's client (``seal`` for a department, ``sign``
for an enterprise) the changes of the envelopes it initiated or is a party to.

Each use case runs in one transaction and sees the caller's department only: another
department's subscription answers exactly like one that does not exist. A subscription's
URL is checked against the address rules (:mod:`econtract.webhooks._ssrf`) when it is made;
deleting one stops its deliveries and keeps its log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import db
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import Delivery, OutboxEvent, Subscription, new_public_id
from econtract.services import Services
from econtract.webhooks._sign import ENVELOPE_EVENT_TYPES, EVENT_TYPES, LICENCE_EVENT_TYPES
from econtract.webhooks._ssrf import check_target

#: The longest page of a listing.
MAX_PAGE = 200
#: The scopes that may subscribe, and the event types each one opens.
SUBSCRIBING_SCOPES = {
    "use": LICENCE_EVENT_TYPES,
    "seal": ENVELOPE_EVENT_TYPES,
    "sign": ENVELOPE_EVENT_TYPES,
}


def event_types_for(scopes: Iterable[str]) -> tuple[str, ...]:
    """The event types a client holding ``scopes`` may subscribe to, in the catalogue's
    order (none for a client with none of :data:`SUBSCRIBING_SCOPES`)."""
    opened = {e for scope in scopes for e in SUBSCRIBING_SCOPES.get(scope, ())}
    return tuple(e for e in EVENT_TYPES if e in opened)


def create_subscription(
    services: Services,
    *,
    department_id: int,
    url: str,
    events: Sequence[str],
    created_by: str,
    allowed: Sequence[str] = EVENT_TYPES,
) -> Subscription:
    """Subscribe ``url`` to ``events`` for the department (or enterprise);
    :class:`InvalidInputError` for a missing event type or one not in ``allowed`` (what the
    caller's scopes open, :func:`event_types_for`), :class:`~econtract.webhooks.UnsafeURLError`
    for a URL the service will not call."""
    events = list(events)
    if not events:
        message = "Name at least one event type."
        raise InvalidInputError(message, errors=[("/events", message)])
    for index, event in enumerate(events):
        if event not in allowed:
            known = "This client may not subscribe to" if event in EVENT_TYPES else "Unknown"
            message = f"{known} event type {event!r}; one of {', '.join(allowed)}."
            raise InvalidInputError(message, errors=[(f"/events/{index}", message)])
    check_target(url, services.settings)
    with db.transaction(services.sessions) as session:
        subscription = Subscription(
            id=new_public_id("sub"),
            department_id=department_id,
            url=url,
            # Kept in the catalogue's order, each once.
            events=[e for e in EVENT_TYPES if e in events],
            created_by=created_by,
            created_at=services.clock.now(),
        )
        session.add(subscription)
    return subscription


def get_subscription(session: Session, subscription_id: str, *, department_id: int) -> Subscription:
    """A live subscription of the department; :class:`NotFoundError` otherwise."""
    subscription = session.get(Subscription, subscription_id)
    if (
        subscription is None
        or subscription.department_id != department_id
        or subscription.deleted_at is not None
    ):
        raise NotFoundError(f"No subscription {subscription_id!r}.")
    return subscription


def list_subscriptions(session: Session, *, department_id: int) -> list[Subscription]:
    """The department's live subscriptions, newest first."""
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.department_id == department_id, Subscription.deleted_at.is_(None))
            .order_by(Subscription.created_at.desc(), Subscription.id)
        )
    )


def delete_subscription(services: Services, subscription_id: str, *, department_id: int) -> None:
    """Stop a subscription: nothing more is owed to it, and what was owed is not sent."""
    with db.transaction(services.sessions) as session:
        subscription = get_subscription(session, subscription_id, department_id=department_id)
        subscription.deleted_at = services.clock.now()


def list_deliveries(
    session: Session,
    subscription_id: str,
    *,
    department_id: int,
    after: int | None = None,
    limit: int = 50,
) -> list[Delivery]:
    """A page of a subscription's deliveries, newest first; ``after`` is the id of the last
    delivery of the previous page."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(
            f"limit is between 1 and {MAX_PAGE}.", errors=[("/limit", "out of range")]
        )
    get_subscription(session, subscription_id, department_id=department_id)
    stmt = select(Delivery).where(Delivery.subscription_id == subscription_id)
    if after is not None:
        stmt = stmt.where(Delivery.id < after)
    return list(session.scalars(stmt.order_by(Delivery.id.desc()).limit(limit)))


def envelope_ids(session: Session, deliveries: Sequence[Delivery]) -> dict[int, str]:
    """The envelope of each delivery of an envelope's event, by the delivery's id (the
    outbox row names it; the delivery names only a licence)."""
    events = {d.event_id: d.id for d in deliveries if d.event_type in ENVELOPE_EVENT_TYPES}
    if not events:
        return {}
    rows = session.execute(
        select(OutboxEvent.event_id, OutboxEvent.subject_id).where(OutboxEvent.event_id.in_(events))
    )
    return {events[event_id]: subject_id for event_id, subject_id in rows}


def redeliver(
    services: Services, subscription_id: str, delivery_id: int, *, department_id: int
) -> Delivery:
    """Send a delivery again at the next tick, whatever became of it: one more attempt,
    after which the usual backoff applies."""
    with db.transaction(services.sessions) as session:
        get_subscription(session, subscription_id, department_id=department_id)
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.subscription_id != subscription_id:
            raise NotFoundError(f"No delivery {delivery_id} of subscription {subscription_id!r}.")
        delivery.status = "pending"
        delivery.next_attempt_at = services.clock.now()
    return delivery
