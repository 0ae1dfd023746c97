"""Sending the deliveries that are due, at least once, with exponential backoff.

A round claims the due deliveries in a short transaction (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, the write queue on SQLite): it counts the attempt and moves the delivery's next
attempt past a lease, so that no other worker takes it while it is in flight and a worker
killed mid-flight only delays it until the lease ends. The requests go out with no
transaction open; a second short transaction records each outcome:

- a 2xx answer: ``delivered``;
- anything else (another status, a redirect, which is never followed, a timeout, an
  address the rules refuse at delivery time): ``failed``, next attempt after
  ``2**attempts`` seconds (at most an hour), or ``given-up`` after
  ``settings.webhook_max_attempts`` attempts.

A receiver may thus get an event more than once (a delivery whose answer was lost); it
deduplicates on the event id, which is the same in every attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from econtract import db
from econtract.clock import Clock
from econtract.config import Settings
from econtract.models import Certificate, Delivery, OutboxEvent, Subscription
from econtract.services import Services
from econtract.webhooks._sign import event_claims, sign_event
from econtract.webhooks._ssrf import UnsafeURLError, check_target

log = logging.getLogger("econtract.webhooks")

#: The longest wait between two attempts.
MAX_BACKOFF_SECONDS = 3600
#: Deliveries claimed per round.
BATCH = 20
#: How long past its timeout a claimed delivery stays with its worker.
LEASE_SECONDS = 60
#: A receiver's answer is not read beyond this (only its status counts).
MAX_ERROR_LENGTH = 200


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """A claimed delivery, ready to send."""

    delivery_id: int
    url: str
    event_id: str
    event_type: str
    body: str
    """The compact JWS."""


@dataclass(frozen=True, kw_only=True)
class Outcome:
    """What became of one attempt."""

    delivery_id: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        """Whether the receiver took it (a 2xx answer)."""
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt."""
    return timedelta(seconds=min(2**attempts, MAX_BACKOFF_SECONDS))


def claim_due(services: Services, *, clock: Clock) -> list[Outgoing]:
    """Claim up to :data:`BATCH` due deliveries of live subscriptions and sign their
    events."""
    now = clock.now()
    lease = timedelta(seconds=services.settings.webhook_timeout_seconds + LEASE_SECONDS)
    stmt = (
        select(Delivery, Subscription, OutboxEvent, Certificate)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(OutboxEvent, OutboxEvent.event_id == Delivery.event_id)
        # An envelope's delivery names no licence: its event is told from the outbox row.
        .outerjoin(Certificate, Certificate.id == Delivery.certificate_id)
        .where(
            Delivery.status.in_(("pending", "failed")),
            Delivery.next_attempt_at <= now,
            Subscription.deleted_at.is_(None),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(BATCH)
    )
    if not db.is_embedded(services.engine):
        stmt = stmt.with_for_update(of=Delivery, skip_locked=True)
    claimed: list[tuple[Delivery, Subscription, OutboxEvent, Certificate | None]] = []
    with db.transaction(services.sessions) as session:
        for delivery, subscription, event, certificate in session.execute(stmt).all():
            delivery.attempts += 1
            delivery.last_attempt_at = now
            delivery.next_attempt_at = now + lease
            claimed.append((delivery, subscription, event, certificate))
    signer = services.pki.event_signer
    return [
        Outgoing(
            delivery_id=delivery.id,
            url=subscription.url,
            event_id=event.event_id,
            event_type=event.type,
            body=sign_event(
                signer,
                # A licence's event is told from the licence, an envelope's from the outbox
                # row: the status and step the change left.
                event_claims(
                    event_id=event.event_id,
                    event_type=event.type,
                    occurred_at=event.created_at,
                    subscription_id=subscription.id,
                    certificate=certificate,
                    payload=event.payload,
                ),
            ),
        )
        for delivery, subscription, event, certificate in claimed
    ]


def send(outgoing: Outgoing, *, settings: Settings, client: httpx.Client) -> Outcome:
    """One attempt: check the URL's addresses now, connect to the address checked, post the
    JWS, and read nothing of the answer but its status."""
    try:
        target = check_target(outgoing.url, settings)
    except UnsafeURLError as exc:
        return Outcome(delivery_id=outgoing.delivery_id, status_code=None, error=str(exc))
    url = httpx.URL(outgoing.url)
    headers = {
        "Content-Type": "application/jose",
        "ECONTRACT-Event-Id": outgoing.event_id,
        "ECONTRACT-Event-Type": outgoing.event_type,
        # The request goes to the checked address; the Host header and the TLS server name
        # keep the name the subscription gave.
        "Host": url.netloc.decode("ascii"),
    }
    try:
        with client.stream(
            "POST",
            url.copy_with(host=str(target.address)),
            content=outgoing.body.encode("ascii"),
            headers=headers,
            extensions={"sni_hostname": target.host},
        ) as response:
            code = response.status_code
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH]
        return Outcome(delivery_id=outgoing.delivery_id, status_code=None, error=error)
    refused = None if 200 <= code < 300 else f"The receiver answered {code}."
    return Outcome(delivery_id=outgoing.delivery_id, status_code=code, error=refused)


def record_outcomes(services: Services, outcomes: list[Outcome], *, clock: Clock) -> None:
    """Write down each attempt's outcome and schedule the next attempt of a failed one."""
    if not outcomes:
        return
    now: datetime = clock.now()
    max_attempts = services.settings.webhook_max_attempts
    with db.transaction(services.sessions) as session:
        for outcome in outcomes:
            delivery = session.get(Delivery, outcome.delivery_id)
            if delivery is None:
                continue
            delivery.last_status_code = outcome.status_code
            delivery.last_error = outcome.error
            if outcome.delivered:
                delivery.status = "delivered"
                delivery.delivered_at = now
                delivery.next_attempt_at = None
            elif delivery.attempts >= max_attempts:
                delivery.status = "given-up"
                delivery.next_attempt_at = None
            else:
                delivery.status = "failed"
                delivery.next_attempt_at = now + backoff(delivery.attempts)


def deliver_due(services: Services, *, clock: Clock) -> list[Outcome]:
    """One round: claim, send, record; return the outcomes."""
    outgoing = claim_due(services, clock=clock)
    if not outgoing:
        return []
    timeout = httpx.Timeout(services.settings.webhook_timeout_seconds)
    with httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        outcomes = [send(o, settings=services.settings, client=client) for o in outgoing]
    record_outcomes(services, outcomes, clock=clock)
    for outcome in outcomes:
        log.info(
            "webhook delivery attempted",
            extra={
                "delivery_id": outcome.delivery_id,
                "status_code": outcome.status_code,
                "delivered": outcome.delivered,
            },
        )
    return outcomes
