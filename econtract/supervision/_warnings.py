"""Early warnings (监察预警): raised by the rules, acknowledged and closed by supervisors.

:func:`evaluate_warnings` runs every rule (:mod:`econtract.supervision._rules`) and inserts
the warnings not raised before. The unique key (rule, subject, window) decides: the insert
does nothing when the row exists, so that two workers evaluating at once raise one warning,
and only the worker whose insert wrote the row records it (audit trail, outbox
``warning.raised``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.errors import ConflictError, NotFoundError
from econtract.events import Change, record_change
from econtract.models import Department, new_public_id
from econtract.services import Services
from econtract.supervision._models import SupervisionWarning, WarningStatus
from econtract.supervision._rules import RULES, Candidate

#: Who raises warnings in the audit trail.
RULES_ACTOR = audit.Actor(name="system:supervision")
#: The longest note a supervisor writes on one acknowledgement or closing.
MAX_NOTE_LENGTH = 2000


@dataclass(frozen=True, kw_only=True)
class Supervisor:
    """A person who handles warnings, as the audit trail names them."""

    name: str
    """``console:<account>`` or ``cli:<user>``."""
    department_id: int | None = None
    """The department of a department admin; ``None`` for a supervisor of every one."""


@dataclass(frozen=True, kw_only=True)
class WarningView:
    """A warning as a supervisor reads it."""

    id: str
    rule_id: str
    warning_type: str
    department_id: int | None
    subject_type: str
    subject_id: str
    window: str
    raised_at: datetime
    description_zh: str
    description_en: str
    status: WarningStatus
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    closed_by: str | None
    closed_at: datetime | None
    note: str | None

    @classmethod
    def of(cls, row: SupervisionWarning) -> WarningView:
        """The view of a stored warning."""
        return cls(
            id=row.id,
            rule_id=row.rule_id,
            warning_type=row.warning_type,
            department_id=row.department_id,
            subject_type=row.subject_type,
            subject_id=row.subject_id,
            window=row.window,
            raised_at=row.raised_at,
            description_zh=row.description_zh,
            description_en=row.description_en,
            status=WarningStatus(row.status),
            acknowledged_by=row.acknowledged_by,
            acknowledged_at=row.acknowledged_at,
            closed_by=row.closed_by,
            closed_at=row.closed_at,
            note=row.note,
        )


class WarningClosedError(ConflictError):
    """The warning was closed: it is not acknowledged or closed again."""

    code = "warning-closed"
    title = "The warning is closed."


def evaluate_warnings(services: Services) -> int:
    """Run every rule and raise the warnings not raised before; return how many were."""
    with services.sessions() as session:
        candidates = [c for rule in RULES for c in rule(session, services.settings, services.clock)]
        known = _known(session, candidates)
    fresh = [c for c in candidates if (c.rule_id, c.subject_id, c.window) not in known]
    if not fresh:
        return 0
    raised = 0
    with db.transaction(services.sessions) as session:
        platform_id = session.scalar(
            select(Department.id).where(Department.code == services.settings.platform_code)
        )
        for candidate in fresh:
            raised += _raise(services, session, candidate, platform_id)
    return raised


def _known(session: Session, candidates: list[Candidate]) -> set[tuple[str, str, str]]:
    subjects = {c.subject_id for c in candidates}
    if not subjects:
        return set()
    rows = session.execute(
        select(
            SupervisionWarning.rule_id, SupervisionWarning.subject_id, SupervisionWarning.window
        ).where(SupervisionWarning.subject_id.in_(subjects))
    ).all()
    return set(rows)


def _raise(
    services: Services, session: Session, candidate: Candidate, platform_id: int | None
) -> int:
    """Insert the warning unless it exists; record it when this insert wrote it."""
    now = services.clock.now()
    warning_id = new_public_id("wrn")
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(SupervisionWarning)
        .values(
            id=warning_id,
            rule_id=candidate.rule_id,
            warning_type=candidate.warning_type,
            department_id=candidate.department_id,
            subject_type=candidate.subject_type,
            subject_id=candidate.subject_id,
            window=candidate.window,
            raised_at=now,
            description_zh=candidate.description_zh[:500],
            description_en=candidate.description_en[:500],
            status=WarningStatus.OPEN.value,
        )
        .on_conflict_do_nothing(index_elements=["rule_id", "subject_id", "window"])
        .returning(SupervisionWarning.id)
    )
    if session.execute(stmt).scalar() is None:
        return 0
    # A warning about no department (a code nobody issued) belongs to the platform, the body
    # that runs the service, in the audit trail.
    department_id = candidate.department_id or platform_id
    if department_id is not None:
        record_change(
            session,
            change=Change(
                type="warning.raised",
                action="warning.raise",
                target_type="warning",
                target_id=warning_id,
                department_id=department_id,
                detail={
                    "rule": candidate.rule_id,
                    "subject_type": candidate.subject_type,
                    "subject": candidate.subject_id,
                    "window": candidate.window,
                },
                payload={
                    "warning_id": warning_id,
                    "rule_id": candidate.rule_id,
                    "warning_type": candidate.warning_type,
                    "subject_type": candidate.subject_type,
                    "subject_id": candidate.subject_id,
                },
                at=now,
            ),
            actor=RULES_ACTOR,
            clock=services.clock,
        )
    return 1


def acknowledge(services: Services, warning_id: str, note: str, user: Supervisor) -> WarningView:
    """Mark a warning seen by ``user``, with a note; refused for a closed warning."""
    return _handle(services, warning_id, note, user, WarningStatus.ACKNOWLEDGED)


def close(services: Services, warning_id: str, note: str, user: Supervisor) -> WarningView:
    """Close a warning (dealt with), with a note; refused for a closed warning."""
    return _handle(services, warning_id, note, user, WarningStatus.CLOSED)


def _handle(
    services: Services, warning_id: str, note: str, user: Supervisor, to: WarningStatus
) -> WarningView:
    note = note.strip()[:MAX_NOTE_LENGTH]
    with db.transaction(services.sessions) as session:
        stmt = select(SupervisionWarning).where(SupervisionWarning.id == warning_id)
        if not db.is_embedded(services.engine):
            stmt = stmt.with_for_update()
        row = session.scalars(stmt).one_or_none()
        if row is None or (
            user.department_id is not None and row.department_id != user.department_id
        ):
            raise NotFoundError(f"There is no warning {warning_id!r}.")
        if row.status == WarningStatus.CLOSED.value:
            raise WarningClosedError(f"The warning {warning_id} was closed on {row.closed_at}.")
        now = services.clock.now()
        if to is WarningStatus.ACKNOWLEDGED:
            row.acknowledged_by, row.acknowledged_at = user.name, now
        else:
            row.closed_by, row.closed_at = user.name, now
        from_status, row.status = row.status, to.value
        if note:
            line = f"{now.isoformat(timespec='seconds')} {user.name} ({to.value}): {note}"
            row.note = f"{row.note}\n{line}" if row.note else line
        platform_id = session.scalar(
            select(Department.id).where(Department.code == services.settings.platform_code)
        )
        department_id = row.department_id or platform_id
        if department_id is not None:
            verb = "acknowledge" if to is WarningStatus.ACKNOWLEDGED else "close"
            record_change(
                session,
                change=Change(
                    type=f"warning.{to.value}",
                    action=f"warning.{verb}",
                    target_type="warning",
                    target_id=row.id,
                    department_id=department_id,
                    detail={"from": from_status, "to": to.value, "note": note},
                    payload={"warning_id": row.id, "status": to.value},
                    at=now,
                ),
                actor=audit.Actor(name=user.name, department_id=user.department_id),
                clock=services.clock,
            )
        session.flush()
        return WarningView.of(row)


def list_warnings(
    services: Services,
    *,
    department_id: int | None = None,
    status: WarningStatus | str | None = None,
    rule: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[WarningView]:
    """The warnings matching the filters, newest first (``department_id`` for a department
    admin, who sees only its own)."""
    stmt = select(SupervisionWarning)
    if department_id is not None:
        stmt = stmt.where(SupervisionWarning.department_id == department_id)
    if status is not None:
        stmt = stmt.where(SupervisionWarning.status == WarningStatus(status).value)
    if rule is not None:
        stmt = stmt.where(SupervisionWarning.rule_id == rule)
    if since is not None:
        stmt = stmt.where(SupervisionWarning.raised_at >= since)
    stmt = stmt.order_by(SupervisionWarning.raised_at.desc(), SupervisionWarning.id.desc())
    with services.sessions() as session:
        rows = session.scalars(stmt.limit(limit).offset(offset)).all()
        return [WarningView.of(row) for row in rows]
