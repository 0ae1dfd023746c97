"""Told when a licence or an envelope changes: subscriptions, and signed events delivered
at least once.

A using department subscribes an HTTPS endpoint to event types; when a licence it used in
the last ``settings.usage_notify_days`` is revoked, suspended, reinstated, superseded or
expires, the endpoint receives a compact JWS signed by the event key (:mod:`._sign`), from
the transactional outbox (:mod:`._fanout`), with exponential backoff (:mod:`._deliver`),
and only at addresses the rules allow (:mod:`._ssrf`). A department or an enterprise that
initiated an envelope or is one of its parties hears the same way of the envelope's
changes and of its steps' near deadlines.
"""

from econtract.webhooks._deliver import MAX_BACKOFF_SECONDS, Outcome, backoff, deliver_due
from econtract.webhooks._fanout import fan_out, sweep_expired
from econtract.webhooks._sign import (
    ENVELOPE_EVENT_TYPES,
    EVENT_TYP,
    EVENT_TYPES,
    LICENCE_EVENT_TYPES,
    event_claims,
    sign_event,
)
from econtract.webhooks._ssrf import (
    MAX_URL_LENGTH,
    Target,
    UnsafeURLError,
    address_class,
    check_target,
    check_url,
    resolve,
)
from econtract.webhooks._subscriptions import (
    SUBSCRIBING_SCOPES,
    create_subscription,
    delete_subscription,
    envelope_ids,
    event_types_for,
    get_subscription,
    list_deliveries,
    list_subscriptions,
    redeliver,
)
from econtract.webhooks._worker import RoundReport, WebhookWorker, run_round

__all__ = [
    "ENVELOPE_EVENT_TYPES",
    "EVENT_TYP",
    "EVENT_TYPES",
    "LICENCE_EVENT_TYPES",
    "MAX_BACKOFF_SECONDS",
    "MAX_URL_LENGTH",
    "SUBSCRIBING_SCOPES",
    "Outcome",
    "RoundReport",
    "Target",
    "UnsafeURLError",
    "WebhookWorker",
    "address_class",
    "backoff",
    "check_target",
    "check_url",
    "create_subscription",
    "delete_subscription",
    "deliver_due",
    "envelope_ids",
    "event_claims",
    "event_types_for",
    "fan_out",
    "get_subscription",
    "list_deliveries",
    "list_subscriptions",
    "redeliver",
    "resolve",
    "run_round",
    "sign_event",
    "sweep_expired",
]
