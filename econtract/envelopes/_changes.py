"""An envelope's changes: closing it, expiring it when its step's deadline passed, and
recording each change in the audit trail and the outbox."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from econtract import audit
from econtract.envelopes._models import Envelope, EnvelopeParty, EnvelopeStatus
from econtract.events import Change, record_change
from econtract.services import Services
from econtract.translog import LogEntry

#: Who expires an envelope whose step's deadline passed: the service.
DEADLINE_ACTOR = audit.Actor(name="service:envelope-deadline")


def passed_deadline(services: Services, session: Session, envelope: Envelope) -> datetime | None:
    """The deadline of an open envelope's open step when it has passed, else None (reads
    only)."""
    if envelope.status != EnvelopeStatus.OPEN:
        return None
    deadline = session.scalar(
        select(EnvelopeParty.deadline)
        .where(EnvelopeParty.envelope_id == envelope.id, EnvelopeParty.step == envelope.step)
        .limit(1)
    )
    if deadline is None or services.clock.now() <= deadline:
        return None
    return deadline


def expire_if_due(services: Services, session: Session, envelope: Envelope) -> bool:
    """Mark an open envelope expired when its open step's deadline has passed (in a write
    transaction)."""
    deadline = passed_deadline(services, session, envelope)
    if deadline is None:
        return False
    now = services.clock.now()
    step = envelope.step
    if not close_envelope(
        session, envelope, EnvelopeStatus.EXPIRED, now, f"Step {step}'s deadline passed."
    ):
        return False
    record_envelope_change(
        services,
        session,
        DEADLINE_ACTOR,
        envelope_id=envelope.id,
        happened="expired",
        department_id=envelope.initiator_id,
        detail={"step": step, "deadline": deadline.isoformat()},
        state=(envelope.status, envelope.step),
    )
    return True


def record_envelope_change(
    services: Services,
    session: Session,
    actor: audit.Actor,
    *,
    envelope_id: str,
    happened: str,
    department_id: int,
    detail: dict[str, object],
    state: tuple[str, int],
    log_entry: Callable[[str], LogEntry] | None = None,
) -> None:
    """An envelope's change in the audit trail and the outbox (``envelope.<happened>``, with
    its status and step, nothing personal), and in the transparency log when ``log_entry``
    builds its entry (from the code of ``department_id``'s body): a party's seal and the
    completion are logged, opening and closing are not."""
    status, step = state
    record_change(
        session,
        change=Change(
            type=f"envelope.{happened}",
            action=f"envelope.{happened}",
            target_type="envelope",
            target_id=envelope_id,
            department_id=department_id,
            detail=detail,
            payload={"envelope_id": envelope_id, "status": status, "step": step},
            log_entry=log_entry,
        ),
        actor=actor,
        clock=services.clock,
    )


def close_envelope(
    session: Session, envelope: Envelope, status: EnvelopeStatus, now: datetime, reason: str
) -> bool:
    """Close an open envelope, only from the version that was read: a party's seal, a
    decline, a cancel and the deadline may come at the same moment, and only one of them
    moves the envelope (the others see it moved, and are refused or try again). ``False``
    when it had moved; ``envelope`` then shows it as it is now."""
    moved = session.execute(
        update(Envelope)
        .where(
            Envelope.id == envelope.id,
            Envelope.version == envelope.version,
            Envelope.status == EnvelopeStatus.OPEN.value,
        )
        .values(status=status.value, reason=reason, updated_at=now, version=envelope.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(envelope)
    return bool(moved.rowcount == 1)  # type: ignore[attr-defined]
