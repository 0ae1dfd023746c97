"""Subscriptions over HTTP: a using department is told when a licence it used changes, a
department or an enterprise when an envelope it initiated or is a party to changes.

Scope ``use`` opens the licence events, ``seal`` (a department) and ``sign`` (an
enterprise) the envelope events; a client with none of them is refused (403), and an event
type its scopes do not open is invalid input (422). A department or an enterprise sees its
own subscriptions only; another's answers 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from econtract import webhooks
from econtract.auth import Principal
from econtract.errors import PermissionDeniedError
from econtract.models import Delivery, Subscription
from routes.deps import PrincipalDep, ServicesDep, next_link

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


async def subscriber(principal: PrincipalDep) -> Principal:
    """The caller, refused (403) unless one of its scopes opens some event type."""
    if not webhooks.event_types_for(principal.scopes):
        scopes = " or ".join(repr(s) for s in webhooks.SUBSCRIBING_SCOPES)
        raise PermissionDeniedError(f"Subscribing needs the {scopes} scope.")
    return principal


SubscriberDep = Annotated[Principal, Depends(subscriber)]
"""A caller that may subscribe: scope ``use``, ``seal`` or ``sign``."""


class SubscriptionCreate(BaseModel):
    """A new subscription."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        max_length=webhooks.MAX_URL_LENGTH,
        description="Where events are posted: https, no credentials; it must not resolve to a "
        "loopback, private, link-local or metadata address (development mode allows loopback "
        "and http).",
    )
    events: list[str] = Field(
        min_length=1,
        max_length=len(webhooks.EVENT_TYPES),
        description="The event types: "
        + ", ".join(webhooks.LICENCE_EVENT_TYPES)
        + " (scope use); "
        + ", ".join(webhooks.ENVELOPE_EVENT_TYPES)
        + " (scope seal or sign).",
    )


class SubscriptionPublic(BaseModel):
    """A subscription."""

    id: str
    url: str
    events: list[str]
    created_by: str = Field(description="The API client that made it.")
    created_at: datetime

    @classmethod
    def of(cls, row: Subscription) -> SubscriptionPublic:
        """The public form of a subscription."""
        return cls(
            id=row.id,
            url=row.url,
            events=list(row.events),
            created_by=row.created_by,
            created_at=row.created_at,
        )


class DeliveryPublic(BaseModel):
    """One event owed to a subscription, and how its delivery went."""

    id: int
    event_id: str = Field(description="The id receivers deduplicate on.")
    event_type: str
    certificate_id: str | None = Field(description="The licence of a licence's event.")
    envelope_id: str | None = Field(description="The envelope of an envelope's event.")
    status: str = Field(description="pending, delivered, failed (retried later) or given-up.")
    attempts: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, row: Delivery, envelope_id: str | None = None) -> DeliveryPublic:
        """The public form of a delivery (of an envelope's event: ``envelope_id``)."""
        return cls(
            id=row.id,
            event_id=row.event_id,
            event_type=row.event_type,
            certificate_id=row.certificate_id,
            envelope_id=envelope_id,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            delivered_at=row.delivered_at,
            created_at=row.created_at,
        )


@router.post("", status_code=201, response_model=SubscriptionPublic)
def create(
    body: SubscriptionCreate, principal: SubscriberDep, services: ServicesDep
) -> SubscriptionPublic:
    """Subscribe an endpoint to the changes of the licences the department uses, or of the
    envelopes it (or the enterprise) initiated or is a party to."""
    row = webhooks.create_subscription(
        services,
        department_id=principal.department_id,
        url=body.url,
        events=body.events,
        created_by=principal.client_id,
        allowed=webhooks.event_types_for(principal.scopes),
    )
    return SubscriptionPublic.of(row)


@router.get("", response_model=list[SubscriptionPublic])
def list_all(principal: SubscriberDep, services: ServicesDep) -> list[SubscriptionPublic]:
    """The department's (or the enterprise's) subscriptions, newest first."""
    with services.sessions() as session:
        rows = webhooks.list_subscriptions(session, department_id=principal.department_id)
    return [SubscriptionPublic.of(r) for r in rows]


@router.get("/{subscription_id}", response_model=SubscriptionPublic)
def get(
    subscription_id: str, principal: SubscriberDep, services: ServicesDep
) -> SubscriptionPublic:
    """One of the department's subscriptions."""
    with services.sessions() as session:
        row = webhooks.get_subscription(
            session, subscription_id, department_id=principal.department_id
        )
    return SubscriptionPublic.of(row)


@router.delete("/{subscription_id}", status_code=204)
def delete(subscription_id: str, principal: SubscriberDep, services: ServicesDep) -> Response:
    """Stop a subscription; its delivery log stays."""
    webhooks.delete_subscription(services, subscription_id, department_id=principal.department_id)
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries", response_model=list[DeliveryPublic])
def deliveries(
    subscription_id: str,
    request: Request,
    response: Response,
    principal: SubscriberDep,
    services: ServicesDep,
    after: Annotated[int | None, Query(description="The last id of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[DeliveryPublic]:
    """The subscription's deliveries, newest first; a ``Link: rel="next"`` header while
    there are more."""
    with services.sessions() as session:
        rows = webhooks.list_deliveries(
            session,
            subscription_id,
            department_id=principal.department_id,
            after=after,
            limit=limit,
        )
        envelopes = webhooks.envelope_ids(session, rows)
    if len(rows) == limit:
        response.headers["Link"] = next_link(request, str(rows[-1].id))
    return [DeliveryPublic.of(r, envelopes.get(r.id)) for r in rows]


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    response_model=DeliveryPublic,
)
def redeliver(
    subscription_id: str, delivery_id: int, principal: SubscriberDep, services: ServicesDep
) -> DeliveryPublic:
    """Send a delivery again at the worker's next tick."""
    row = webhooks.redeliver(
        services, subscription_id, delivery_id, department_id=principal.department_id
    )
    with services.sessions() as session:
        envelopes = webhooks.envelope_ids(session, [row])
    return DeliveryPublic.of(row, envelopes.get(row.id))
