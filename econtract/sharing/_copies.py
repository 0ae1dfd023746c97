"""Annotated copies (加注件): a licence copied for one use, marked, and sealed by the platform.

:func:`make_annotated_copy` runs in three steps, so that no sealing happens while a write
lock is held:

1. in one transaction (:func:`~econtract.sharing.run_use`, action ``copy``): find the
   licence by its identifier, check that it is in force, authorise the use (grant and
   consent, :func:`~econtract.sharing.authorise_use`), settle the copy's end of validity
   and record the granted use, whose id the copy's statement names; a refusal is recorded
   too;
2. outside any transaction: build the copy from the registered original's bytes
   (:func:`signing.annotation.annotated_pdf`);
3. seal it with the platform seal (kind ``platform``) and register it as a sealed document
   of the platform body (:func:`econtract.sealing.seal_document`), so that verification
   knows the seal and the file.

The use stays recorded when step 2 or 3 fails afterwards: it was authorised, and the
department may ask again.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.issuance import EffectiveStatus, effective_status
from econtract.licence_metadata import HolderType
from econtract.models import Certificate, Department, Seal, SealedDocument, SealKind, SealStatus
from econtract.sealing import SealedFile, SealOptions, seal_document
from econtract.sharing._authorise import authorise_use
from econtract.sharing._usage import GRANTED, LicenceRef, UseContext, record_use, run_use
from econtract.translog import canonical_json
from signing.annotation import STATEMENT_FORMAT, CopyContent, annotated_pdf
from signing.fonts import missing_characters
from signing.options import Certification, SealLevel
from verify.annotated import copy_marking

if TYPE_CHECKING:
    from econtract.services import Services

#: How long a copy is valid when the call does not say.
DEFAULT_COPY_DAYS = 30


class PlatformSealMissingError(ConflictError):
    """The platform body has no active platform seal: ``econtract init`` makes one."""

    code = "platform-seal-missing"
    title = "The platform seal that seals annotated copies is missing."


@dataclass(frozen=True, kw_only=True)
class AnnotatedCopy:
    """A copy made and registered."""

    document: SealedDocument
    """Its registry row (a sealed document of the platform body)."""
    usage_id: str
    """The usage record of the use it was made for."""
    valid_until: date
    """The last day it may be used."""
    file_name: str
    """The name to send it under."""


@dataclass(frozen=True, kw_only=True)
class _Plan:
    """What step 1 settled, as plain data that outlives its transaction."""

    seal_id: str
    blob_key: str
    original_sha256: str
    identifier: str
    valid_until: date
    usage_id: str
    for_code: str
    for_name: str


def platform_seal(session: Session, settings_code: str) -> Seal:
    """The platform body's active platform seal; :class:`PlatformSealMissingError` if none."""
    seal = session.scalars(
        select(Seal)
        .join(Department, Department.id == Seal.department_id)
        .where(
            Department.code == settings_code,
            Seal.kind == SealKind.PLATFORM.value,
            Seal.status == SealStatus.ACTIVE.value,
        )
        .order_by(Seal.created_at.desc())
        .limit(1)
    ).first()
    if seal is None:
        raise PlatformSealMissingError(
            "The platform body has no active platform seal (电子证照共享专用章), so no annotated "
            "copy can be sealed; the operator runs `econtract init` to create it."
        )
    return seal


def seal_by_platform(
    services: Services,
    pdf: bytes,
    *,
    actor: audit.Actor,
    file_name: str,
    within: Callable[[Session, SealedDocument], None] | None = None,
) -> SealedFile:
    """Seal a PDF the service made itself (an envelope's completion certificate, a monthly
    report) with the platform seal at B-LT, certified with no changes allowed (nothing is
    added later), and register it as a document of the platform body, so that verification
    knows the seal and the file. ``within`` runs in the registering transaction, as for
    :func:`econtract.sealing.seal_document`; ``actor`` names no department (the platform
    seals on the service's behalf)."""
    with services.sessions() as session:
        seal_id = platform_seal(session, services.settings.platform_code).id
    return seal_document(
        services,
        source=io.BytesIO(pdf),
        seal_id=seal_id,
        options=SealOptions(level=SealLevel.B_LT, certification=Certification.NO_CHANGES),
        actor=actor,
        file_name=file_name,
        within=within,
    )


def copy_valid_until(
    *, today: date, asked: date | None, max_days: int, licence_until: date | None
) -> date:
    """The copy's last day: ``asked`` or :data:`DEFAULT_COPY_DAYS` from today, never more
    than ``max_days`` from today nor after the licence's own last day."""
    limit = today + timedelta(days=max_days)
    if asked is None:
        until = min(today + timedelta(days=DEFAULT_COPY_DAYS), limit)
    elif asked < today:
        raise InvalidInputError(
            f"valid_until {asked.isoformat()} is in the past.",
            errors=[("/valid_until", "in the past")],
        )
    elif asked > limit:
        raise InvalidInputError(
            f"An annotated copy is valid for at most {max_days} days, until "
            f"{limit.isoformat()}; valid_until {asked.isoformat()} is later.",
            errors=[("/valid_until", "too late")],
        )
    else:
        until = asked
    if licence_until is not None and until > licence_until:
        if asked is not None:
            raise InvalidInputError(
                f"The licence is valid until {licence_until.isoformat()}; its copy cannot be "
                f"valid until {asked.isoformat()}.",
                errors=[("/valid_until", "after the licence's validity")],
            )
        until = licence_until
    return until


def make_annotated_copy(
    services: Services,
    context: UseContext,
    *,
    identifier: str,
    consent_id: str | None = None,
    valid_until: date | None = None,
) -> AnnotatedCopy:
    """Make, seal and register an annotated copy of the licence ``identifier`` for the
    context's department and matter; see the module for the steps and their refusals."""
    settings = services.settings
    _refuse_undrawable(context)

    def authorise(session: Session) -> _Plan:
        seal = platform_seal(session, settings.platform_code)
        certificate = session.scalars(
            select(Certificate).where(Certificate.identifier == identifier)
        ).first()
        if certificate is None:
            raise NotFoundError(f"No licence with identifier {identifier[:128]!r}.")
        licence = LicenceRef.of(certificate)
        if certificate.national_holder_code is None or certificate.national_holder_type is None:
            raise ConflictError(f"Licence {identifier} names no holder and cannot be shared.")
        holder = (certificate.national_holder_code, HolderType(certificate.national_holder_type))
        now = services.clock.now()
        grant = authorise_use(
            session,
            context,
            type_code=certificate.type_code,
            holder=holder,
            consent_id=consent_id,
            now=now,
            certificate=certificate,
        )
        today = services.clock.today()
        status = effective_status(certificate, today)
        if status is not EffectiveStatus.VALID:
            raise ConflictError(
                f"Licence {identifier} is {status.value}; only a licence in force is copied."
            )
        until = copy_valid_until(
            today=today,
            asked=valid_until,
            max_days=settings.copy_max_days,
            licence_until=certificate.valid_until,
        )
        [record] = record_use(
            session,
            context,
            action="copy",
            result=GRANTED,
            clock=services.clock,
            holder=holder,
            licences=[licence],
            consent_id=grant.consent.id if grant.consent else None,
        )
        session.flush()
        user = session.get(Department, context.department_id)
        assert user is not None
        return _Plan(
            seal_id=seal.id,
            blob_key=certificate.blob_key,
            original_sha256=certificate.pdf_sha256,
            identifier=certificate.identifier,
            valid_until=until,
            usage_id=record.usage_id,
            for_code=user.code,
            for_name=user.name,
        )

    plan = run_use(services, context, action="copy", work=authorise)
    with services.blobs.open(plan.blob_key) as stream:
        original = stream.read()
    if hashlib.sha256(original).hexdigest() != plan.original_sha256:
        raise ConflictError(f"The stored file of licence {plan.identifier} does not match it.")
    pdf = annotated_pdf(_copy_content(plan, original, context))
    file_name = f"{plan.identifier}-copy.pdf"
    sealed = seal_document(
        services,
        source=io.BytesIO(pdf),
        seal_id=plan.seal_id,
        # Certified with no changes allowed: a statement or marking edited afterwards is a
        # change after sealing.
        options=SealOptions(level=SealLevel.B_LT, certification=Certification.NO_CHANGES),
        # The platform seals for the department: the actor is its client, not bound to the
        # department's own seals.
        actor=audit.Actor(name=f"client:{context.client_id}", request_id=context.request_id),
        file_name=file_name,
    )
    return AnnotatedCopy(
        document=sealed.document,
        usage_id=plan.usage_id,
        valid_until=plan.valid_until,
        file_name=file_name,
    )


def _refuse_undrawable(context: UseContext) -> None:
    """Refuse, before the use is authorised and recorded, a matter or case number the copy's
    font cannot draw: the marking must show every character it says."""
    for name, value in (("matter", context.matter), ("case_number", context.case_number)):
        missing = missing_characters(value or "")
        if missing:
            listed = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing)
            raise InvalidInputError(
                f"The {name} has characters the copy's font cannot draw: {listed}.",
                errors=[(f"/{name}", "characters the font cannot draw")],
            )


def marking(*, department: str, matter: str, until: date) -> tuple[str, str]:
    """The words marked on every page of a copy, in Chinese and English: verification's own
    (:func:`verify.annotated.copy_marking`), so that the words drawn are the words compared."""
    return copy_marking(department=department, matter=matter, until=until)


def _copy_content(plan: _Plan, original: bytes, context: UseContext) -> CopyContent:
    """The copy's parts: the original, the marking and the statement."""
    # The end of the last valid day, China Standard Time, as an instant verifiers compare.
    ends = datetime.combine(plan.valid_until + timedelta(days=1), time(0), tzinfo=UTC) - timedelta(
        hours=8
    )
    statement = {
        "format": STATEMENT_FORMAT,
        "for_department": {"code": plan.for_code, "name": plan.for_name},
        "matter": context.matter,
        "case_number": context.case_number,
        "valid_until": plan.valid_until.isoformat(),
        "valid_until_instant": ends.isoformat(),
        "original": {
            "identifier": plan.identifier,
            "file_name": f"{plan.identifier}.pdf",
            "sha256": plan.original_sha256,
        },
        "usage_id": plan.usage_id,
    }
    zh, en = marking(department=plan.for_name, matter=context.matter, until=plan.valid_until)
    return CopyContent(
        original=original,
        original_name=f"{plan.identifier}.pdf",
        original_sha256=plan.original_sha256,
        marking_zh=zh,
        marking_en=en,
        statement=canonical_json(statement),
    )
