"""The using department's calls (用证): look a holder's licences up, check declared data, take
the licences a holder shows by a 亮证码.

Each call runs through :func:`~econtract.sharing.run_use`, so it is one transaction that
ends by recording what it touched (:func:`~econtract.sharing.record_use`), and a refusal is
recorded in a transaction of its own before it reaches the caller. In each call the order is
the same: find who and what is asked about, ask :func:`~econtract.sharing.authorise_use` (or
:func:`~econtract.sharing.grant_for` where no consent is involved) whether the department
may, read the licences, record the use.

- :func:`lookup_licences` gives the holder's licences of the types the department is granted
  for the matter, with their national metadata and live status, never the document. Without
  a type and without consent, the types whose grant requires consent are left out and said
  so (:class:`Omission`).
- :func:`check_licence` (证照核验) says whether a licence with exactly the declared fields
  exists, and its status; a mismatch reveals nothing about which field differs.
- :func:`scan_show_code` takes the consent a 亮证码 stands for, marks the code used with one
  conditional UPDATE (two clerks scanning the same code cannot both win), and answers as a
  lookup under that consent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from econtract.clock import Clock
from econtract.errors import InvalidInputError, NotFoundError
from econtract.issuance import effective_status, fields_digest, get_template, validate_fields
from econtract.licence_metadata import HolderType, NationalMetadata, holder_identity
from econtract.models import Certificate, Consent
from econtract.sharing._authorise import (
    NoGrantError,
    UseAuthorisation,
    authorise_use,
    grant_for,
    live_grants,
)
from econtract.sharing._national import national_metadata
from econtract.sharing._showcode import show_code_digest
from econtract.sharing._usage import (
    GRANTED,
    NOT_FOUND,
    LicenceRef,
    UseContext,
    UseRefusedError,
    record_use,
    run_use,
)

if TYPE_CHECKING:
    from econtract.services import Services


class ShowCodeUnknownError(NotFoundError):
    """No consent stands for this 亮证码."""

    code = "show-code-unknown"
    title = "This 亮证码 is not known."


class ShowCodeExpiredError(UseRefusedError):
    """The 亮证码 was not scanned in time."""

    code = "show-code-expired"
    title = "This 亮证码 has expired."


class ShowCodeUsedError(UseRefusedError):
    """The 亮证码 was scanned already: it serves once."""

    code = "show-code-used"
    title = "This 亮证码 has been used."


class ShowCodeDepartmentError(UseRefusedError):
    """The holder showed the code for another department."""

    code = "show-code-other-department"
    title = "This 亮证码 was given for another department."


@dataclass(frozen=True, kw_only=True)
class UsedLicence:
    """A licence as an authorised use sees it: its metadata and live status, not its PDF."""

    id: str
    """The certificate's id here."""
    identifier: str
    """The licence identifier (GB/T 36904)."""
    type_code: str
    """The licence type's code here."""
    number: str
    """The licence number."""
    holder_code: str | None
    """The holder's national code, whole: the use is authorised."""
    holder_type: str | None
    """``001`` or ``111``."""
    status: str
    """The live status on the day of the use (expiry derived from the dates)."""
    metadata: NationalMetadata
    """The GB/T 36903 metadata, the issuer among it."""

    @classmethod
    def of(cls, certificate: Certificate, *, today: date) -> UsedLicence:
        """The used view of a registered certificate on ``today``."""
        return cls(
            id=certificate.id,
            identifier=certificate.identifier,
            type_code=certificate.type_code,
            number=certificate.number,
            holder_code=certificate.national_holder_code,
            holder_type=certificate.national_holder_type,
            status=effective_status(certificate, today).value,
            metadata=national_metadata(certificate, today=today),
        )


@dataclass(frozen=True, kw_only=True)
class Omission:
    """A granted type a lookup left out, and why."""

    type_code: str
    reason: str
    """The problem code that would have refused it, e.g. ``consent-required``."""


@dataclass(frozen=True, kw_only=True)
class LookupResult:
    """What a lookup (or a scan) found."""

    licences: tuple[UsedLicence, ...]
    omitted: tuple[Omission, ...] = ()
    consent_id: str | None = None
    """The consent the use relied on, if any."""


@dataclass(frozen=True, kw_only=True)
class CheckResult:
    """Whether declared data match a licence here; the other members only when they do."""

    match: bool
    identifier: str | None = None
    status: str | None = None
    national_status: str | None = None
    """The national status code (GB/T 36903)."""
    valid_until: date | None = None


def _holders_licences(
    session: Session, holder: tuple[str, HolderType], type_codes: Sequence[str]
) -> list[Certificate]:
    """The holder's licences of these types, newest first (index on the national code)."""
    if not type_codes:
        return []
    query = (
        select(Certificate)
        .where(
            Certificate.national_holder_code == holder[0],
            Certificate.type_code.in_(type_codes),
            Certificate.national_holder_type == holder[1].value,
        )
        .order_by(Certificate.issued_at.desc(), Certificate.id)
    )
    return list(session.scalars(query))


def _answer(
    session: Session,
    context: UseContext,
    *,
    action: str,
    clock: Clock,
    holder: tuple[str, HolderType],
    certificates: Sequence[Certificate],
    omitted: Sequence[Omission] = (),
    consent_id: str | None = None,
) -> LookupResult:
    """Record the use of ``certificates`` and give them as the answer."""
    record_use(
        session,
        context,
        action=action,
        result=GRANTED if certificates else NOT_FOUND,
        clock=clock,
        holder=holder,
        licences=[LicenceRef.of(c) for c in certificates],
        consent_id=consent_id,
    )
    today = clock.today()
    return LookupResult(
        licences=tuple(UsedLicence.of(c, today=today) for c in certificates),
        omitted=tuple(omitted),
        consent_id=consent_id,
    )


def _authorised_licences(
    session: Session, authorisation: UseAuthorisation, holder: tuple[str, HolderType]
) -> list[Certificate]:
    """The licences an authorisation covers: the consented one, or the holder's of the type."""
    consent = authorisation.consent
    if consent is not None and consent.certificate_id is not None:
        certificate = session.get(Certificate, consent.certificate_id)
        return [] if certificate is None else [certificate]
    return _holders_licences(session, holder, [authorisation.grant.type_code])


def lookup_licences(
    services: Services,
    context: UseContext,
    *,
    holder: tuple[str, HolderType],
    type_code: str | None = None,
    consent_id: str | None = None,
) -> LookupResult:
    """The holder's licences the department may use for the context's matter (see the
    module's docstring); refusals are the :class:`UseRefusedError` of
    :func:`~econtract.sharing.authorise_use`, recorded."""

    def work(session: Session) -> LookupResult:
        omitted: list[Omission] = []
        if type_code is not None or consent_id is not None:
            chosen = type_code or _consented_type(session, context, consent_id)
            authorisation = authorise_use(
                session,
                context,
                type_code=chosen,
                holder=holder,
                consent_id=consent_id,
                now=services.clock.now(),
            )
            certificates = _authorised_licences(session, authorisation, holder)
        else:
            usable, omitted = _types_without_consent(session, context, holder)
            certificates = _holders_licences(session, holder, usable)
        return _answer(
            session,
            context,
            action="lookup",
            clock=services.clock,
            holder=holder,
            certificates=certificates,
            omitted=omitted,
            consent_id=consent_id,
        )

    return run_use(services, context, action="lookup", work=work, holder=holder)


def _types_without_consent(
    session: Session, context: UseContext, holder: tuple[str, HolderType]
) -> tuple[list[str], list[Omission]]:
    """The types granted for the matter that need no consent, and those left out because
    they do; :class:`NoGrantError` when no grant lists the matter."""
    grants = list(live_grants(session, context.department_id).values())
    listed = sorted(g.type_code for g in grants if context.matter in g.matters)
    if not listed:
        raise NoGrantError(
            f"Department {context.department_code} holds no grant that lists the matter "
            f"{context.matter!r}; the operator records one with `econtract grants add`.",
            holder=holder,
        )
    needs_consent = {g.type_code for g in grants if g.requires_consent}
    return (
        [t for t in listed if t not in needs_consent],
        [Omission(type_code=t, reason="consent-required") for t in listed if t in needs_consent],
    )


def _consented_type(session: Session, context: UseContext, consent_id: str | None) -> str:
    """The type to authorise a lookup that names a consent but no type: the consent's, when
    the department may see it; else any type granted for the matter, so that
    :func:`authorise_use` refuses the consent itself (or the grant, when there is none)."""
    consent = None if consent_id is None else session.get(Consent, consent_id)
    if consent is not None and consent.department_id == context.department_id:
        return consent.type_code
    grants = live_grants(session, context.department_id)
    listed = sorted(t for t, g in grants.items() if context.matter in g.matters)
    return listed[0] if listed else next(iter(sorted(grants)), "-")


def check_licence(
    services: Services,
    context: UseContext,
    *,
    type_code: str,
    fields: dict[str, Any],
    number: str | None = None,
) -> CheckResult:
    """Whether a licence of ``type_code`` with exactly ``fields`` is registered here, and its
    status (证照核验). The fields are cleaned as issuance cleans them and compared by their
    canonical digest. The licence is found by its holder's code when the type names one,
    else by ``number``; with neither, :class:`InvalidInputError` says which is needed."""
    try:
        template = get_template(type_code)
    except NotFoundError as exc:
        raise InvalidInputError(exc.message, errors=[("/type", "unknown licence type")]) from None
    today = services.clock.today()
    declared = validate_fields(template, fields, at="/fields", today=today)
    code_field = template.holder_code_field
    code, kind = holder_identity(
        str(declared[code_field]) if code_field and declared.get(code_field) else None,
        declared,
        template.id_number_fields,
    )
    if code is None and number is None:
        wanted = [code_field] if code_field else list(template.id_number_fields)
        pointers = [f"/fields/{name}" for name in wanted] or ["/number"]
        raise InvalidInputError(
            f"A {type_code} licence is found by its holder's code or its number: give "
            + (" or ".join(wanted) + " in fields, or " if wanted else "")
            + "the licence number (number).",
            errors=[(p, "needed to find the licence") for p in pointers],
        )
    holder = None if code is None or kind is None else (code, kind)
    digest = fields_digest(declared)

    def work(session: Session) -> CheckResult:
        grant_for(session, context, type_code, holder=holder)
        query = select(Certificate).where(Certificate.type_code == type_code)
        if holder is not None:
            query = query.where(
                Certificate.national_holder_code == holder[0],
                Certificate.national_holder_type == holder[1].value,
            )
        if number is not None:
            query = query.where(Certificate.number == number)
        candidates = session.scalars(query.order_by(Certificate.issued_at.desc()))
        found = next((c for c in candidates if fields_digest(c.fields) == digest), None)
        record_use(
            session,
            context,
            action="check",
            result=NOT_FOUND if found is None else GRANTED,
            clock=services.clock,
            holder=holder,
            licences=[] if found is None else [LicenceRef.of(found)],
        )
        if found is None:
            return CheckResult(match=False)
        metadata = national_metadata(found, today=today)
        return CheckResult(
            match=True,
            identifier=found.identifier,
            status=effective_status(found, today).value,
            national_status=metadata.status_code,
            valid_until=found.valid_until,
        )

    return run_use(services, context, action="check", work=work, holder=holder)


def scan_show_code(services: Services, context: UseContext, *, code: str) -> LookupResult:
    """The licences a holder shows by a 亮证码 (see the module's docstring). A malformed
    code is an :class:`InvalidInputError`; an unknown, expired, used or other department's
    code is refused with its own problem code, and recorded."""
    digest = show_code_digest(code)

    def work(session: Session) -> LookupResult:
        now = services.clock.now()
        consent = session.scalars(
            select(Consent).where(Consent.show_code_sha256 == digest)
        ).one_or_none()
        if consent is None:
            raise ShowCodeUnknownError(
                "No consent stands for this 亮证码; ask the holder to show a new one."
            )
        holder = (consent.holder_code, HolderType(consent.holder_type))
        _refuse_show_code(consent, context, holder=holder, now=now)
        claimed = session.execute(
            update(Consent)
            .where(Consent.id == consent.id, Consent.show_code_used_at.is_(None))
            .values(show_code_used_at=now)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            raise ShowCodeUsedError(
                "This 亮证码 was scanned a moment ago; it serves once.",
                holder=holder,
                consent_id=consent.id,
            )
        certificate = (
            None
            if consent.certificate_id is None
            else session.get(Certificate, consent.certificate_id)
        )
        authorisation = authorise_use(
            session,
            context,
            type_code=consent.type_code,
            holder=holder,
            consent_id=consent.id,
            now=now,
            certificate=certificate,
        )
        return _answer(
            session,
            context,
            action="scan",
            clock=services.clock,
            holder=holder,
            certificates=_authorised_licences(session, authorisation, holder),
            consent_id=consent.id,
        )

    return run_use(services, context, action="scan", work=work)


def _refuse_show_code(
    consent: Consent, context: UseContext, *, holder: tuple[str, HolderType], now: datetime
) -> None:
    """Refuse a code given for another department, used already or expired."""
    if consent.department_id != context.department_id:
        # Nothing about the consent is told: only that it is not this department's.
        raise ShowCodeDepartmentError(
            f"This 亮证码 was not given for department {context.department_code}.",
            holder=holder,
        )
    if consent.show_code_used_at is not None:
        raise ShowCodeUsedError(
            f"This 亮证码 was scanned at {consent.show_code_used_at.isoformat()}; it serves "
            "once. Ask the holder to show a new one.",
            holder=holder,
            consent_id=consent.id,
        )
    if consent.show_code_expires_at is None or consent.show_code_expires_at <= now:
        raise ShowCodeExpiredError(
            "This 亮证码 is no longer valid (it lasts a few minutes); ask the holder to show "
            "a new one.",
            holder=holder,
            consent_id=consent.id,
        )
