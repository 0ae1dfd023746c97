"""The log's entries: what each records, and its canonical, versioned bytes.

An entry's bytes are canonical JSON: UTF-8, keys sorted, no whitespace, absent fields left
out, ``"v": 1`` first in meaning (the format's version), the time in RFC 3339 UTC with
microseconds and a ``Z``. The same entry always gives the same bytes, and ``from_bytes``
accepts only bytes in that exact form, so a leaf hash names one entry and one only.

The log is public: entries carry identifiers and digests, never a holder's name or a
licence's fields (personal data stays in the registry, behind access control).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from econtract.reasons import reason_kind
from econtract.translog._errors import LogFormatError

if TYPE_CHECKING:
    from econtract.models import Certificate, SealedDocument
    from econtract.models import Seal as SealRow

ENTRY_VERSION = 1
_T = TypeVar("_T")
_HEX = re.compile(r"[0-9a-f]+")
_MAX_TEXT = 1000


class LogEntryKind(StrEnum):
    """What an entry records."""

    CERTIFICATE_ISSUE = "certificate.issue"
    CERTIFICATE_STATUS = "certificate.status"
    SEAL_CREATE = "seal.create"
    SEAL_REVOKE = "seal.revoke"
    KEY_ROTATE = "key.rotate"
    DOCUMENT_SEAL = "document.seal"
    LICENCE_USE = "licence.use"
    NUMBER_VOID = "number.void"
    ENVELOPE_STEP = "envelope.step"
    ENVELOPE_COMPLETE = "envelope.complete"


#: The fields each kind must carry, besides ``kind`` and ``time``.
REQUIRED_FIELDS: dict[LogEntryKind, tuple[str, ...]] = {
    LogEntryKind.CERTIFICATE_ISSUE: (
        "department",
        "certificate_id",
        "certificate_number",
        "pdf_sha256",
        "signed_digest",
        "status",
    ),
    LogEntryKind.CERTIFICATE_STATUS: ("certificate_id", "status"),
    LogEntryKind.SEAL_CREATE: ("department", "seal_id"),
    LogEntryKind.SEAL_REVOKE: ("seal_id",),
    LogEntryKind.KEY_ROTATE: ("seal_id", "replaces_seal_id"),
    LogEntryKind.DOCUMENT_SEAL: ("department", "document_id", "pdf_sha256", "signed_digest"),
    LogEntryKind.LICENCE_USE: ("department", "usage_id", "record_sha256"),
    LogEntryKind.NUMBER_VOID: ("department", "certificate_number", "certificate_type", "reason"),
    LogEntryKind.ENVELOPE_STEP: ("department", "envelope_id", "step", "document_id", "pdf_sha256"),
    LogEntryKind.ENVELOPE_COMPLETE: ("department", "envelope_id", "document_id", "pdf_sha256"),
}


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and ``Z``: one spelling per instant."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def spki_sha256(certificate_der: bytes) -> str:
    """Hex SHA-256 of a certificate's SubjectPublicKeyInfo: names the key, not the cert."""
    certificate = x509.load_der_x509_certificate(certificate_der)
    try:
        key = certificate.public_key()
    except UnsupportedAlgorithm:
        # An SM2 key, whose curve cryptography does not know: the SPKI as the certificate
        # encodes it, which is the DER cryptography would write for a key it knows.
        tbs = asn1_x509.Certificate.load(certificate_der)["tbs_certificate"]
        return hashlib.sha256(tbs["subject_public_key_info"].dump()).hexdigest()
    spki = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


@dataclass(frozen=True, kw_only=True)
class LogEntry:
    """One change to the registry, as the public log records it. Validated when made."""

    kind: LogEntryKind
    """What happened."""
    time: datetime
    """When it happened (timezone-aware; written in UTC)."""
    department: str | None = None
    """The department's unified social credit code."""
    certificate_id: str | None = None
    """The certificate's public id."""
    certificate_number: str | None = None
    """The licence number printed on the certificate."""
    certificate_type: str | None = None
    """The certificate type's code."""
    document_id: str | None = None
    """The sealed document's public id (``document.seal``)."""
    seal_id: str | None = None
    """The seal that sealed, or the seal created, revoked or rotated in."""
    replaces_seal_id: str | None = None
    """``key.rotate``: the seal the new one replaces."""
    seal_serial: str | None = None
    """The seal certificate's serial number."""
    key_sha256: str | None = None
    """Hex SHA-256 of the seal's SubjectPublicKeyInfo."""
    pdf_sha256: str | None = None
    """Hex SHA-256 of the whole sealed PDF."""
    signed_digest: str | None = None
    """Hex digest the seal's signature covers (the PDF's signed byte ranges)."""
    status: str | None = None
    """The certificate's status after the change."""
    previous_status: str | None = None
    """The certificate's status before the change (``certificate.status``)."""
    reason: str | None = None
    """Why the status changed or the seal was revoked."""
    supersedes_id: str | None = None
    """The certificate this one replaces, when it does."""
    usage_id: str | None = None
    """``licence.use``: the usage record's public id (the department that used is
    ``department``; the holder and the licence are in the record, behind access control)."""
    record_sha256: str | None = None
    """``licence.use``: hex SHA-256 of the usage record's salted canonical form, so that a
    record changed or erased later no longer matches the log."""
    envelope_id: str | None = None
    """``envelope.step`` and ``envelope.complete``: the envelope's public id."""
    step: str | None = None
    """``envelope.step``: the number of the step the party sealed in, in decimal."""

    def __post_init__(self) -> None:
        if not isinstance(self.kind, LogEntryKind):
            try:
                object.__setattr__(self, "kind", LogEntryKind(self.kind))
            except ValueError:
                kinds = ", ".join(k.value for k in LogEntryKind)
                raise ValueError(
                    f"A log entry's kind is one of {kinds}; not {self.kind!r}."
                ) from None
        if not isinstance(self.time, datetime):
            raise TypeError("A log entry's time is a datetime.")
        if self.time.tzinfo is None:
            raise ValueError("A log entry's time is timezone-aware.")
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise TypeError(f"A log entry's {name} is a string, not {type(value).__name__}.")
            if not value or len(value) > _MAX_TEXT:
                raise ValueError(f"A log entry's {name} has 1 to {_MAX_TEXT} characters.")
        for name, lengths in (
            ("pdf_sha256", (64,)),
            ("record_sha256", (64,)),
            ("signed_digest", (40, 64, 96, 128)),
        ):
            value = getattr(self, name)
            if value is not None and (len(value) not in lengths or not _HEX.fullmatch(value)):
                raise ValueError(f"A log entry's {name} is a lowercase hex digest; not {value!r}.")
        missing = [n for n in REQUIRED_FIELDS[self.kind] if getattr(self, n) is None]
        if missing:
            raise ValueError(f"A {self.kind.value} log entry needs {', '.join(missing)}.")

    @property
    def subject(self) -> str | None:
        """The id the entry is about (envelope, else certificate, else document, else seal),
        for lookups."""
        return (
            self.envelope_id
            or self.certificate_id
            or self.document_id
            or self.seal_id
            or self.usage_id
        )

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object (the fields that are set, and the version)."""
        body: dict[str, Any] = {"v": ENTRY_VERSION, "kind": self.kind.value}
        body["time"] = format_time(self.time)
        for name in _TEXT_FIELDS:
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        return body

    def to_bytes(self) -> bytes:
        """The canonical bytes the log stores and hashes."""
        return canonical_json(self.to_json())

    @classmethod
    def from_bytes(cls, data: bytes) -> LogEntry:
        """Read an entry's canonical bytes; ``LogFormatError`` for anything else."""
        try:
            body = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise LogFormatError("A log entry is UTF-8 JSON; these bytes are not.") from None
        if not isinstance(body, dict):
            raise LogFormatError("A log entry is a JSON object.")
        if body.get("v") != ENTRY_VERSION:
            raise LogFormatError(f"This log entry's version {body.get('v')!r} is not known.")
        unknown = set(body) - {"v", "kind", "time", *_TEXT_FIELDS}
        if unknown:
            raise LogFormatError(f"A log entry has unknown fields: {', '.join(sorted(unknown))}.")
        try:
            time = datetime.fromisoformat(body["time"])
            values = {n: body[n] for n in _TEXT_FIELDS if n in body}
            entry = cls(kind=LogEntryKind(body["kind"]), time=time, **values)
        except (KeyError, TypeError, ValueError) as exc:
            raise LogFormatError(f"A log entry is not valid: {exc}") from None
        if entry.to_bytes() != data:
            raise LogFormatError("The log entry is not in canonical form.")
        return entry

    # --- factories for the registry's use cases ----------------------------------------

    @classmethod
    def certificate_issued(
        cls, certificate: Certificate, *, department_code: str, seal_serial: str | None = None
    ) -> LogEntry:
        """The entry for a certificate just issued (call after its row is filled in)."""
        return cls(
            kind=LogEntryKind.CERTIFICATE_ISSUE,
            time=_flushed(certificate.issued_at, "certificate"),
            department=department_code,
            certificate_id=certificate.id,
            certificate_number=certificate.number,
            certificate_type=certificate.type_code,
            seal_id=certificate.seal_id,
            seal_serial=seal_serial,
            pdf_sha256=certificate.pdf_sha256,
            signed_digest=certificate.signed_digest,
            status=_flushed(certificate.status, "certificate"),
            supersedes_id=certificate.supersedes_id,
        )

    @classmethod
    def certificate_status_changed(
        cls,
        certificate: Certificate,
        *,
        department_code: str,
        previous_status: str | None,
        reason: str | None,
        time: datetime,
    ) -> LogEntry:
        """The entry for a certificate's status change (revoke, suspend, reinstate, …).

        The log is public and permanent: it keeps the reason only by its kind (an RFC 5280
        name such as ``keyCompromise``), since a department's free text may name a person.
        """
        return cls(
            kind=LogEntryKind.CERTIFICATE_STATUS,
            time=time,
            department=department_code,
            certificate_id=certificate.id,
            certificate_number=certificate.number,
            certificate_type=certificate.type_code,
            status=certificate.status,
            previous_status=previous_status,
            reason=reason_kind(reason).code if reason else None,
        )

    @classmethod
    def seal_created(cls, seal: SealRow, *, department_code: str) -> LogEntry:
        """The entry for a new seal; a seal that replaces another is a ``key.rotate``."""
        return cls(
            kind=LogEntryKind.KEY_ROTATE if seal.replaces_id else LogEntryKind.SEAL_CREATE,
            time=_flushed(seal.created_at, "seal"),
            department=department_code,
            seal_id=seal.id,
            replaces_seal_id=seal.replaces_id,
            seal_serial=seal.serial_number,
            key_sha256=spki_sha256(seal.certificate_der),
        )

    @classmethod
    def seal_revoked(cls, seal: SealRow, *, department_code: str, time: datetime) -> LogEntry:
        """The entry for a seal's revocation."""
        return cls(
            kind=LogEntryKind.SEAL_REVOKE,
            time=seal.revoked_at or time,
            department=department_code,
            seal_id=seal.id,
            seal_serial=seal.serial_number,
            reason=seal.revocation_reason or None,
        )

    @classmethod
    def document_sealed(cls, document: SealedDocument, *, department_code: str) -> LogEntry:
        """The entry for a PDF sealed on request."""
        return cls(
            kind=LogEntryKind.DOCUMENT_SEAL,
            time=_flushed(document.created_at, "document"),
            department=department_code,
            document_id=document.id,
            seal_id=document.seal_id,
            pdf_sha256=document.pdf_sha256,
            signed_digest=document.signed_digest,
        )

    @classmethod
    def number_voided(
        cls, *, department_code: str, number: str, type_code: str, reason: str, time: datetime
    ) -> LogEntry:
        """The entry for a licence number allocated but never issued: the number stays
        accounted for, and is never handed out again. ``reason`` is the service's own words
        (which step failed), never a request's data."""
        return cls(
            kind=LogEntryKind.NUMBER_VOID,
            time=time,
            department=department_code,
            certificate_number=number,
            certificate_type=type_code,
            reason=reason,
        )

    @classmethod
    def envelope_step(
        cls, document: SealedDocument, *, envelope_id: str, step: int, department_code: str
    ) -> LogEntry:
        """The entry for a party's seal on an envelope: which envelope, which step, which
        party (its credit code) and the revision its seal made."""
        return cls(
            kind=LogEntryKind.ENVELOPE_STEP,
            time=_flushed(document.created_at, "document"),
            department=department_code,
            envelope_id=envelope_id,
            step=str(step),
            document_id=document.id,
            pdf_sha256=document.pdf_sha256,
        )

    @classmethod
    def envelope_completed(
        cls,
        document: SealedDocument,
        *,
        envelope_id: str,
        department_code: str,
        licence_id: str | None,
        time: datetime,
    ) -> LogEntry:
        """The entry for an envelope's completion: the initiator, the final (timestamped)
        revision, and the licence the completion issued, if any."""
        return cls(
            kind=LogEntryKind.ENVELOPE_COMPLETE,
            time=time,
            department=department_code,
            envelope_id=envelope_id,
            document_id=document.id,
            pdf_sha256=document.pdf_sha256,
            certificate_id=licence_id,
        )


def _flushed(value: _T | None, what: str) -> _T:
    """A column the database default fills in; ``None`` means the row was not flushed yet."""
    if value is None:
        raise ValueError(
            f"The {what} row is not flushed yet (its defaults are unset); call "
            "session.flush() before making its log entry."
        )
    return value


_TEXT_FIELDS = tuple(f.name for f in fields(LogEntry) if f.name not in ("kind", "time"))


def canonical_json(value: Any) -> bytes:
    """Canonical JSON: UTF-8, sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
