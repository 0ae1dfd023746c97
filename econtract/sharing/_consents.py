"""The holder's consents (授权用证), given, listed and withdrawn through the holder app.

A consent lets one department use one licence, or the holder's licences of one type, for one
matter (and, if named, one case) until a time. :func:`give_consent` checks, in this order,
that the department exists, that exactly one of a type and a licence is named (a licence must
be the holder's own, and gives its type), that the department holds a live grant of the type
listing the matter (a consent nobody may use is a mistake worth hearing of now), and that the
end lies in the future and within ``consent_max_days``; then it stores the consent and, unless
the app declines one, a 亮证码.

A 亮证码 is handed out once, in the answer that makes it: only its SHA-256 is stored, with the
time it stops serving. :func:`renew_show_code` replaces it for an active consent, so the old
code no longer finds anything.

Each change is one transaction, recorded by :func:`econtract.events.record_change` (the audit
event and an outbox row, ``consent.given`` or ``consent.withdrawn``, whose payload names the
consent, department and type but never the holder); a new 亮证码 is in the audit trail only.
A consent of another holder reads as an unknown one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.events import Change, record_change
from econtract.issuance import TEMPLATES
from econtract.licence_metadata import HolderType
from econtract.models import Certificate, Consent, Department, new_public_id
from econtract.sharing._authorise import live_grants
from econtract.sharing._showcode import new_show_code, show_code_digest
from econtract.sharing._usage import MAX_CASE_NUMBER_LENGTH, MAX_MATTER_LENGTH, masked_holder
from econtract.text import clean_text

if TYPE_CHECKING:
    from econtract.config import Settings
    from econtract.services import Services


class ConsentStatus(StrEnum):
    """Where a consent stands."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


class UnknownDepartmentError(InvalidInputError):
    """The consent names a department that is not registered here."""

    code = "unknown-department"
    title = "The department named is not known here."


class NoGrantForConsentError(InvalidInputError):
    """The department holds no grant of the type for the matter: nobody could use the
    consent."""

    code = "no-grant-for-consent"
    title = "The department may not use this licence type for this matter."


class ConsentAlreadyWithdrawnError(ConflictError):
    """The consent was withdrawn before."""

    code = "consent-already-withdrawn"
    title = "The consent was already withdrawn."


class ConsentNotActiveError(ConflictError):
    """A withdrawn or expired consent takes no new 亮证码."""

    code = "consent-not-active"
    title = "The consent is no longer active."


@dataclass(frozen=True, kw_only=True)
class ConsentRequest:
    """What the holder consents to, as the holder app sends it (checked by
    :func:`give_consent`)."""

    department: str
    """The using department's credit code."""
    type_code: str | None
    """The licence type; exactly one of this and ``certificate``."""
    certificate: str | None
    """One licence, by id or licence identifier."""
    matter: str
    """The matter (事项), at most 200 characters."""
    case_number: str | None
    """The case (办件) number, at most 64 characters, when the consent is for one case."""
    valid_until: datetime
    """When the consent ends; timezone-aware."""
    show_code: bool = True
    """Whether to make a 亮证码 now."""


@dataclass(frozen=True, kw_only=True)
class ConsentView:
    """A consent as the holder app shows it."""

    id: str
    """The consent's id (``cns_…``)."""
    holder: str
    """The holder's code, whole: the holder app acts for this holder."""
    holder_type: str
    """``001`` or ``111``."""
    department_code: str
    """The using department's credit code."""
    department_name: str
    """Its name."""
    type: str
    """The licence type."""
    certificate_id: str | None
    """The one licence consented to, if any."""
    certificate_identifier: str | None
    """Its licence identifier."""
    matter: str
    """The matter."""
    case_number: str | None
    """The case number, if any."""
    valid_until: datetime
    """When it ends."""
    created_at: datetime
    """When it was given."""
    withdrawn_at: datetime | None
    """When it was withdrawn, if it was."""
    status: ConsentStatus
    """Active, withdrawn or expired, at the time it was read."""


@dataclass(frozen=True, kw_only=True)
class ShowCode:
    """A 亮证码 as handed out once."""

    code: str
    """The code, ``XXXX-XXXX-XXXX``."""
    expires_at: datetime
    """When it stops serving."""


@dataclass(frozen=True, kw_only=True)
class GivenConsent:
    """A consent with the 亮证码 just made for it, if one was."""

    consent: ConsentView
    """The consent."""
    show_code: ShowCode | None
    """The new 亮证码."""


def consent_status(consent: Consent, now: datetime) -> ConsentStatus:
    """Where ``consent`` stands at ``now``."""
    if consent.withdrawn_at is not None:
        return ConsentStatus.WITHDRAWN
    return ConsentStatus.ACTIVE if consent.valid_until > now else ConsentStatus.EXPIRED


def give_consent(
    services: Services,
    *,
    holder: tuple[str, HolderType],
    request: ConsentRequest,
    client_id: str,
    actor: audit.Actor,
) -> GivenConsent:
    """Record the holder's consent (see the module's docstring for the checks and their
    order); the answer carries the 亮证码 unless ``request.show_code`` is false."""
    matter = clean_text(request.matter, field="matter", max_length=MAX_MATTER_LENGTH)
    case_number = (
        None
        if request.case_number is None
        else clean_text(request.case_number, field="case_number", max_length=MAX_CASE_NUMBER_LENGTH)
    )
    now = services.clock.now()
    valid_until = _check_valid_until(request.valid_until, now, services.settings)
    with db.transaction(services.sessions) as session:
        department = _department(session, request.department)
        type_code, certificate = _what(session, holder, request)
        _check_grant(session, department, type_code, matter)
        consent = Consent(
            id=new_public_id("cns"),
            holder_code=holder[0],
            holder_type=holder[1].value,
            department_id=department.id,
            type_code=type_code,
            certificate_id=None if certificate is None else certificate.id,
            matter=matter,
            case_number=case_number,
            valid_until=valid_until,
            client_id=client_id,
            created_at=now,
        )
        show_code = _new_show_code(consent, now, services.settings) if request.show_code else None
        session.add(consent)
        described = {
            "department": department.code,
            "type": type_code,
            "certificate_id": consent.certificate_id,
            "valid_until": _time(valid_until),
        }
        record_change(
            session,
            change=Change(
                type="consent.given",
                action="consent.give",
                target_type="consent",
                target_id=consent.id,
                department_id=department.id,
                detail={
                    **described,
                    "holder": masked_holder(consent.holder_code, consent.holder_type),
                    "matter": matter,
                },
                payload={"consent_id": consent.id, **described},
                at=now,
            ),
            actor=actor,
            clock=services.clock,
        )
        return GivenConsent(
            consent=_view(consent, department, certificate, now), show_code=show_code
        )


def list_consents(
    services: Services,
    *,
    holder: tuple[str, HolderType],
    after: str | None = None,
    limit: int = 50,
) -> list[ConsentView]:
    """The holder's consents, newest first. ``after`` is the id of the last consent of the
    page before (the cursor a list answer hands out); one the holder does not have is
    :class:`NotFoundError`."""
    now = services.clock.now()
    with services.sessions() as session:
        query = select(Consent).where(
            Consent.holder_code == holder[0], Consent.holder_type == holder[1].value
        )
        if after is not None:
            last = _holders_consent(session, holder, after)
            query = query.where(
                or_(
                    Consent.created_at < last.created_at,
                    and_(Consent.created_at == last.created_at, Consent.id < last.id),
                )
            )
        rows = session.scalars(
            query.order_by(Consent.created_at.desc(), Consent.id.desc()).limit(limit)
        )
        return [_view_of(session, consent, now) for consent in rows]


def get_consent(
    services: Services, *, holder: tuple[str, HolderType], consent_id: str
) -> ConsentView:
    """One of the holder's consents; :class:`NotFoundError` for any other."""
    with services.sessions() as session:
        consent = _holders_consent(session, holder, consent_id)
        return _view_of(session, consent, services.clock.now())


def withdraw_consent(
    services: Services, *, holder: tuple[str, HolderType], consent_id: str, actor: audit.Actor
) -> ConsentView:
    """Withdraw one of the holder's consents: no use may rely on it from now on, and its
    亮证码 stops serving. A second withdrawal is :class:`ConsentAlreadyWithdrawnError`."""
    now = services.clock.now()
    with db.transaction(services.sessions) as session:
        consent = _holders_consent(session, holder, consent_id, for_update=True)
        if consent.withdrawn_at is not None:
            raise ConsentAlreadyWithdrawnError(
                f"Consent {consent.id} was already withdrawn at {_time(consent.withdrawn_at)}."
            )
        consent.withdrawn_at = now
        described = {"department": _department_of(session, consent).code, "type": consent.type_code}
        record_change(
            session,
            change=Change(
                type="consent.withdrawn",
                action="consent.withdraw",
                target_type="consent",
                target_id=consent.id,
                department_id=consent.department_id,
                detail=described,
                payload={"consent_id": consent.id, **described},
                at=now,
            ),
            actor=actor,
            clock=services.clock,
        )
        return _view_of(session, consent, now)


def renew_show_code(
    services: Services, *, holder: tuple[str, HolderType], consent_id: str, actor: audit.Actor
) -> GivenConsent:
    """A fresh 亮证码 for an active consent of the holder; the old one stops serving.
    A withdrawn or expired consent is :class:`ConsentNotActiveError`."""
    now = services.clock.now()
    with db.transaction(services.sessions) as session:
        consent = _holders_consent(session, holder, consent_id, for_update=True)
        status = consent_status(consent, now)
        if status is not ConsentStatus.ACTIVE:
            raise ConsentNotActiveError(
                f"Consent {consent.id} is {status.value}; a 亮证码 is made for an active "
                "consent only. Give a new consent instead."
            )
        show_code = _new_show_code(consent, now, services.settings)
        audit.record(
            session,
            actor=actor,
            action="consent.show-code",
            department_id=consent.department_id,
            target_type="consent",
            target_id=consent.id,
            detail={"expires_at": _time(show_code.expires_at)},
        )
        return GivenConsent(consent=_view_of(session, consent, now), show_code=show_code)


def _new_show_code(consent: Consent, now: datetime, settings: Settings) -> ShowCode:
    """Put a fresh 亮证码's digest on ``consent`` (replacing any before) and hand out the code."""
    code = new_show_code()
    expires_at = now + timedelta(seconds=settings.show_code_seconds)
    consent.show_code_sha256 = show_code_digest(code)
    consent.show_code_expires_at = expires_at
    consent.show_code_used_at = None
    return ShowCode(code=code, expires_at=expires_at)


def _check_valid_until(valid_until: datetime, now: datetime, settings: Settings) -> datetime:
    if valid_until.tzinfo is None:
        raise InvalidInputError(
            "valid_until needs a time zone offset (RFC 3339), e.g. 2025-06-30T18:00:00+08:00.",
            errors=[("/valid_until", "no time zone offset")],
        )
    if valid_until <= now:
        raise InvalidInputError(
            f"valid_until {_time(valid_until)} is not in the future.",
            errors=[("/valid_until", "not in the future")],
        )
    latest = now + timedelta(days=settings.consent_max_days)
    if valid_until > latest:
        raise InvalidInputError(
            f"A consent lasts at most {settings.consent_max_days} days: valid_until is at the "
            f"latest {_time(latest)}.",
            errors=[("/valid_until", f"more than {settings.consent_max_days} days ahead")],
        )
    return valid_until.astimezone(UTC)


def _department(session: Session, code: str) -> Department:
    department = session.scalar(select(Department).where(Department.code == code.strip().upper()))
    if department is None:
        raise UnknownDepartmentError(
            f"There is no department {code[:40]!r} here; name the using department by its "
            "unified social credit code.",
            errors=[("/department", "unknown department")],
        )
    return department


def _what(
    session: Session, holder: tuple[str, HolderType], request: ConsentRequest
) -> tuple[str, Certificate | None]:
    """The type consented to, and the licence when one is named."""
    if (request.type_code is None) == (request.certificate is None):
        raise InvalidInputError(
            "A consent names either a licence type (type) or one licence (certificate), "
            "not both and not neither.",
            errors=[
                ("/type", "give exactly one of type and certificate"),
                ("/certificate", "give exactly one of type and certificate"),
            ],
        )
    if request.type_code is not None:
        if request.type_code not in TEMPLATES:
            raise InvalidInputError(
                f"There is no licence type {request.type_code[:60]!r}; GET /v1/catalogue "
                "lists them.",
                errors=[("/type", "unknown licence type")],
            )
        return request.type_code, None
    assert request.certificate is not None
    named = request.certificate.strip()
    certificate = session.scalar(
        select(Certificate).where(or_(Certificate.id == named, Certificate.identifier == named))
    )
    if (
        certificate is None
        or certificate.national_holder_code != holder[0]
        or certificate.national_holder_type != holder[1].value
    ):
        # Another holder's licence reads as an unknown one: its existence is not ours to tell.
        raise NotFoundError(f"The holder has no licence {named[:128]!r}.")
    return certificate.type_code, certificate


def _check_grant(session: Session, department: Department, type_code: str, matter: str) -> None:
    grant = live_grants(session, department.id).get(type_code)
    if grant is None or matter not in grant.matters:
        why = (
            f"holds no grant to use {type_code} licences"
            if grant is None
            else f"may use {type_code} licences for these matters only: {'; '.join(grant.matters)}"
        )
        raise NoGrantForConsentError(
            f"Department {department.code} ({department.name}) {why}; a consent for the "
            f"matter {matter!r} could never be used.",
            errors=[
                ("/matter", "not a matter the department may use the type for"),
                ("/department", "holds no grant of the type for the matter"),
            ],
        )


def _holders_consent(
    session: Session, holder: tuple[str, HolderType], consent_id: str, *, for_update: bool = False
) -> Consent:
    consent = session.get(Consent, consent_id.strip(), with_for_update=for_update)
    if consent is None or (consent.holder_code, consent.holder_type) != (
        holder[0],
        holder[1].value,
    ):
        raise NotFoundError(f"The holder has no consent {consent_id[:60]!r}.")
    return consent


def _department_of(session: Session, consent: Consent) -> Department:
    department = session.get(Department, consent.department_id)
    assert department is not None
    return department


def _view_of(session: Session, consent: Consent, now: datetime) -> ConsentView:
    certificate = (
        None if consent.certificate_id is None else session.get(Certificate, consent.certificate_id)
    )
    return _view(consent, _department_of(session, consent), certificate, now)


def _view(
    consent: Consent, department: Department, certificate: Certificate | None, now: datetime
) -> ConsentView:
    return ConsentView(
        id=consent.id,
        holder=consent.holder_code,
        holder_type=consent.holder_type,
        department_code=department.code,
        department_name=department.name,
        type=consent.type_code,
        certificate_id=consent.certificate_id,
        certificate_identifier=None if certificate is None else certificate.identifier,
        matter=consent.matter,
        case_number=consent.case_number,
        valid_until=consent.valid_until,
        created_at=consent.created_at,
        withdrawn_at=consent.withdrawn_at,
        status=consent_status(consent, now),
    )


def _time(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
