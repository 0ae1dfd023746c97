"""The event a receiver gets: a compact JWS signed by the service's event key.

The body of a delivery is ``header.payload.signature`` (RFC 7515, ES256), the header
``{"alg": "ES256", "kid": <the event key's id>, "typ": "econtract-event+jwt"}``, the payload
the event JSON::

    {"event_id": "…", "type": "certificate.revoked", "occurred_at": "2026-…Z",
     "certificate": {"id": "crt_…", "identifier": "1.2.156.3005.2.…", "type": "…",
                     "status": "revoked", "national_status": {"code": "03", "name": "注销"}},
     "subscription_id": "sub_…"}

The event key is published in ``/.well-known/jwks.json`` under its own key id and signs
nothing else. An event names a licence by its ids and statuses only, never its holder.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from econtract.licence_metadata import NATIONAL_STATUS
from econtract.models import Certificate
from econtract.tokens import TokenKey

EVENT_TYP = "econtract-event+jwt"

#: The event types a subscription may ask for, and the status each one leaves.
EVENT_STATUS = {
    "certificate.revoked": "revoked",
    "certificate.suspended": "suspended",
    "certificate.reinstated": "valid",
    "certificate.superseded": "superseded",
    "certificate.expired": "expired",
}
EVENT_TYPES = tuple(EVENT_STATUS)


def event_claims(
    *,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    certificate: Certificate,
    subscription_id: str,
) -> dict[str, Any]:
    """The event JSON of one delivery (see the module's docstring)."""
    status = EVENT_STATUS[event_type]
    code, name = NATIONAL_STATUS[status]
    return {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "certificate": {
            "id": certificate.id,
            "identifier": certificate.identifier,
            "type": certificate.type_code,
            "status": status,
            "national_status": {"code": code, "name": name},
        },
        "subscription_id": subscription_id,
    }


def sign_event(key: TokenKey, claims: dict[str, Any]) -> str:
    """The compact JWS of ``claims``, signed by the event key."""
    return key.sign(claims, typ=EVENT_TYP)
