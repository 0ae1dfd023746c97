"""Verification as the service offers it: the registry's view from the database, the service's
root and CRLs, and every uploaded file checked in a bounded worker process."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from econtract.errors import EContractError
from econtract.issuance import EffectiveStatus, effective_status
from econtract.models import Certificate, Seal, SealedDocument, StatusEvent
from econtract.pki import ISSUING, ROOT
from econtract.services import Services
from econtract.translog import WIRE_VERSION, subject_proofs_json
from verify.limits import verify_pdf_bounded
from verify.policy import VerificationLimits, VerificationPolicy
from verify.registry import RegistryMatch, RegistryStatus
from verify.report import Appendix, Report

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatabaseRegistryView:
    """The registry's view of a file, read from the database (whole file first, then by the
    digest of a seal's signed bytes), and which seal certificates are this service's."""

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
                    status = effective_status(certificate, self.services.clock.today())
                    return RegistryMatch(
                        record_id=certificate.id,
                        kind="certificate",
                        status=_registry_status(status),
                        seal_fingerprint=hashlib.sha256(seal.certificate_der).hexdigest(),
                        matched_by=matched_by,  # type: ignore[arg-type]
                        number=certificate.number,
                        holder=certificate.holder_name,
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

    def knows_seal(self, certificate_sha256: str) -> bool:
        """Whether the certificate is one of the registry's seals (by its SHA-256)."""
        return is_seal_of_service(self.services, certificate_sha256)


def is_seal_of_service(services: Services, certificate_sha256: str) -> bool:
    """Whether the certificate with this SHA-256 (hex) is one of the registry's seals."""
    return services.seal_fingerprints.contains(services.sessions, certificate_sha256)


#: Each status a certificate shows, in verification's words. Not yet valid: the registry
#: holds it, but it does not count as valid today.
_REGISTRY_STATUS: dict[EffectiveStatus, RegistryStatus] = {
    EffectiveStatus.VALID: "valid",
    EffectiveStatus.REVOKED: "revoked",
    EffectiveStatus.SUSPENDED: "suspended",
    EffectiveStatus.SUPERSEDED: "superseded",
    EffectiveStatus.EXPIRED: "expired",
    EffectiveStatus.NOT_YET_VALID: "suspended",
}


def _registry_status(status: EffectiveStatus) -> RegistryStatus:
    return _REGISTRY_STATUS[status]


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


def log_proofs(services: Services, subject: str) -> dict[str, Any]:
    """A certificate's or document's log entries with inclusion proofs, each proof and the
    tree head's signature checked before they are returned.

    When they cannot be produced or do not check (the log key unavailable, a proof that
    fails: the log is damaged), the answer says so (``"checked": false`` and the problem)
    instead of failing the verification it accompanies; the failure is logged as an error.
    """
    try:
        with services.sessions() as session:
            return subject_proofs_json(
                session, subject, public_key=services.pki.log_key.public_key()
            )
    except EContractError as exc:
        problem = str(exc).splitlines()[0]
        log.error("log proofs failed", extra={"subject": subject, "reason": problem})
        return {"v": WIRE_VERSION, "subject": subject, "checked": False, "problem": problem}


def log_appendix(proofs: dict[str, Any]) -> Appendix:
    """The printable report's section on the transparency log, from :func:`log_proofs`."""
    sth = proofs.get("sth")
    rows: list[tuple[str, str]] = []
    if not proofs.get("checked", False):
        rows.append(("问题 Problem", f"the log's proof could not be checked: {proofs['problem']}"))
    elif sth is None:
        rows.append(("树头 Signed tree head", "none published yet / 尚未发布"))
    else:
        published = datetime.fromtimestamp(sth["timestamp"] / 1000, UTC)
        rows.append(
            (
                "树头 Signed tree head",
                f"size {sth['tree_size']}, root {sth['sha256_root_hash']}, "
                f"{published.isoformat(timespec='seconds')}, signature checked",
            )
        )
    for item in proofs.get("entries", []):
        rows.append(
            (
                f"条目 Entry {item['leaf_index']}",
                f"{_entry_text(item['entry'])}; leaf {item['leaf_hash']}; inclusion proof of "
                f"{len(item['audit_path'])} hashes checked",
            )
        )
    for item in proofs.get("pending", []):
        rows.append(
            (
                f"待纳入 Pending entry {item['leaf_index']}",
                f"{_entry_text(item['entry'])}; the next tree head covers it",
            )
        )
    return Appendix(
        title="透明日志 Transparency log",
        note="本平台公开日志（RFC 9162）中关于该登记记录的条目，包含证明与树头签名已核对；"
        "任何人可用 econtract audit 或 GET /log/proof/inclusion 复核。 "
        "The entries about this record in the service's public log (RFC 9162), their "
        "inclusion proofs and the tree head's signature checked; anyone can check them again "
        "with econtract audit or GET /log/proof/inclusion.",
        rows=tuple(rows),
    )


def _entry_text(entry: dict[str, Any]) -> str:
    details = ", ".join(
        f"{key} {value}" for key, value in entry.items() if key not in ("v", "kind", "time")
    )
    return f"{entry['kind']} at {entry['time']}" + (f" ({details})" if details else "")
