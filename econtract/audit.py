"""The audit trail: one row per state-changing action, written in the action's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from econtract.models import AuditEvent


@dataclass(frozen=True, kw_only=True)
class Actor:
    """Who acts: an operator at the command line or an API client of a department."""

    name: str
    """``cli:<user>`` or ``client:<client id>``."""
    department_id: int | None = None
    """The department the actor belongs to (``None`` for an operator)."""
    request_id: str | None = None
    """The HTTP request id, when the action came over HTTP."""

    @classmethod
    def operator(cls, user: str = "operator") -> Actor:
        """An operator using the command line."""
        return cls(name=f"cli:{user}")


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    department_id: int | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event to the session (committed with the change it records)."""
    event = AuditEvent(
        actor=actor.name,
        department_id=department_id if department_id is not None else actor.department_id,
        action=action,
        target_type=target_type,
        target_id=target_id,
        request_id=actor.request_id,
        outcome=outcome,
        detail=detail or {},
    )
    session.add(event)
    return event
