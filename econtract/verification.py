"""Verification as the service offers it: the registry's view from the database, the service's
root and CRLs, and every uploaded file checked in a bounded worker process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select

from econtract.certificates import effective_status
from econtract.models import Certificate, Seal, SealedDocument, StatusEvent
from econtract.pki import ISSUING, ROOT
from econtract.services import Services
from verify.limits import verify_pdf_bounded
from verify.policy import VerificationLimits, VerificationPolicy
from verify.registry import RegistryMatch, RegistryStatus
from verify.report import Report


@dataclass(frozen=True)
class DatabaseRegistryView:
    """The registry's view of a file, read from the database (whole file first, then by the
    digest of a seal's signed bytes)."""

    services: Services

    def lookup(self, pdf_sha256: str, signed_digests: list[str]) -> RegistryMatch | None:
        """The certificate or sealed document the file is, if it was issued here."""
        with self.services.sessions() as session:
            for matched_by, column_c, column_d, values in (
                ("file", Certificate.pdf_sha256, SealedDocument.pdf_sha256, [pdf_sha256]),
                (
                    "signed-bytes",
                    Certificate.signed_digest,
                    SealedDocument.signed_digest,
                    signed_digests,
                ),
            ):
                if not values:
                    continue
                certificate = session.scalars(
                    select(Certificate).where(column_c.in_(values)).limit(1)
                ).first()
                if certificate is not None:
                    seal = session.get(Seal, certificate.seal_id)
                    assert seal is not None
                    changed = session.scalar(
                        select(StatusEvent.created_at)
                        .where(StatusEvent.certificate_id == certificate.id)
                        .order_by(StatusEvent.id.desc())
                        .limit(1)
                    )
                    status = effective_status(certificate)
                    return RegistryMatch(
                        record_id=certificate.id,
                        kind="certificate",
                        status=_registry_status(status),
                        seal_fingerprint=hashlib.sha256(seal.certificate_der).hexdigest(),
                        matched_by=matched_by,  # type: ignore[arg-type]
                        number=certificate.number,
                        status_changed_at=changed.isoformat() if changed else None,
                    )
                document = session.scalars(
                    select(SealedDocument).where(column_d.in_(values)).limit(1)
                ).first()
                if document is not None:
                    seal = session.get(Seal, document.seal_id)
                    assert seal is not None
                    return RegistryMatch(
                        record_id=document.id,
                        kind="document",
                        status="valid",
                        seal_fingerprint=hashlib.sha256(seal.certificate_der).hexdigest(),
                        matched_by=matched_by,  # type: ignore[arg-type]
                    )
        return None


def _registry_status(status: str) -> RegistryStatus:
    if status in ("valid", "revoked", "suspended", "superseded", "expired"):
        return status  # type: ignore[return-value]
    # Not yet valid: the registry holds it, but it does not count as valid today.
    return "suspended"


def service_policy(services: Services, *, registry: bool = True) -> VerificationPolicy:
    """What the service trusts: its root, its current CRLs, and (usually) its registry."""
    pki = services.pki
    limits = VerificationLimits(
        max_file_size=services.settings.max_upload_bytes,
        wall_seconds=services.settings.request_timeout_seconds,
    )
    return VerificationPolicy(
        trust_roots=(pki.root.certificate,),
        crls=(pki.crl_der(ROOT), pki.crl_der(ISSUING)),
        registry=DatabaseRegistryView(services) if registry else None,
        limits=limits,
    )


def verify_upload(services: Services, data: bytes) -> Report:
    """Verify an uploaded file in a bounded worker, with the registry's view."""
    return verify_pdf_bounded(data, policy=service_policy(services))
