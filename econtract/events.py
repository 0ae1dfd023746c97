"""Recording a change: the one way a state change of the registry is written down.

Every change of a certificate, a seal or a sealed document is recorded by
:func:`record_change`, inside the transaction of the use case that makes it, in this order:

1. the certificate's status event, when its status changed;
2. the audit event (who, what, on which object);
3. a flush, so that the rows have their identifiers and times;
4. the entry of the transparency log, which names the department by its code;
5. the outbox row that signed webhook delivery and later consumers read.

They commit or roll back together: a change the registry shows is in the audit trail, the
log and the outbox, and a change that rolled back is in none of them. The outbox payload
names objects and statuses only, never a holder's personal data, and a free-text reason
only by its kind (:mod:`econtract.reasons`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from econtract import audit
from econtract.clock import Clock
from econtract.models import Department, OutboxEvent, StatusEvent
from econtract.translog import LogEntry, append_entry


@dataclass(frozen=True, kw_only=True)
class StatusChange:
    """A certificate's move from one status to another."""

    certificate_id: str
    """The certificate whose status changes."""
    from_status: str | None
    """Its status before (``None`` for a new certificate)."""
    to_status: str
    """Its status after."""
    reason: str | None = None
    """Why, as the department said it (kept whole in the registry, never in the outbox)."""


@dataclass(frozen=True, kw_only=True)
class Change:
    """One state change, as the audit trail, the log and the outbox each record it."""

    type: str
    """The outbox event type, past tense: ``certificate.revoked``, ``seal.created``."""
    action: str
    """The audit action: ``certificate.revoke``, ``seal.create``."""
    target_type: str
    """``certificate``, ``seal`` or ``document``."""
    target_id: str
    """The identifier of what changed."""
    department_id: int
    """The department the changed object belongs to."""
    detail: Mapping[str, Any] = field(default_factory=dict)
    """The audit event's detail."""
    payload: Mapping[str, Any] = field(default_factory=dict)
    """The outbox payload: identifiers and statuses, no personal data."""
    log_entry: Callable[[str], LogEntry] | None = None
    """Builds the log entry from the department's code; ``None`` for a change the log does
    not keep (a seal's retirement)."""
    status: StatusChange | None = None
    """The certificate's status event, when its status changed."""
    at: datetime | None = None
    """When it happened; the clock's current time when unset."""

    def __post_init__(self) -> None:
        if not self.type or "." not in self.type:
            raise ValueError(f"An event type names the object and what happened: {self.type!r}.")
        if self.status is not None and self.target_type != "certificate":
            raise ValueError("Only a certificate has a status event.")


def record_change(
    session: Session, *, change: Change, actor: audit.Actor, clock: Clock
) -> OutboxEvent:
    """Record ``change`` in the caller's transaction (see the module's docstring for the
    order); return its outbox row."""
    now = change.at or clock.now()
    if change.status is not None:
        session.add(
            StatusEvent(
                certificate_id=change.status.certificate_id,
                from_status=change.status.from_status,
                to_status=change.status.to_status,
                reason=change.status.reason,
                actor=actor.name,
                created_at=now,
            )
        )
    event = audit.record(
        session,
        actor=actor,
        action=change.action,
        department_id=change.department_id,
        target_type=change.target_type,
        target_id=change.target_id,
        detail=dict(change.detail),
    )
    event.created_at = now
    session.flush()
    if change.log_entry is not None:
        department = session.get(Department, change.department_id)
        assert department is not None
        append_entry(session, change.log_entry(department.code))
    outbox = OutboxEvent(
        event_id=str(uuid.uuid4()),
        type=change.type,
        subject_id=change.target_id,
        department_id=change.department_id,
        payload=dict(change.payload),
        created_at=now,
    )
    session.add(outbox)
    return outbox
