"""Reading early warnings as the console shows them: a filtered list a page at a time, one
warning with its history, and the records it is about.

A department admin reads only its own department's warnings: a warning of another
department is not there (:class:`NotFoundError`), never refused, so that its existence is
not revealed. The list is newest first and paged by key (``after`` names the last warning of
the page before, which must match the same filters), so a page costs the same however deep.
The history comes from the audit trail, where acknowledging and closing record who, when and
the note; the raising comes from the warning itself, which every warning has.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from econtract.envelopes import Envelope
from econtract.errors import NotFoundError
from econtract.models import AuditEvent, Certificate, Department, UsageRecord
from econtract.services import Services
from econtract.supervision._drilldown import Page
from econtract.supervision._models import SupervisionWarning, WarningStatus
from econtract.supervision._rules import day_start
from econtract.supervision._warnings import RULES_ACTOR, WarningView

#: The kinds of warning (预警类型) the rules raise, in the words of electronic supervision
#: (GB/T 39046): Chinese first, English second.
WARNING_TYPES: dict[str, tuple[str, str]] = {
    "deadline-near": ("办理时限临近预警", "Deadline approaching"),
    "deadline-passed": ("超期办理预警", "Deadline passed"),
    "revocation-spike": ("证照注销异常预警", "Unusual number of revocations"),
    "off-hours-issuance": ("非工作时间办理预警", "Issuance outside office hours"),
    "new-seal-user": ("印章异常使用预警", "Seal used by a new client"),
    "failed-scans": ("证照核验异常预警", "Repeated failed verifications"),
    "used-after-revocation": ("违规用证预警", "Licence used after revocation"),
}

#: The most warnings a page holds.
MAX_PAGE = 200
#: The actions of the audit trail that make a warning's history.
HISTORY_ACTIONS = ("warning.raise", "warning.acknowledge", "warning.close")


def warning_type_names(warning_type: str) -> tuple[str, str]:
    """The Chinese and English names of a kind of warning (its code for one not known)."""
    return WARNING_TYPES.get(warning_type, (warning_type, warning_type))


@dataclass(frozen=True, kw_only=True)
class WarningFilter:
    """Which warnings a list shows."""

    status: WarningStatus | None = WarningStatus.OPEN
    """Their status; ``None`` for every status."""
    rule: str | None = None
    """The rule that raised them."""
    department_id: int | None = None
    """Their department (a department admin's own, always)."""
    since: date | None = None
    """The first China day they were raised on."""
    until: date | None = None
    """The last China day they were raised on (included)."""

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.until < self.since:
            raise ValueError("The period's last day comes before its first.")

    def query(self) -> Select[SupervisionWarning]:
        """The warnings this filter lets through, unordered."""
        stmt = select(SupervisionWarning)
        if self.status is not None:
            stmt = stmt.where(SupervisionWarning.status == self.status.value)
        if self.rule:
            stmt = stmt.where(SupervisionWarning.rule_id == self.rule)
        if self.department_id is not None:
            stmt = stmt.where(SupervisionWarning.department_id == self.department_id)
        if self.since is not None:
            stmt = stmt.where(SupervisionWarning.raised_at >= day_start(self.since))
        if self.until is not None:
            end = day_start(self.until + timedelta(days=1))
            stmt = stmt.where(SupervisionWarning.raised_at < end)
        return stmt


def warnings_page(
    services: Services, where: WarningFilter, *, limit: int = 50, after: str | None = None
) -> Page[WarningView]:
    """One page of the warnings ``where`` lets through, newest first."""
    limit = max(1, min(limit, MAX_PAGE))
    order = (SupervisionWarning.raised_at, SupervisionWarning.id)
    stmt = where.query()
    with services.sessions() as session:
        if after is not None:
            cursor = session.execute(
                stmt.where(SupervisionWarning.id == after).with_only_columns(*order)
            ).first()
            if cursor is None:
                raise NotFoundError(f"There is no warning {after!r} in this list.")
            stmt = stmt.where(tuple_(*order) < tuple_(*cursor))
        rows = session.scalars(
            stmt.order_by(*(column.desc() for column in order)).limit(limit + 1)
        ).all()
        items = tuple(WarningView.of(row) for row in rows[:limit])
    return Page(items=items, next_after=items[-1].id if len(rows) > limit else None)


def all_warnings(services: Services, where: WarningFilter) -> Iterator[WarningView]:
    """Every warning ``where`` lets through, newest first, read a page at a time (an export)."""
    after: str | None = None
    while True:
        page = warnings_page(services, where, limit=MAX_PAGE, after=after)
        yield from page.items
        if page.next_after is None:
            return
        after = page.next_after


@dataclass(frozen=True, kw_only=True)
class DepartmentName:
    """A department as a list of warnings names it."""

    id: int
    code: str
    name: str


def departments_by_id(services: Services) -> dict[int, DepartmentName]:
    """Every department by its registry id, for naming and picking them."""
    with services.sessions() as session:
        rows = session.execute(
            select(Department.id, Department.code, Department.name).order_by(Department.code)
        ).all()
    return {id_: DepartmentName(id=id_, code=code, name=name) for id_, code, name in rows}


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One step of a warning's handling."""

    at: datetime
    actor: str
    """``system:supervision`` for the rules, ``console:<account>`` or ``cli:<user>``."""
    status: WarningStatus
    """The status the step left the warning in."""
    note: str
    """The note written with it (none for the raising)."""


@dataclass(frozen=True, kw_only=True)
class SubjectRecord:
    """A record a warning is about."""

    kind: str
    """``envelope``, ``certificate``, ``seal``, ``client``, ``department`` or ``usage``."""
    id: str
    label: str
    """What a person reads: a title, a licence number, a name."""


@dataclass(frozen=True, kw_only=True)
class WarningRecord:
    """A warning with its history and the records it is about."""

    warning: WarningView
    history: tuple[HistoryEntry, ...]
    subjects: tuple[SubjectRecord, ...]


def warning_record(
    services: Services, warning_id: str, *, department_id: int | None = None
) -> WarningRecord:
    """The warning ``warning_id`` as a department admin of ``department_id`` (or, with
    ``None``, a supervisor) reads it; :class:`NotFoundError` when it is not theirs to read."""
    with services.sessions() as session:
        row = session.get(SupervisionWarning, warning_id)
        if row is None or (department_id is not None and row.department_id != department_id):
            raise NotFoundError(f"There is no warning {warning_id!r}.")
        warning = WarningView.of(row)
        events = session.scalars(
            select(AuditEvent)
            .where(
                AuditEvent.target_type == "warning",
                AuditEvent.target_id == warning_id,
                AuditEvent.action.in_(HISTORY_ACTIONS[1:]),
            )
            .order_by(AuditEvent.id)
        ).all()
        handled = tuple(
            HistoryEntry(
                at=event.created_at,
                actor=event.actor,
                status=WarningStatus(str(event.detail.get("to", WarningStatus.OPEN.value))),
                note=str(event.detail.get("note") or ""),
            )
            for event in events
        )
        subjects = _subjects(session, warning)
    raised = HistoryEntry(
        at=warning.raised_at, actor=RULES_ACTOR.name, status=WarningStatus.OPEN, note=""
    )
    return WarningRecord(warning=warning, history=(raised, *handled), subjects=subjects)


def _subjects(session: Session, warning: WarningView) -> tuple[SubjectRecord, ...]:
    """The records a warning's subject names, as far as the registry still knows them."""
    kind, subject = warning.subject_type, warning.subject_id
    if kind == "envelope":
        envelope_id, _, field = subject.partition("/")
        title = session.scalar(select(Envelope.title).where(Envelope.id == envelope_id))
        label = f"{title or envelope_id} ({field})" if field else (title or envelope_id)
        return (SubjectRecord(kind="envelope", id=envelope_id, label=label),)
    if kind == "seal":
        seal_id, _, actor = subject.partition("/")
        found = [SubjectRecord(kind="seal", id=seal_id, label=seal_id)]
        if actor.startswith("client:"):
            client_id = actor.removeprefix("client:")
            found.append(SubjectRecord(kind="client", id=client_id, label=client_id))
        return tuple(found)
    if kind == "department":
        department = session.get(Department, int(subject)) if subject.isdigit() else None
        if department is None:
            return ()
        label = f"{department.name} ({department.code})"
        return (SubjectRecord(kind="department", id=department.code, label=label),)
    if kind == "usage":
        use = session.scalar(select(UsageRecord).where(UsageRecord.usage_id == subject))
        found = [SubjectRecord(kind="usage", id=subject, label=subject)]
        if use is not None and use.certificate_id is not None:
            found.extend(_certificate(session, use.certificate_id))
        return tuple(found)
    if kind == "qr-subject":
        # A code that named no licence of the registry (a forgery) is about no record.
        return _certificate(session, subject)
    return ()


def _certificate(session: Session, certificate_id: str) -> tuple[SubjectRecord, ...]:
    number = session.scalar(select(Certificate.number).where(Certificate.id == certificate_id))
    if number is None:
        return ()
    return (SubjectRecord(kind="certificate", id=certificate_id, label=number),)
