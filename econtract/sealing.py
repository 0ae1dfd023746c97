"""Sealing a document on request: the seal's checks, the engine, the blob, the registry.

Parallel approval binds each reserved field to the department (or the one seal) that may
fill it, twice over: in the PDF, as the field's seed value, so the binding travels with the
file; and in the registry, with the certifying document, so that this service refuses
another department's seal on the field even if the file were altered. The registry finds
the binding again through the certifying seal's signed digest, which every later revision
of the file still carries.

A dual seal and the SES_Signature of an SM2 sealing are :mod:`econtract.dual_seal`'s.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from cryptography import x509
from pyhanko.sign.timestamps.api import TimeStamper
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit, db, metrics
from econtract.dual_seal import Sealed, SealPlan, SM2Part, dual_options, plan_seals, seal_with_sm2
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.events import Change, record_change
from econtract.models import (
    Department,
    ReservedSealField,
    Seal,
    SealedDocument,
    SealKind,
    SealStatus,
    new_public_id,
)
from econtract.seals import seal_code
from econtract.services import Services
from econtract.ses.sealing_record import sealing_signature_record
from econtract.translog import LogEntry
from keys import oids
from keys.filestore import FileKeyStore
from keys.handles import KeyAlgorithm
from keys.signer import KeySigner, SealKeyHandle
from keys.suites import suite_for
from signing.appearance import SealAppearance
from signing.errors import FieldReservedError, SealUnusableError
from signing.options import Certification, FieldHolder, ReservedField, SealLevel, SealOptions
from signing.sealer import FieldToFill, SealIdentity, SealingContext, SealResult
from signing.timestamps import HTTPTimeStamper

# Certification, SealLevel and SealOptions are the choices a caller makes when sealing; they
# are offered here so that the HTTP face depends on the domain, not on signing.
__all__ = [
    "Certification",
    "SealLevel",
    "SealOptions",
    "SealedFile",
    "check_reserved_field",
    "keep_ses_signature",
    "resolved_holders",
    "seal_document",
    "seal_identity",
    "sealing_context",
    "sm2_part",
    "usable_seal",
]


@dataclass(frozen=True, kw_only=True)
class SealedFile:
    """A sealed document as registered, and where its PDF is."""

    document: SealedDocument
    """The registry's row."""
    result: SealResult
    """What the engine reported (for a dual seal, of the certifying seal)."""
    dual_seal_id: str | None = None
    """The SM2 seal of a dual seal, which approves after the certifying one."""
    ses_signature: bytes | None = None
    """The SES_Signature (DER) of the sealing with an SM2 seal, if there was one."""


def seal_identity(services: Services, seal: Seal, department: Department) -> SealIdentity:
    """The signing identity of a seal, built once per ``Services`` (the key is loaded once)."""
    cached = services.seal_identities.get(seal.id)
    if cached is not None:
        return cached
    certificate = x509.load_der_x509_certificate(seal.certificate_der)
    handle, chain = _key_and_chain(services, seal)
    # The seal's row names its algorithm suite; the signer refuses a key of another algorithm.
    signer = KeySigner.for_handle(handle, certificate, chain, suite=suite_for(seal.algorithm))
    identity = SealIdentity(
        signer=signer,
        certificate=certificate,
        chain=chain,
        appearance=SealAppearance(
            department_name=department.name,
            seal_name=SealKind(seal.kind).chinese_name,
            code=seal_code(seal, department),
        ),
    )
    # Two threads may build the same identity at once: the first one stored is kept, and a
    # dict's setdefault is atomic, so no lock is needed.
    return services.seal_identities.setdefault(seal.id, identity)


def _key_and_chain(
    services: Services, seal: Seal
) -> tuple[SealKeyHandle, tuple[x509.Certificate, ...]]:
    """The seal's key and the CA certificates above its certificate, up to the root."""
    pki = services.pki
    if seal.algorithm != KeyAlgorithm.SM2:
        return services.key_store.load(seal.key_label), (
            pki.issuing.certificate,
            pki.root.certificate,
        )
    # An SM2 seal's certificate is issued by the SM2 hierarchy, whose keys only the file key
    # store holds (PKCS#11 defines no SM2 mechanism).
    key_store = services.key_store
    if pki.sm2_issuing is None or not isinstance(key_store, FileKeyStore):
        raise ConflictError(
            f"Seal {seal.id} is an SM2 seal, and this service has no SM2 hierarchy with its "
            "keys in files to seal with."
        )
    return key_store.load_sm2(seal.key_label), (pki.sm2_issuing.certificate, *pki.sm2_issuing.chain)


def sealing_context(
    services: Services, seal_certificate: x509.Certificate, *, long_term: bool
) -> SealingContext:
    """The timestamper (built-in or external) and, for B-LT and above, validation material.

    An SM2 seal (its certificate signed SM2-with-SM3) is timestamped by the SM2 timestamp
    authority, whose token is SM2 over SM3 as the seal is; an external authority, when one is
    set, gets the seal's SM3 imprint (this service's own ``/pki/tsa`` answers it with the SM2
    authority). The validation material of an SM2 seal is the SM2 hierarchy's.
    """
    settings = services.settings
    timestamper: TimeStamper | None
    if settings.tsa_url:
        timestamper = HTTPTimeStamper(settings.tsa_url, timeout=settings.tsa_timeout_seconds)
    elif seal_certificate.signature_algorithm_oid.dotted_string == oids.SM2_WITH_SM3:
        # None until `econtract init` has made the SM2 authority: the sealer then refuses a
        # timestamped level, and B-B still works.
        timestamper = services.pki.sm2_timestamper
    else:
        timestamper = services.pki.timestamper
    material = (
        services.pki.validation_material(seal_certificate, reads=services.reads)
        if long_term
        else None
    )
    return SealingContext(timestamper=timestamper, material=material)


def usable_seal(seal: Seal, *, department_id: int | None) -> None:
    """Refuse a seal of another department (as not found), or one that may not sign."""
    if department_id is not None and seal.department_id != department_id:
        raise NotFoundError(f"No seal {seal.id!r} for this department.")
    if seal.status == SealStatus.REVOKED:
        raise SealUnusableError(f"Seal {seal.id} is revoked and cannot seal.")
    if seal.status == SealStatus.RETIRED:
        raise SealUnusableError(f"Seal {seal.id} was replaced by a newer key and cannot seal.")


def seal_document(
    services: Services,
    *,
    source: BinaryIO,
    seal_id: str,
    options: SealOptions,
    actor: audit.Actor,
    file_name: str | None = None,
    within: Callable[[Session, SealedDocument], None] | None = None,
    dual: bool = False,
) -> SealedFile:
    """Seal an uploaded PDF with one of the actor's department's seals and register it.

    With ``dual``, the seal is paired with the department's newest active seal of the same
    kind in the other family (SM2 with ECDSA or RSA) and both seal
    (:mod:`econtract.dual_seal`); the document's row names the certifying one.

    ``within``, when given, runs in the registering transaction after the document's row:
    a use case built on sealing (an envelope's step) records its own change there, or
    raises to leave nothing registered.

    The sealed file is staged beside the blob store and moved into it only after the registry
    row committed (:mod:`econtract.blobs`); a failure anywhere leaves neither, and a crash at
    worst a staged file that the start-up sweep settles.
    """
    with services.sessions() as session:
        seal = session.get(Seal, seal_id)
        if seal is None:
            raise NotFoundError(
                f"No seal {seal_id!r}" + (" for this department." if actor.department_id else ".")
            )
        usable_seal(seal, department_id=actor.department_id)
        department = session.get(Department, seal.department_id)
        assert department is not None
        plan = plan_seals(session, seal, dual=dual)
        seal, approving = plan.seal, None
        if plan.dual and plan.sm2_seal is not None:
            options, approving = dual_options(options, plan.sm2_seal.id)
        options = dataclasses.replace(
            options, reserve_fields=_resolve_holders(session, options.reserve_fields)
        )
        session.expunge_all()
    identity = seal_identity(services, seal, department)
    context = sealing_context(services, identity.certificate, long_term=options.level.long_term)
    with services.blobs.staging() as staged:
        sealed = seal_with_sm2(
            source,
            staged.file,
            identity=identity,
            options=options,
            context=context,
            check_field=lambda field: check_reserved_field(services, field, seal),
            sm2=sm2_part(services, plan, department, identity=identity, approving=approving),
        )
        result = sealed.result
        blob = staged.finish()
        key, sha256 = blob.key, blob.sha256
        with db.transaction(services.sessions) as session:
            # The seals may have been revoked while the document was being sealed.
            for used in {seal.id, plan.sm2_seal.id if plan.sm2_seal else seal.id}:
                current = session.get(Seal, used)
                assert current is not None
                usable_seal(current, department_id=actor.department_id)
            document = SealedDocument(
                id=new_public_id("doc"),
                department_id=seal.department_id,
                seal_id=seal.id,
                file_name=file_name,
                level=sealed.last.level.value,
                pdf_sha256=sha256,
                signed_digest=result.signed_digest,
                blob_key=key,
                created_at=services.clock.now(),
            )
            session.add(document)
            session.flush()
            _record_reservations(session, document, options.reserve_fields)
            keep_ses_signature(session, plan, sealed, document_id=document.id)
            if within is not None:
                within(session, document)
            detail: dict[str, object] = {
                "seal": seal.id,
                "level": document.level,
                "sha256": sha256,
                "signed_digest": result.signed_digest,
                "field": result.field_name,
                "reserved": {
                    f.name: f.holder.describe() if f.holder else None
                    for f in options.reserve_fields
                },
            }
            if plan.dual and plan.sm2_seal is not None:
                detail["dual_seal"] = plan.sm2_seal.id
                detail["dual_signed_digest"] = sealed.last.signed_digest
            record_change(
                session,
                change=Change(
                    type="document.sealed",
                    action="document.seal",
                    target_type="document",
                    target_id=document.id,
                    department_id=seal.department_id,
                    detail=detail,
                    # Not the file's name: it may name a person.
                    payload={
                        "document_id": document.id,
                        "seal_id": seal.id,
                        "level": document.level,
                        "sha256": sha256,
                    },
                    log_entry=lambda code: LogEntry.document_sealed(document, department_code=code),
                    at=document.created_at,
                ),
                actor=actor,
                clock=services.clock,
            )
            # The transaction's work is done: a failure from here is the commit's, whose
            # outcome is unknown, and the staged file is left for the start-up sweep.
            staged.committing()
    metrics.SEALS_MADE.labels(level=result.level.value).inc()
    if plan.dual:
        metrics.SEALS_MADE.labels(level=sealed.last.level.value).inc()
    return SealedFile(
        document=document,
        result=result,
        dual_seal_id=plan.sm2_seal.id if plan.dual and plan.sm2_seal else None,
        ses_signature=sealed.ses_signature,
    )


def sm2_part(
    services: Services,
    plan: SealPlan,
    department: Department,
    *,
    identity: SealIdentity,
    approving: SealOptions | None,
) -> SM2Part | None:
    """The SM2 seal's share of the sealing ``plan`` (``identity`` is the first seal's)."""
    if plan.sm2_seal is None:
        return None
    if approving is None:
        return SM2Part(identity=identity, seal_ses=plan.seal_ses, authority=services.pki.sm2_tsa)
    sm2_identity = seal_identity(services, plan.sm2_seal, department)
    context = sealing_context(
        services, sm2_identity.certificate, long_term=approving.level.long_term
    )
    return SM2Part(
        identity=sm2_identity,
        seal_ses=plan.seal_ses,
        authority=services.pki.sm2_tsa,
        approves=(approving, context),
    )


def keep_ses_signature(
    session: Session,
    plan: SealPlan,
    sealed: Sealed,
    *,
    document_id: str | None = None,
    certificate_id: str | None = None,
) -> None:
    """Add the SM2 sealing's SES_Signature, if it made one, beside its record."""
    if sealed.ses_signature is None or plan.sm2_seal is None or sealed.sm2_result is None:
        return
    session.add(
        sealing_signature_record(
            der=sealed.ses_signature,
            department_id=plan.sm2_seal.department_id,
            seal_id=plan.sm2_seal.id,
            data_hash=sealed.sm2_result.signed_digest,
            at=sealed.sm2_result.signed_at,
            document_id=document_id,
            certificate_id=certificate_id,
        )
    )


def resolved_holders(
    services: Services, reserved: tuple[ReservedField, ...]
) -> tuple[ReservedField, ...]:
    """The reserved fields with each binding completed from the registry (a seal's
    department and certificate), in a session of their own."""
    with services.sessions() as session:
        resolved = _resolve_holders(session, reserved)
        session.expunge_all()
    return resolved


def _resolve_holders(
    session: Session, reserved: tuple[ReservedField, ...]
) -> tuple[ReservedField, ...]:
    """Complete each binding from the registry: the department of a seal, its certificate."""
    resolved = []
    problems: list[tuple[str, str]] = []
    for index, field in enumerate(reserved):
        holder = field.holder
        if holder is None:
            resolved.append(field)
            continue
        pointer = f"/reserve/{index}"
        if holder.seal_id is not None:
            seal = session.get(Seal, holder.seal_id)
            if seal is None:
                problems.append((pointer, f"No seal {holder.seal_id!r}."))
                continue
            if seal.status != SealStatus.ACTIVE:
                problems.append((pointer, f"Seal {seal.id} is {seal.status} and cannot seal."))
                continue
            holder = FieldHolder(
                department_code=seal.department.code,
                seal_id=seal.id,
                seal_certificate=x509.load_der_x509_certificate(seal.certificate_der),
            )
        elif (
            session.scalar(select(Department.id).where(Department.code == holder.department_code))
            is None
        ):
            problems.append((pointer, f"No department with code {holder.department_code!r}."))
            continue
        resolved.append(dataclasses.replace(field, holder=holder))
    if problems:
        raise InvalidInputError(
            "A reserved field names a department or seal that cannot fill it: "
            + " ".join(message for _, message in problems),
            errors=problems,
        )
    return tuple(resolved)


def _record_reservations(
    session: Session, document: SealedDocument, reserved: tuple[ReservedField, ...]
) -> None:
    """Keep who may fill each reserved field with the certifying document."""
    for field in reserved:
        department_id = None
        if field.holder is not None:
            department_id = session.scalar(
                select(Department.id).where(Department.code == field.holder.department_code)
            )
        session.add(
            ReservedSealField(
                document_id=document.id,
                field_name=field.name,
                department_id=department_id,
                seal_id=field.holder.seal_id if field.holder else None,
            )
        )


def check_reserved_field(services: Services, field: FieldToFill, seal: Seal) -> None:
    """Refuse to fill a field the registry reserved for another department or seal.

    The field's seed value in the PDF says the same, and the engine checks it too; the
    registry's word stands even for a file whose seed values were tampered with.
    """
    if field.certification_digest is None:
        return
    with services.sessions() as session:
        row = session.execute(
            select(ReservedSealField, Department.code)
            .join(SealedDocument, SealedDocument.id == ReservedSealField.document_id)
            .outerjoin(Department, Department.id == ReservedSealField.department_id)
            .where(
                SealedDocument.signed_digest == field.certification_digest,
                ReservedSealField.field_name == field.name,
            )
            .limit(1)
        ).first()
    if row is None:
        return
    reservation, code = row
    if reservation.department_id is not None and reservation.department_id != seal.department_id:
        raise FieldReservedError(
            f"Field {field.name!r} is reserved for another department ({code}); "
            f"seal {seal.id} may not fill it.",
            field_name=field.name,
        )
    if reservation.seal_id is not None and reservation.seal_id != seal.id:
        raise FieldReservedError(
            f"Field {field.name!r} is reserved for another seal ({reservation.seal_id}); "
            f"seal {seal.id} may not fill it.",
            field_name=field.name,
        )
