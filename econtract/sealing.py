"""Sealing a document on request: the seal's checks, the engine, the blob, the registry.

Parallel approval binds each reserved field to the department (or the one seal) that may
fill it, twice over: in the PDF, as the field's seed value, so the binding travels with the
file; and in the registry, with the certifying document, so that this service refuses
another department's seal on the field even if the file were altered. The registry finds
the binding again through the certifying seal's signed digest, which every later revision
of the file still carries.

A dual seal (双算法签章) puts two seals of one department on the document, so that readers
that know only the international algorithms (pdfsig, Adobe Reader) and those that check the
national ones both accept it: the department's ECDSA (or RSA) seal certifies first, with
"form filling and signing allowed" (DocMDP 2) and an empty field reserved for the SM2 seal,
and carries the visible seal; the SM2 seal then fills that field in a revision of its own,
which DocMDP 2 allows, so the certification stays intact. The other order would not do: a
certifying SM2 seal is one pdfsig cannot check, and the ECDSA approval seal after it would be
judged only as far as the certification it cannot verify.

Each sealing with an SM2 seal also makes its GB/T 38540 ``SES_Signature``
(:mod:`econtract.ses.sealing_record`), kept with the document's row.
"""

from __future__ import annotations

import dataclasses
import secrets
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from cryptography import x509
from pyhanko.sign.timestamps.api import TimeStamper
from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit, db, metrics
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
from econtract.ses.sealing_record import (
    make_sealing_signature,
    seal_data_of,
    sealing_signature_record,
)
from econtract.translog import LogEntry
from keys import oids
from keys.filestore import FileKeyStore
from keys.handles import KeyAlgorithm
from keys.signer import KeySigner, SealKeyHandle
from keys.suites import suite_for
from signing.appearance import SealAppearance
from signing.errors import FieldReservedError, SealUnusableError
from signing.options import Certification, FieldHolder, ReservedField, SealLevel, SealOptions
from signing.sealer import FieldToFill, SealIdentity, SealingContext, SealResult, seal_pdf
from signing.timestamps import HTTPTimeStamper

# Certification, SealLevel and SealOptions are the choices a caller makes when sealing; they
# are offered here so that the HTTP face depends on the domain, not on signing.
__all__ = [
    "Certification",
    "SealLevel",
    "SealOptions",
    "SealedFile",
    "check_reserved_field",
    "dual_partner",
    "seal_document",
    "seal_identity",
    "sealing_context",
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
    material = services.pki.validation_material(seal_certificate) if long_term else None
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
    kind in the other family (SM2 with ECDSA or RSA) and both seal, as the module says.

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
        sm2_seal: Seal | None = seal if seal.algorithm == KeyAlgorithm.SM2 else None
        second: SealOptions | None = None
        if dual:
            partner = dual_partner(session, seal)
            if sm2_seal is None:
                sm2_seal = partner
            else:
                seal = partner
            options, second = _dual_options(options, sm2_seal.id)
        options = dataclasses.replace(
            options, reserve_fields=_resolve_holders(session, options.reserve_fields)
        )
        seal_ses = seal_data_of(session, sm2_seal.id) if sm2_seal is not None else None
        session.expunge_all()
    identity = seal_identity(services, seal, department)
    context = sealing_context(services, identity.certificate, long_term=options.level.long_term)
    sm2_result: SealResult | None = None
    with services.blobs.staging() as staged:
        if second is None:
            result = seal_pdf(
                source,
                staged.file,
                identity=identity,
                options=options,
                context=context,
                check_field=lambda field: check_reserved_field(services, field, seal),
            )
            sm2_identity = identity if sm2_seal is not None else None
            sm2_result = result if sm2_seal is not None else None
        else:
            assert sm2_seal is not None
            # The certified revision is read back as the SM2 seal's input; a temporary file
            # keeps a large document out of memory.
            with tempfile.TemporaryFile() as certified:
                result = seal_pdf(
                    source,
                    certified,
                    identity=identity,
                    options=options,
                    context=context,
                    check_field=lambda field: check_reserved_field(services, field, seal),
                )
                certified.seek(0)
                sm2_identity = seal_identity(services, sm2_seal, department)
                sm2_result = seal_pdf(
                    certified,
                    staged.file,
                    identity=sm2_identity,
                    options=second,
                    context=sealing_context(
                        services, sm2_identity.certificate, long_term=second.level.long_term
                    ),
                )
        ses_signature = None
        if sm2_result is not None and sm2_identity is not None and seal_ses is not None:
            # Signed and timestamped before the registering transaction: no lock is held
            # while the keys work.
            ses_signature = make_sealing_signature(
                seal_ses=seal_ses,
                identity=sm2_identity,
                result=sm2_result,
                authority=services.pki.sm2_tsa if sm2_result.level.timestamped else None,
            )
        blob = staged.finish()
        key, sha256 = blob.key, blob.sha256
        with db.transaction(services.sessions) as session:
            # The seals may have been revoked while the document was being sealed.
            for used in (seal, sm2_seal):
                if used is not None:
                    current = session.get(Seal, used.id)
                    assert current is not None
                    usable_seal(current, department_id=actor.department_id)
            document = SealedDocument(
                id=new_public_id("doc"),
                department_id=seal.department_id,
                seal_id=seal.id,
                file_name=file_name,
                level=(sm2_result or result).level.value,
                pdf_sha256=sha256,
                signed_digest=result.signed_digest,
                blob_key=key,
                created_at=services.clock.now(),
            )
            session.add(document)
            session.flush()
            _record_reservations(session, document, options.reserve_fields)
            if ses_signature is not None:
                assert sm2_seal is not None
                assert sm2_result is not None
                session.add(
                    sealing_signature_record(
                        der=ses_signature,
                        department_id=seal.department_id,
                        seal_id=sm2_seal.id,
                        data_hash=sm2_result.signed_digest,
                        at=document.created_at,
                        document_id=document.id,
                    )
                )
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
            if second is not None:
                assert sm2_seal is not None
                assert sm2_result is not None
                detail["dual_seal"] = sm2_seal.id
                detail["dual_signed_digest"] = sm2_result.signed_digest
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
    if second is not None and sm2_result is not None:
        metrics.SEALS_MADE.labels(level=sm2_result.level.value).inc()
    return SealedFile(
        document=document,
        result=result,
        dual_seal_id=sm2_seal.id if second is not None and sm2_seal is not None else None,
        ses_signature=ses_signature,
    )


def dual_partner(session: Session, seal: Seal) -> Seal:
    """The seal that pairs with ``seal`` in a dual seal: the same department's newest active
    seal of the same kind in the other family (SM2 for ECDSA or RSA, and the reverse)."""
    sm2 = seal.algorithm == KeyAlgorithm.SM2
    family = Seal.algorithm != KeyAlgorithm.SM2 if sm2 else Seal.algorithm == KeyAlgorithm.SM2
    partner = session.scalars(
        select(Seal)
        .where(
            Seal.department_id == seal.department_id,
            Seal.kind == seal.kind,
            Seal.status == SealStatus.ACTIVE,
            family,
        )
        .order_by(Seal.created_at.desc(), Seal.id.desc())
        .limit(1)
    ).first()
    if partner is None:
        wanted = "ECDSA or RSA" if sm2 else "SM2"
        raise InvalidInputError(
            f"A dual seal needs an active {SealKind(seal.kind).value} seal of the same "
            f"department in the other family ({wanted}) beside seal {seal.id}; there is none "
            "(econtract seals create" + (")." if sm2 else " --algorithm sm2).")
        )
    return partner


def _dual_options(options: SealOptions, sm2_seal_id: str) -> tuple[SealOptions, SealOptions]:
    """The certifying seal's options and the SM2 seal's, from what the caller asked for."""
    if options.certification is Certification.NO_CHANGES:
        raise InvalidInputError(
            "A dual seal certifies with 'form-filling' so that its SM2 seal may follow; "
            "'no-changes' would forbid it."
        )
    field = f"SM2-{secrets.token_hex(4)}"
    certifying = dataclasses.replace(
        options,
        certification=Certification.FORM_FILLING,
        # The archive timestamp of B-LTA belongs after the last seal, over both.
        level=SealLevel.B_LT if options.level is SealLevel.B_LTA else options.level,
        reserve_fields=(
            *options.reserve_fields,
            ReservedField(name=field, holder=FieldHolder(seal_id=sm2_seal_id)),
        ),
    )
    approving = SealOptions(
        level=options.level,
        certification=Certification.APPROVAL,
        field_name=field,
        reason=options.reason,
        location=options.location,
    )
    return certifying, approving


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
