"""The audit trail: one row per state-changing action, written in the action's transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.csvsafe import csv_text
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


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """Filters of the audit trail (always within one department, or all for an operator)."""

    department_id: int | None
    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    target_id: str | None = None
    limit: int = 1000


def query_events(session: Session, query: AuditQuery) -> list[AuditEvent]:
    """Audit events matching ``query``, oldest first."""
    stmt = select(AuditEvent)
    if query.department_id is not None:
        stmt = stmt.where(AuditEvent.department_id == query.department_id)
    if query.since is not None:
        stmt = stmt.where(AuditEvent.created_at >= query.since)
    if query.until is not None:
        stmt = stmt.where(AuditEvent.created_at < query.until)
    if query.actor:
        stmt = stmt.where(AuditEvent.actor == query.actor)
    if query.target_id:
        stmt = stmt.where(AuditEvent.target_id == query.target_id)
    return list(session.scalars(stmt.order_by(AuditEvent.id).limit(query.limit)))


EXPORT_COLUMNS = (
    "id",
    "time",
    "actor",
    "action",
    "target_type",
    "target_id",
    "request_id",
    "outcome",
    "detail",
)


def event_json(event: AuditEvent) -> dict[str, Any]:
    """An audit event as JSON."""
    return {
        "id": event.id,
        "time": event.created_at.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "request_id": event.request_id,
        "outcome": event.outcome,
        "detail": event.detail,
    }


def to_jsonl(events: list[AuditEvent]) -> str:
    """Events as JSON Lines."""
    return "".join(json.dumps(event_json(e), ensure_ascii=False) + "\n" for e in events)


def to_csv(events: list[AuditEvent]) -> str:
    """Events as CSV (the detail column holds JSON)."""
    rows = (event_json(e) for e in events)
    return csv_text(
        EXPORT_COLUMNS,
        (
            [
                json.dumps(row[c], ensure_ascii=False) if c == "detail" else row[c]
                for c in EXPORT_COLUMNS
            ]
            for row in rows
        ),
    )
