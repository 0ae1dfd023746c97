"""Sealing a document on request: the seal's checks, the engine, the blob, the registry."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from cryptography import x509
from pyhanko.sign.timestamps.api import TimeStamper

from econtract import audit, db, metrics
from econtract.blobs import DiskBlobStore
from econtract.errors import NotFoundError
from econtract.models import Department, Seal, SealedDocument, SealKind, SealStatus, new_public_id
from econtract.seals import seal_code
from econtract.services import Services
from econtract.translog import LogEntry, append_entry
from keys.signer import KeySigner
from signing.appearance import SealAppearance
from signing.errors import SealUnusableError
from signing.options import SealOptions
from signing.sealer import SealIdentity, SealingContext, SealResult, seal_pdf
from signing.timestamps import HTTPTimeStamper


@dataclass(frozen=True, kw_only=True)
class SealedFile:
    """A sealed document as registered, and where its PDF is."""

    document: SealedDocument
    """The registry's row."""
    result: SealResult
    """What the engine reported."""


_identities: dict[tuple[int, str], SealIdentity] = {}
_identities_lock = threading.Lock()


def seal_identity(services: Services, seal: Seal, department: Department) -> SealIdentity:
    """The signing identity of a seal, built once per process (the key is loaded once)."""
    key = (id(services), seal.id)
    with _identities_lock:
        cached = _identities.get(key)
    if cached is not None:
        return cached
    pki = services.pki
    certificate = x509.load_der_x509_certificate(seal.certificate_der)
    chain = (pki.issuing.certificate, pki.root.certificate)
    identity = SealIdentity(
        signer=KeySigner.for_handle(services.key_store.load(seal.key_label), certificate, chain),
        certificate=certificate,
        chain=chain,
        appearance=SealAppearance(
            department_name=department.name,
            seal_name=SealKind(seal.kind).chinese_name,
            code=seal_code(seal, department),
        ),
    )
    with _identities_lock:
        _identities[key] = identity
    return identity


def sealing_context(
    services: Services, seal_certificate: x509.Certificate, *, long_term: bool
) -> SealingContext:
    """The timestamper (built-in or external) and, for B-LT and above, validation material."""
    settings = services.settings
    timestamper: TimeStamper = (
        HTTPTimeStamper(settings.tsa_url, timeout=settings.tsa_timeout_seconds)
        if settings.tsa_url
        else services.pki.timestamper
    )
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
) -> SealedFile:
    """Seal an uploaded PDF with one of the actor's department's seals and register it.

    The sealed file is written beside the blob store and moved into it only when the
    registry row is about to commit; a failure anywhere leaves neither.
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
        session.expunge_all()
    identity = seal_identity(services, seal, department)
    context = sealing_context(services, identity.certificate, long_term=options.level.long_term)
    blobs = DiskBlobStore(services.settings.blob_dir)
    staged = blobs.staging()
    stored: str | None = None
    try:
        with staged.temp_path.open("w+b") as output:
            result = seal_pdf(source, output, identity=identity, options=options, context=context)
        with db.transaction(services.sessions) as session:
            # The seal may have been revoked while the document was being sealed.
            current = session.get(Seal, seal.id)
            assert current is not None
            usable_seal(current, department_id=actor.department_id)
            key, sha256, new = staged.commit()
            stored = key if new else None
            document = SealedDocument(
                id=new_public_id("doc"),
                department_id=seal.department_id,
                seal_id=seal.id,
                file_name=file_name,
                level=result.level.value,
                pdf_sha256=sha256,
                signed_digest=result.signed_digest,
                blob_key=key,
                created_at=datetime.now(UTC),
            )
            session.add(document)
            session.flush()
            owner = session.get(Department, seal.department_id)
            assert owner is not None
            append_entry(session, LogEntry.document_sealed(document, department_code=owner.code))
            audit.record(
                session,
                actor=actor,
                action="document.seal",
                department_id=seal.department_id,
                target_type="document",
                target_id=document.id,
                detail={
                    "seal": seal.id,
                    "level": result.level.value,
                    "sha256": sha256,
                    "signed_digest": result.signed_digest,
                    "field": result.field_name,
                },
            )
    except BaseException:
        if stored is not None:
            blobs.remove(stored)
        raise
    finally:
        staged.discard()
    metrics.SEALS_MADE.labels(level=result.level.value).inc()
    return SealedFile(document=document, result=result)
