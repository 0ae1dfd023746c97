"""The use list (用证清单): which department may use which licence type, for which matters.

An operator records a grant, lists grants and revokes one; each change is one use case in the
caller's transaction, recorded by :func:`econtract.events.record_change` (the audit event and
an outbox row, ``grant.added`` or ``grant.revoked``). The transparency log keeps no entry for
a grant: the log records what happened to licences and seals, and a grant is the operator's
policy, which the audit trail already keeps with who set it.

A department holds at most one live grant per licence type: its matters are listed on that
one grant, so the question "may this department use this type for this matter" has one
answer. A second grant is refused naming the first (:class:`GrantExistsError`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from econtract import audit
from econtract.clock import Clock
from econtract.departments import get_department
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.events import Change, record_change
from econtract.issuance import LicenceTemplate, get_template
from econtract.licence_metadata import HolderType
from econtract.models import Department, Grant, new_public_id
from econtract.sharing._catalogue import holder_types
from econtract.text import clean_text

#: The longest matter (事项) name a grant keeps, as the national sharing service allows.
MAX_MATTER_LENGTH = 200


class GrantExistsError(ConflictError):
    """The department already holds a live grant for the type; change or revoke that one."""

    code = "grant-exists"
    title = "The department already holds a grant for this licence type."

    def __init__(self, message: str, *, grant_id: str) -> None:
        super().__init__(message)
        self.grant_id = grant_id

    @property
    def data(self) -> dict[str, str]:
        """The grant that stands in the way."""
        return {"existing_grant_id": self.grant_id}


@dataclass(frozen=True, kw_only=True)
class GrantView:
    """A grant as the command line and the API show it: the department and type by code."""

    id: str
    """The grant's id."""
    department: str
    """The using department's credit code."""
    type: str
    """The licence type's code."""
    matters: tuple[str, ...]
    """The matters the type may be used for."""
    requires_consent: bool
    """Whether each use needs the holder's consent."""
    created_by: str
    """Who recorded it."""
    created_at: str
    """When, RFC 3339."""
    revoked_at: str | None
    """When it was revoked, RFC 3339; ``None`` while it stands."""

    def to_json(self) -> dict[str, Any]:
        """The grant as a JSON object."""
        return {
            "id": self.id,
            "department": self.department,
            "type": self.type,
            "matters": list(self.matters),
            "requires_consent": self.requires_consent,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def default_requires_consent(template: LicenceTemplate) -> bool:
    """Whether a grant of ``template`` needs consent when the operator does not say: yes for
    a type a citizen may hold (personal data are used only with the person's consent)."""
    return HolderType.CITIZEN_ID in holder_types(template)


def add_grant(
    session: Session,
    *,
    department_code: str,
    type_code: str,
    matters: Sequence[str],
    requires_consent: bool | None,
    actor: audit.Actor,
    clock: Clock,
) -> GrantView:
    """Record that ``department_code`` may use ``type_code`` for ``matters``.

    ``requires_consent`` ``None`` takes the type's default (:func:`default_requires_consent`).
    Refuses an unknown department or type (:class:`NotFoundError`), no matter, an empty or
    over-long matter (:class:`InvalidInputError`, by pointer), and a second live grant for the
    same department and type (:class:`GrantExistsError`).
    """
    department = get_department(session, department_code)
    template = get_template(type_code)
    cleaned = _clean_matters(matters)
    _refuse_a_second_grant(session, department, template.code)
    consent = default_requires_consent(template) if requires_consent is None else requires_consent
    now = clock.now()
    grant = Grant(
        id=new_public_id("grant"),
        department_id=department.id,
        type_code=template.code,
        matters=list(cleaned),
        requires_consent=consent,
        created_by=actor.name,
        created_at=now,
    )
    try:
        # A savepoint: a concurrent grant that won the race trips the unique index here, and
        # the transaction stays usable to name it.
        with session.begin_nested():
            session.add(grant)
    except IntegrityError:
        _refuse_a_second_grant(session, department, template.code)
        raise
    described = {"type": template.code, "matters": list(cleaned), "requires_consent": consent}
    record_change(
        session,
        change=Change(
            type="grant.added",
            action="grant.add",
            target_type="grant",
            target_id=grant.id,
            department_id=department.id,
            detail=described,
            payload={"grant_id": grant.id, "department": department.code, **described},
            at=now,
        ),
        actor=actor,
        clock=clock,
    )
    return _view(grant, department.code)


def list_grants(
    session: Session, *, department_code: str | None = None, include_revoked: bool = False
) -> list[GrantView]:
    """Grants, oldest first: the live ones, or all with ``include_revoked``; optionally of
    one department (unknown: :class:`NotFoundError`)."""
    query = (
        select(Grant, Department.code)
        .join(Department, Department.id == Grant.department_id)
        .order_by(Grant.created_at, Grant.id)
    )
    if department_code is not None:
        query = query.where(Grant.department_id == get_department(session, department_code).id)
    if not include_revoked:
        query = query.where(Grant.revoked_at.is_(None))
    return [_view(grant, code) for grant, code in session.execute(query)]


def revoke_grant(session: Session, *, grant_id: str, actor: audit.Actor, clock: Clock) -> GrantView:
    """Revoke a grant: its department may no longer use the type. Refuses an unknown grant
    (:class:`NotFoundError`) and one already revoked (:class:`ConflictError`)."""
    grant = session.get(Grant, grant_id.strip(), with_for_update=True)
    if grant is None:
        raise NotFoundError(f"No grant {grant_id!r}.")
    department = session.get(Department, grant.department_id)
    assert department is not None
    if grant.revoked_at is not None:
        raise ConflictError(f"Grant {grant.id} was already revoked on {_time(grant.revoked_at)}.")
    now = clock.now()
    grant.revoked_at = now
    record_change(
        session,
        change=Change(
            type="grant.revoked",
            action="grant.revoke",
            target_type="grant",
            target_id=grant.id,
            department_id=department.id,
            detail={"type": grant.type_code},
            payload={
                "grant_id": grant.id,
                "department": department.code,
                "type": grant.type_code,
            },
            at=now,
        ),
        actor=actor,
        clock=clock,
    )
    return _view(grant, department.code)


def _refuse_a_second_grant(session: Session, department: Department, type_code: str) -> None:
    existing = session.scalar(
        select(Grant).where(
            Grant.department_id == department.id,
            Grant.type_code == type_code,
            Grant.revoked_at.is_(None),
        )
    )
    if existing is not None:
        raise GrantExistsError(
            f"{department.code} already holds grant {existing.id} for {type_code}; "
            "revoke it first to change its matters.",
            grant_id=existing.id,
        )


def _clean_matters(matters: Sequence[str]) -> tuple[str, ...]:
    if not matters:
        raise InvalidInputError(
            "A grant names at least one matter.", errors=[("/matters", "no matter given")]
        )
    cleaned: list[str] = []
    for index, matter in enumerate(matters):
        try:
            text = clean_text(matter, field="matter", max_length=MAX_MATTER_LENGTH)
        except InvalidInputError as exc:
            raise InvalidInputError(
                f"Matter {index + 1}: {exc.message}",
                errors=[(f"/matters/{index}", message) for _, message in exc.errors],
            ) from None
        # The same matter named twice is one matter: the grant lists it once.
        if text not in cleaned:
            cleaned.append(text)
    return tuple(cleaned)


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _view(grant: Grant, department_code: str) -> GrantView:
    return GrantView(
        id=grant.id,
        department=department_code,
        type=grant.type_code,
        matters=tuple(grant.matters),
        requires_consent=grant.requires_consent,
        created_by=grant.created_by,
        created_at=_time(grant.created_at),
        revoked_at=_time(grant.revoked_at) if grant.revoked_at is not None else None,
    )
