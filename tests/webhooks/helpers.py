"""Steps the webhook tests share: a use of a licence, a subscription, a revocation, and the
check a receiver makes of an event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select

from econtract import db, webhooks
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import change_status
from econtract.clock import FixedClock
from econtract.models import Certificate, Department, Subscription
from econtract.services import Services
from econtract.sharing import GRANTED, LicenceRef, UseContext, record_use
from tests.factories import OPERATOR


def department_id(services: Services, code: str = DEMO_DEPARTMENT_CODE) -> int:
    """The registry id of a department."""
    with services.sessions() as session:
        return session.scalars(select(Department.id).where(Department.code == code)).one()


def use(services: Services, certificate: Certificate, *, result: str = GRANTED) -> None:
    """The demo department looks the licence up (a usage record with ``result``)."""
    context = UseContext.create(
        department_id=department_id(services),
        department_code=DEMO_DEPARTMENT_CODE,
        client_id="window",
        use_cause="办理许可延续",
        matter="食品经营许可延续",
    )
    with db.transaction(services.sessions) as session:
        record_use(
            session,
            context,
            action="lookup",
            result=result,
            clock=services.clock,
            licences=[LicenceRef.of(certificate)],
        )


def subscribe(
    services: Services, url: str, events: tuple[str, ...] = webhooks.EVENT_TYPES
) -> Subscription:
    """A subscription of the demo department."""
    return webhooks.create_subscription(
        services,
        department_id=department_id(services),
        url=url,
        events=events,
        created_by="window",
    )


def revoke(services: Services, certificate: Certificate) -> None:
    """The issuing department revokes the licence."""
    change_status(
        services,
        certificate_id=certificate.id,
        action="revoke",
        reason="以欺骗手段取得",
        actor=OPERATOR,
    )


def verified_event(body: str, jwks: dict[str, Any]) -> dict[str, Any]:
    """What a receiver does: find the key the header names in the JWKS, check the type and
    the ES256 signature, and return the event."""
    header = jwt.get_unverified_header(body)
    assert header["typ"] == webhooks.EVENT_TYP
    [jwk] = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    key = jwt.PyJWK(jwk).key
    event: dict[str, Any] = jwt.decode(body, key=key, algorithms=["ES256"])
    return event


def later(seconds: float = 60) -> FixedClock:
    """A clock ahead of the wall clock, so that what was just written is due."""
    return FixedClock(datetime.now(UTC) + timedelta(seconds=seconds))
