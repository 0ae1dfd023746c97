"""A using department's subscriptions and their delivery logs.

Each use case runs in one transaction and sees the caller's department only: another
department's subscription answers exactly like one that does not exist. A subscription's
URL is checked against the address rules (:mod:`econtract.webhooks._ssrf`) when it is made;
deleting one stops its deliveries and keeps its log.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import db
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import Delivery, Subscription, new_public_id
from econtract.services import Services
from econtract.webhooks._sign import EVENT_TYPES
from econtract.webhooks._ssrf import check_target

#: The longest page of a listing.
MAX_PAGE = 200


def create_subscription(
    services: Services,
    *,
    department_id: int,
    url: str,
    events: Sequence[str],
    created_by: str,
) -> Subscription:
    """Subscribe ``url`` to ``events`` for the department; :class:`InvalidInputError` for
    an unknown or missing event type, :class:`~econtract.webhooks.UnsafeURLError` for a URL
    the service will not call."""
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown or not events:
        message = (
            f"Unknown event type {unknown[0]!r}; one of {', '.join(EVENT_TYPES)}."
            if unknown
            else "Name at least one event type."
        )
        pointer = f"/events/{list(events).index(unknown[0])}" if unknown else "/events"
        raise InvalidInputError(message, errors=[(pointer, message)])
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
