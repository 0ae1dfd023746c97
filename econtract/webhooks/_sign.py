"""The event a receiver gets: a compact JWS signed by the service's event key.

The body of a delivery is ``header.payload.signature`` (RFC 7515, ES256), the header
``{"alg": "ES256", "kid": <the event key's id>, "typ": "econtract-event+jwt"}``, the payload
the event JSON::

    {"event_id": "…", "type": "certificate.revoked", "occurred_at": "2026-…Z",
     "certificate": {"id": "crt_…", "identifier": "1.2.156.3005.2.…", "type": "…",
                     "status": "revoked", "national_status": {"code": "03", "name": "注销"}},
     "subscription_id": "sub_…"}

and for an envelope's change (``envelope.*``) the envelope in place of the licence::

    {"event_id": "…", "type": "envelope.sealed", "occurred_at": "2026-…Z",
     "envelope": {"id": "env_…", "status": "open", "step": 2},
     "subscription_id": "sub_…"}

The envelope's status and step are those the change left (a reminder's: the step whose
deadline is near). The event key is published in ``/.well-known/jwks.json`` under its own
key id and signs nothing else. An event names a licence or an envelope by its ids and
statuses only, never a holder, a party or the document.
"""

from __future__ import annotations

from collections.abc import Mapping
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
#: The licence's event types, owed to the departments that used the licence.
LICENCE_EVENT_TYPES = tuple(EVENT_STATUS)
#: The envelope's event types: its changes, and the reminder before a step's deadline.
ENVELOPE_EVENT_TYPES = (
    "envelope.created",
    "envelope.sealed",
    "envelope.completed",
    "envelope.declined",
    "envelope.cancelled",
    "envelope.expired",
    "envelope.reminder",
)
#: Every event type a subscription may ask for.
EVENT_TYPES = (*LICENCE_EVENT_TYPES, *ENVELOPE_EVENT_TYPES)


def event_claims(
    *,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    subscription_id: str,
    certificate: Certificate | None = None,
    payload: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event JSON of one delivery (see the module's docstring): a licence's event names
    ``certificate``, an envelope's the envelope of its outbox ``payload``."""
    subject: tuple[str, dict[str, Any]]
    if event_type in ENVELOPE_EVENT_TYPES:
        if payload is None:
            raise ValueError("An envelope's event is told from its outbox payload.")
        subject = (
            "envelope",
            {
                "id": str(payload["envelope_id"]),
                "status": str(payload["status"]),
                "step": int(payload["step"]),
            },
        )
    else:
        if certificate is None:
            raise ValueError("A licence's event names its licence.")
        status = EVENT_STATUS[event_type]
        code, name = NATIONAL_STATUS[status]
        subject = (
            "certificate",
            {
                "id": certificate.id,
                "identifier": certificate.identifier,
                "type": certificate.type_code,
                "status": status,
                "national_status": {"code": code, "name": name},
            },
        )
    return {
        "event_id": event_id,
        "type": event_type,
        "occurred_at": _instant(occurred_at),
        subject[0]: subject[1],
        "subscription_id": subscription_id,
    }


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def sign_event(key: TokenKey, claims: dict[str, Any]) -> str:
    """The compact JWS of ``claims``, signed by the event key."""
    return key.sign(claims, typ=EVENT_TYP)
