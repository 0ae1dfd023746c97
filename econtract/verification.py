"""Verification as the service offers it: the registry's view from the database, the service's
root and CRLs, and every uploaded file checked in a bounded worker process."""

from __future__ import annotations

import copy
import hashlib
import logging
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Executable, bindparam, or_, select
from sqlalchemy.orm import Session

from econtract import db
from econtract.envelopes import Envelope, EnvelopeParty
from econtract.errors import EContractError
from econtract.issuance import EffectiveStatus, effective_status
from econtract.models import Certificate, Department, Seal, SealedDocument, StatusEvent
from econtract.pki import ISSUING, ROOT, SM2_ISSUING, SM2_ROOT
from econtract.services import Services
from econtract.translog import WIRE_VERSION, subject_proofs_json
from verify.envelope import RegisteredEnvelope
from verify.limits import verify_pdf_bounded
from verify.policy import VerificationLimits, VerificationPolicy
from verify.registry import MatchedBy, RegistryMatch, RegistryStatus
from verify.report import Appendix, EnvelopeRecord, Report

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class DatabaseRegistryView:
    """The registry's view of a file, read from the database (whole file first, then by the
    digest of a seal's signed bytes), and which seal certificates are this service's."""

    services: Services

    def lookup(self, pdf_sha256: str, signed_digests: list[str]) -> RegistryMatch | None:
        """The certificate or sealed document the file is, if it was issued here."""
        digests = tuple(signed_digests)
        # Read afresh every time, not remembered: the hashes are the uploader's to choose, and
        # a flood of different files would otherwise crowd out the answers the QR page keeps.
        found = read_quickly(self.services, lambda conn: _find(conn, pdf_sha256, digests))
        if found is None:
            return None
        fingerprint = hashlib.sha256(found.seal_der).hexdigest()
        if found.validity is None:
            return RegistryMatch(
                record_id=found.record_id,
                kind="document",
                status="valid",
                seal_fingerprint=fingerprint,
                matched_by=found.matched_by,
            )
        status = effective_status(found.validity, self.services.clock.today())
        return RegistryMatch(
            record_id=found.record_id,
            kind="certificate",
            status=_registry_status(status),
            seal_fingerprint=fingerprint,
            matched_by=found.matched_by,
            number=found.number,
            holder=found.holder,
            status_changed_at=found.changed_at.isoformat() if found.changed_at else None,
        )

    def knows_seal(self, certificate_sha256: str) -> bool:
        """Whether the certificate is one of the registry's seals (by its SHA-256)."""
        return is_seal_of_service(self.services, certificate_sha256)

    def envelope_of(self, record_id: str) -> RegisteredEnvelope | None:
        """The envelope the sealed document ``record_id`` is a revision of (its certification,
        a party's seal, its current or its timestamped final revision), with each party's
        step and name."""
        return read_remembered(
            self.services, ("envelope-of", record_id), lambda conn: _envelope_of(conn, record_id)
        )


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


def read_remembered(services: Services, key: Hashable, read: Callable[[Connection], _T]) -> _T:
    """``read`` on a quick read connection, its answer remembered until the database changes
    (``econtract.db.ReadConnections.run_remembered``), or waited for on a pooled connection
    when the SQLite file is locked for a moment. For the reads every verification repeats
    whose keys are the registry's own (a record's id): once remembered, an answer costs the
    serving process one pragma instead of queries."""
    try:
        return services.reads.run_remembered(key, read)
    except db.ReadBusyError:
        return services.reads.run(read, patient=True)


def read_quickly(services: Services, read: Callable[[Connection], _T]) -> _T:
    """``read`` on the thread's quick read connection (``econtract.db.ReadConnections``), or
    on a pooled connection when the SQLite file is locked for a moment."""
    try:
        return services.reads.run(read)
    except db.ReadBusyError:
        return services.reads.run(read, patient=True)


@dataclass(frozen=True)
class _Validity:
    """What a certificate's effective status is derived from (on the day it is asked)."""

    status: str
    valid_from: date
    valid_until: date | None


@dataclass(frozen=True)
class _Found:
    """The columns a registry match is made of; ``validity`` is ``None`` for a document."""

    record_id: str
    matched_by: MatchedBy
    seal_der: bytes
    validity: _Validity | None = None
    number: str | None = None
    holder: str | None = None
    changed_at: datetime | None = None


_LAST_CHANGE = (
    select(StatusEvent.created_at)
    .where(StatusEvent.certificate_id == Certificate.id)
    .order_by(StatusEvent.id.desc())
    .limit(1)
    .correlate(Certificate)
    .scalar_subquery()
)


def _certificate_query(column: Any) -> Executable:
    return (
        select(
            Certificate.id,
            Certificate.number,
            Certificate.holder_name,
            Certificate.status,
            Certificate.valid_from,
            Certificate.valid_until,
            Seal.certificate_der,
            _LAST_CHANGE.label("changed_at"),
        )
        .join(Seal, Seal.id == Certificate.seal_id)
        .where(column.in_(bindparam("values", expanding=True)))
        .limit(1)
    )


def _document_query(column: Any) -> Executable:
    return (
        select(SealedDocument.id, Seal.certificate_der)
        .join(Seal, Seal.id == SealedDocument.seal_id)
        .where(column.in_(bindparam("values", expanding=True)))
        .limit(1)
    )


#: Per way of matching (the file's hash, then its seals' signed bytes), one Core query for
#: a certificate and one for a document: plain columns with the seal and the last status
#: change joined in. Loading the entities took five queries (the certificate's eager
#: relationships among them) and the ORM's bookkeeping for each, in the serving process.
_QUERIES: tuple[tuple[MatchedBy, Executable, Executable], ...] = (
    (
        "file",
        _certificate_query(Certificate.pdf_sha256),
        _document_query(SealedDocument.pdf_sha256),
    ),
    (
        "signed-bytes",
        _certificate_query(Certificate.signed_digest),
        _document_query(SealedDocument.signed_digest),
    ),
)


def _find(conn: Connection, pdf_sha256: str, signed_digests: tuple[str, ...]) -> _Found | None:
    """The record the file is, by its hash first and then by its seals' signed bytes."""
    for (matched_by, certificates, documents), values in zip(
        _QUERIES, ([pdf_sha256], list(signed_digests)), strict=True
    ):
        if not values:
            continue
        row = conn.execute(certificates, {"values": values}).first()
        if row is not None:
            return _Found(
                record_id=row.id,
                matched_by=matched_by,
                seal_der=row.certificate_der,
                validity=_Validity(row.status, row.valid_from, row.valid_until),
                number=row.number,
                holder=row.holder_name,
                changed_at=row.changed_at,
            )
        row = conn.execute(documents, {"values": values}).first()
        if row is not None:
            return _Found(record_id=row.id, matched_by=matched_by, seal_der=row.certificate_der)
    return None


def _envelope_of(conn: Connection, record_id: str) -> RegisteredEnvelope | None:
    sealed_by_party = select(EnvelopeParty.envelope_id).where(
        EnvelopeParty.document_id == record_id
    )
    envelope = conn.execute(
        select(Envelope.id, Envelope.title, Envelope.status)
        .where(
            or_(
                Envelope.document_id == record_id,
                Envelope.certified_document_id == record_id,
                Envelope.timestamped_document_id == record_id,
                Envelope.id.in_(sealed_by_party),
            )
        )
        .limit(1)
    ).first()
    if envelope is None:
        return None
    parties = conn.execute(
        select(EnvelopeParty.field_name, EnvelopeParty.step, Department.name)
        .join(Department, Department.id == EnvelopeParty.department_id)
        .where(EnvelopeParty.envelope_id == envelope.id)
    ).all()
    return RegisteredEnvelope(
        record=EnvelopeRecord(id=envelope.id, title=envelope.title, status=envelope.status),
        parties={row.field_name: (row.step, row.name) for row in parties},
    )


def service_policy(services: Services, *, registry: bool = True) -> VerificationPolicy:
    """What the service trusts: its roots (the SM2 one too), their current CRLs, and (usually)
    its registry."""
    pki = services.pki
    limits = VerificationLimits(
        max_file_size=services.settings.max_upload_bytes,
        wall_seconds=services.settings.request_timeout_seconds,
    )
    roots = [pki.root.certificate]
    crls = [pki.crl_der(ROOT), pki.crl_der(ISSUING, reads=services.reads)]
    sm2 = pki.sm2_ca_certificates
    if sm2:
        # SM2 seals chain to the SM2 root, beside the first hierarchy (verify._sm2).
        roots.append(sm2[SM2_ROOT])
        crls += [pki.crl_der(SM2_ROOT), pki.crl_der(SM2_ISSUING, reads=services.reads)]
    return VerificationPolicy(
        trust_roots=tuple(roots),
        crls=tuple(crls),
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
    public_key = services.pki.log_key.public_key()

    def read(conn: Connection) -> dict[str, Any]:
        with Session(bind=conn) as session:
            return subject_proofs_json(session, subject, public_key=public_key)

    try:
        # Remembered until the database changes (a new entry or tree head): the proofs of
        # the same record are otherwise read and checked again for every upload of it. A
        # copy is returned, so that a caller's change never reaches the remembered answer.
        return copy.deepcopy(read_remembered(services, ("log-proofs", subject), read))
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
