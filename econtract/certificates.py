"""Issued certificates: lookups scoped to a department, status changes, supersession."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, literal, select
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.events import Change, StatusChange, record_change
from econtract.issuance import (
    EffectiveStatus,
    Issued,
    IssueRequest,
    certificate_payload,
    issue_certificate,
)
from econtract.models import Certificate, CertificateStatus, StatusEvent
from econtract.services import Services
from econtract.text import clean_text
from econtract.translog import LogEntry

#: Kept for callers that name the derived status alone.
EXPIRED = EffectiveStatus.EXPIRED

#: Which registry statuses each action moves a certificate from, and to which one.
TRANSITIONS: dict[str, tuple[frozenset[CertificateStatus], CertificateStatus]] = {
    "revoke": (
        frozenset({CertificateStatus.VALID, CertificateStatus.SUSPENDED}),
        CertificateStatus.REVOKED,
    ),
    "suspend": (frozenset({CertificateStatus.VALID}), CertificateStatus.SUSPENDED),
    "reinstate": (frozenset({CertificateStatus.SUSPENDED}), CertificateStatus.VALID),
}


PAST_TENSE = {"revoke": "revoked", "suspend": "suspended", "reinstate": "reinstated"}


def get_certificate(
    session: Session, certificate_id: str, *, department_id: int | None, for_update: bool = False
) -> Certificate:
    """A certificate; another department's answers exactly like one that does not exist."""
    certificate = session.get(Certificate, certificate_id, with_for_update=for_update)
    if certificate is None or (
        department_id is not None and certificate.department_id != department_id
    ):
        raise NotFoundError(f"No certificate {certificate_id!r}.")
    return certificate


@dataclass(frozen=True, kw_only=True)
class CertificateQuery:
    """Filters of a certificate listing: one department's, or every department's for a
    supervisor who reads them all."""

    department_id: int | None
    """The department listed; ``None`` lists every department (the console's supervisor)."""
    type_code: str | None = None
    status: str | None = None
    number: str | None = None
    holder: str | None = None
    limit: int = 50
    after: str | None = None
    """The id of the last certificate of the previous page (newest first)."""


def list_certificates(session: Session, query: CertificateQuery) -> list[Certificate]:
    """A page of the department's certificates, newest first."""
    if not 1 <= query.limit <= 200:
        raise InvalidInputError("limit is between 1 and 200.", errors=[("/limit", "out of range")])
    stmt = select(Certificate)
    if query.department_id is not None:
        stmt = stmt.where(Certificate.department_id == query.department_id)
    if query.type_code:
        stmt = stmt.where(Certificate.type_code == query.type_code)
    if query.status:
        stmt = stmt.where(Certificate.status == query.status)
    if query.number:
        stmt = stmt.where(Certificate.number == query.number)
    if query.holder:
        stmt = stmt.where(holder_matches(query.holder))
    if query.after:
        last = get_certificate(session, query.after, department_id=query.department_id)
        stmt = stmt.where(
            (Certificate.issued_at < last.issued_at)
            | ((Certificate.issued_at == last.issued_at) & (Certificate.id < last.id))
        )
    stmt = stmt.order_by(Certificate.issued_at.desc(), Certificate.id.desc()).limit(query.limit)
    return list(session.scalars(stmt))


HOLDER_SUBSTRING_MIN = 3
"""The shortest part of a holder's name looked for anywhere in the name; a shorter one is
looked for at the start of the name."""


def holder_matches(holder: str) -> ColumnElement[bool]:
    """The list's condition on the holder's name: it contains ``holder`` when that has at least
    ``HOLDER_SUBSTRING_MIN`` characters, and begins with it when it is shorter."""
    # On PostgreSQL a trigram index answers both forms. A part of one or two characters has no
    # trigram of its own inside a name, so looked for anywhere it would read every certificate
    # of the department (on a million, seconds for a rare part); at the start of the name it
    # has the trigrams that the name's padded beginning makes. A two-character personal name
    # (surname first) is still found. A holder named with % or _ is looked for as written, not
    # as a LIKE pattern (escaped as SQLAlchemy's autoescape does).
    escaped = holder.replace("/", "//").replace("%", "/%").replace("_", "/_")
    pattern = f"%{escaped}%" if len(holder) >= HOLDER_SUBSTRING_MIN else f"{escaped}%"
    # The pattern is written into the statement, not bound: a statement the driver has
    # prepared may get PostgreSQL's generic plan, which cannot see the pattern and reads the
    # department newest first to the end for a rare part (about a second on a million).
    return Certificate.holder_name.like(literal(pattern, literal_execute=True), escape="/")


def change_status(
    services: Services, *, certificate_id: str, action: str, reason: str, actor: audit.Actor
) -> Certificate:
    """Revoke, suspend or reinstate a certificate, with a status event and an audit event."""
    if action not in TRANSITIONS:
        raise InvalidInputError(f"Unknown action {action!r}.", errors=[("/action", "unknown")])
    reason = clean_text(reason, field="reason", max_length=500)
    allowed_from, target = TRANSITIONS[action]
    with db.transaction(services.sessions) as session:
        certificate = get_certificate(
            session, certificate_id, department_id=actor.department_id, for_update=True
        )
        if certificate.status not in allowed_from:
            raise ConflictError(
                f"Certificate {certificate.number} is {certificate.status}; it cannot be "
                f"{PAST_TENSE[action]}."
            )
        previous = certificate.status
        now = services.clock.now()
        certificate.status = target.value
        record_change(
            session,
            change=Change(
                type=f"certificate.{PAST_TENSE[action]}",
                action=f"certificate.{action}",
                target_type="certificate",
                target_id=certificate.id,
                department_id=certificate.department_id,
                detail={"from": previous, "to": target.value, "reason": reason},
                payload=certificate_payload(certificate, previous=previous, reason=reason),
                status=StatusChange(
                    certificate_id=certificate.id,
                    from_status=previous,
                    to_status=target.value,
                    reason=reason,
                ),
                log_entry=lambda code: LogEntry.certificate_status_changed(
                    certificate,
                    department_code=code,
                    previous_status=previous,
                    reason=reason,
                    time=now,
                ),
                at=now,
            ),
            actor=actor,
            clock=services.clock,
        )
    return certificate


def supersede(
    services: Services,
    *,
    certificate_id: str,
    department_code: str,
    fields: dict[str, object] | None,
    valid_from: date | None,
    valid_until: date | None,
    actor: audit.Actor,
) -> Issued:
    """Renew or amend: a new certificate with its own number pointing to the old one, which
    shows SUPERSEDED.

    ``fields`` is merged into the old certificate's fields as a JSON merge patch (RFC 7396):
    a field it names replaces the old value, a field it sets to ``None`` is removed, and every
    other field is kept. The merged fields are validated as a whole."""
    with services.sessions() as session:
        old = get_certificate(session, certificate_id, department_id=actor.department_id)
    request = IssueRequest(
        type_code=old.type_code,
        fields=merge_fields(old.fields, fields),
        valid_from=valid_from,
        valid_until=valid_until,
        supersedes=old.id,
    )
    return issue_certificate(
        services, department_code=department_code, request=request, actor=actor
    )


def merge_fields(old: Mapping[str, Any], changes: Mapping[str, object] | None) -> dict[str, Any]:
    """``old`` with ``changes`` applied as a JSON merge patch on the top level (RFC 7396): a
    named field replaces, ``None`` removes, the rest is kept."""
    merged = dict(old)
    for name, value in (changes or {}).items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def status_history(session: Session, certificate_id: str) -> list[StatusEvent]:
    """The certificate's status events, oldest first."""
    return list(
        session.scalars(
            select(StatusEvent)
            .where(StatusEvent.certificate_id == certificate_id)
            .order_by(StatusEvent.created_at, StatusEvent.id)
        )
    )
