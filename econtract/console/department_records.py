"""What the console's department pages list: a department's API clients, seals and the uses of
its licences by other departments, and the one change of a client a department admin makes
there (enabling or disabling it).

Every function takes the department it is scoped to; ``None`` is every department, as a
supervisor reads them. A record of another department than the one given is not found, exactly
like one that does not exist. Certificates and envelopes are listed by their own use cases
(:func:`econtract.certificates.list_certificates`, :func:`econtract.envelopes.list_envelopes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from econtract import audit, db
from econtract.clients import disable_client, enable_client
from econtract.errors import InvalidInputError, NotFoundError
from econtract.models import ApiClient, Certificate, Department, Seal, UsageRecord
from econtract.services import Services

#: The most uses one page lists.
MAX_PAGE = 200


@dataclass(frozen=True, kw_only=True)
class ClientRow:
    """An API client as its department's admin sees it (never its secret's hash)."""

    id: str
    name: str
    department_code: str
    department_name: str
    scopes: str
    created_at: datetime
    enabled: bool


@dataclass(frozen=True, kw_only=True)
class SealRow:
    """A seal, with the subject its certificate names."""

    id: str
    kind: str
    algorithm: str
    department_code: str
    subject: str
    """The seal certificate's subject (RFC 4514)."""
    not_before: datetime
    not_after: datetime
    status: str


@dataclass(frozen=True, kw_only=True)
class UseRow:
    """A use of a department's licence by another department."""

    cursor: int
    """The record's row number: the ``after`` of the next page."""
    usage_id: str
    time: datetime
    user_code: str
    """The using department's credit code."""
    user_name: str
    issuer_code: str
    certificate_id: str
    number: str
    action: str
    use_cause: str
    matter: str
    case_number: str | None
    consent_id: str | None
    """The holder's consent the use relied on, if it needed one."""
    result: str


def clients_of(session: Session, *, department_id: int | None) -> list[ClientRow]:
    """The department's clients (every client for ``None``), oldest first."""
    stmt = (
        select(ApiClient, Department)
        .join(Department, Department.id == ApiClient.department_id)
        .order_by(ApiClient.created_at, ApiClient.id)
    )
    if department_id is not None:
        stmt = stmt.where(ApiClient.department_id == department_id)
    return [
        ClientRow(
            id=client.id,
            name=client.name,
            department_code=owner.code,
            department_name=owner.name,
            scopes=client.scopes,
            created_at=client.created_at,
            enabled=client.disabled_at is None,
        )
        for client, owner in session.execute(stmt)
    ]


def set_client_enabled(
    services: Services, *, client_id: str, enabled: bool, actor: audit.Actor
) -> None:
    """Enable or disable one of the actor's department's clients (another department's, or
    an operator's actor without a department: not found), audited with the actor."""
    with db.transaction(services.sessions) as session:
        client = session.get(ApiClient, client_id)
        if client is None or actor.department_id != client.department_id:
            raise NotFoundError(f"No client {client_id!r}.")
        change = enable_client if enabled else disable_client
        change(session, client_id=client_id, actor=actor)


def seals_of(session: Session, *, department_id: int | None) -> list[SealRow]:
    """The department's seals (every seal for ``None``), newest first."""
    stmt = (
        select(Seal, Department.code)
        .join(Department, Department.id == Seal.department_id)
        .order_by(Seal.created_at.desc(), Seal.id)
    )
    if department_id is not None:
        stmt = stmt.where(Seal.department_id == department_id)
    return [
        SealRow(
            id=seal.id,
            kind=seal.kind,
            algorithm=seal.algorithm,
            department_code=code,
            subject=x509.load_der_x509_certificate(seal.certificate_der).subject.rfc4514_string(),
            not_before=seal.not_before,
            not_after=seal.not_after,
            status=seal.status,
        )
        for seal, code in session.execute(stmt)
    ]


def uses_of_licences(
    session: Session, *, issuer_id: int | None, after: int | None = None, limit: int = 50
) -> tuple[list[UseRow], bool]:
    """A page of the uses of the department's licences by other departments (of every
    department's licences for ``None``), newest first, and whether more follow. ``after`` is
    the cursor of the last use of the page before."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInputError(
            f"A page holds 1 to {MAX_PAGE} uses.", errors=[("/limit", "out of range")]
        )
    user = aliased(Department)
    issuer = aliased(Department)
    stmt = (
        select(UsageRecord, Certificate.number, user.code, user.name, issuer.code)
        .join(Certificate, Certificate.id == UsageRecord.certificate_id)
        .join(user, user.id == UsageRecord.department_id)
        .join(issuer, issuer.id == Certificate.department_id)
        .where(UsageRecord.department_id != Certificate.department_id)
    )
    if issuer_id is not None:
        stmt = stmt.where(Certificate.department_id == issuer_id)
    if after is not None:
        stmt = stmt.where(UsageRecord.id < after)
    rows = session.execute(stmt.order_by(UsageRecord.id.desc()).limit(limit + 1)).all()
    uses = [
        UseRow(
            cursor=use.id,
            usage_id=use.usage_id,
            time=use.created_at,
            user_code=user_code,
            user_name=user_name,
            issuer_code=issuer_code,
            certificate_id=use.certificate_id or "",
            number=number,
            action=use.action,
            use_cause=use.use_cause,
            matter=use.matter,
            case_number=use.case_number,
            consent_id=use.consent_id,
            result=use.result,
        )
        for use, number, user_code, user_name, issuer_code in rows[:limit]
    ]
    return uses, len(rows) > limit
