"""The registry's view of a file: was it issued here, by which seal, and what is its status now.

The econtract layer implements :class:`RegistryView` against the database; verification only
reads through it. :class:`InMemoryRegistry` serves tests and offline tools.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

RegistryStatus = Literal["valid", "revoked", "suspended", "superseded", "expired"]
"""The status of an issued certificate or document."""
RecordKind = Literal["certificate", "document"]
"""What was issued: a licence (certificate) or a sealed document."""
MatchedBy = Literal["file", "signed-bytes"]
"""How the file was found: by its whole-file SHA-256, or by a seal's signed-bytes digest."""

_STATUSES = ("valid", "revoked", "suspended", "superseded", "expired")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def certificate_fingerprint(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint (lowercase hex) of a certificate's DER encoding."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@dataclass(frozen=True, kw_only=True)
class RegistryMatch:
    """One issued certificate or document that the file was found to be."""

    record_id: str
    """The certificate's or document's id in the registry."""
    kind: RecordKind
    """``certificate`` (a licence) or ``document``."""
    status: RegistryStatus
    """Its status now."""
    seal_fingerprint: str
    """SHA-256 (hex) of the seal certificate recorded when it was issued."""
    matched_by: MatchedBy
    """How it was found."""
    number: str | None = None
    """The licence or document number people read, if any."""
    holder: str | None = None
    """The licence's holder as printed on it (a name the file itself shows), if any."""
    status_changed_at: str | None = None
    """When the status last changed (ISO 8601), if it did."""

    def __post_init__(self) -> None:
        if not self.record_id:
            raise ValueError("A registry match needs the record's id.")
        if self.kind not in ("certificate", "document"):
            raise ValueError(f"A record is a certificate or a document, not {self.kind!r}.")
        if self.status not in _STATUSES:
            raise ValueError(f"Unknown registry status {self.status!r}.")
        if self.matched_by not in ("file", "signed-bytes"):
            raise ValueError(f"A match is by 'file' or 'signed-bytes', not {self.matched_by!r}.")
        if _SHA256_HEX.fullmatch(self.seal_fingerprint) is None:
            raise ValueError("The seal fingerprint is a lowercase hex SHA-256.")


class RegistryView(Protocol):
    """Read access to the registry, as verification needs it."""

    def lookup(self, pdf_sha256: str, signed_digests: list[str]) -> RegistryMatch | None:
        """The record whose issued file has ``pdf_sha256``, or else whose seal signed one of
        ``signed_digests`` (SHA-256 hex of a signature's signed bytes); ``None`` when the file
        was not issued here."""
        ...

    def knows_seal(self, certificate_sha256: str) -> bool:
        """Whether the certificate with this SHA-256 (hex) is one of this service's seals.

        A file sealed by one of them that :meth:`lookup` does not find was sealed here but
        never registered (a crash before the registry committed, a key used outside the
        service): it is never VALID."""
        ...


@dataclass(frozen=True, kw_only=True)
class IssuedRecord:
    """What the in-memory registry keeps per issued file."""

    record_id: str
    """The record's id."""
    kind: RecordKind
    """``certificate`` or ``document``."""
    pdf_sha256: str
    """SHA-256 of the issued file."""
    signed_digest: str
    """SHA-256 of the bytes the issuing seal signed."""
    seal_fingerprint: str
    """SHA-256 of the issuing seal's certificate."""
    status: RegistryStatus = "valid"
    """Its status."""
    number: str | None = None
    """The number people read."""


@dataclass
class InMemoryRegistry:
    """A :class:`RegistryView` over a list held in memory (tests, offline tools)."""

    records: list[IssuedRecord] = field(default_factory=list)
    """Issued files, oldest first."""
    seals: set[str] = field(default_factory=set)
    """SHA-256 of this service's seal certificates, besides those of ``records``."""

    def add(self, record: IssuedRecord) -> None:
        """Record an issued file."""
        self.records.append(record)

    def set_status(self, record_id: str, status: RegistryStatus) -> None:
        """Change a record's status (revoke, suspend, supersede, expire, reinstate)."""
        for index, record in enumerate(self.records):
            if record.record_id == record_id:
                self.records[index] = IssuedRecord(**{**record.__dict__, "status": status})
                return
        raise KeyError(record_id)

    def lookup(self, pdf_sha256: str, signed_digests: list[str]) -> RegistryMatch | None:
        """See :meth:`RegistryView.lookup`; a whole-file match wins over a signed-bytes match."""
        for record in self.records:
            if record.pdf_sha256 == pdf_sha256:
                return self._match(record, "file")
        wanted = set(signed_digests)
        for record in self.records:
            if record.signed_digest in wanted:
                return self._match(record, "signed-bytes")
        return None

    def knows_seal(self, certificate_sha256: str) -> bool:
        """See :meth:`RegistryView.knows_seal`: a seal of ``seals`` or of a record."""
        return certificate_sha256 in self.seals or any(
            record.seal_fingerprint == certificate_sha256 for record in self.records
        )

    @staticmethod
    def _match(record: IssuedRecord, matched_by: MatchedBy) -> RegistryMatch:
        return RegistryMatch(
            record_id=record.record_id,
            kind=record.kind,
            status=record.status,
            seal_fingerprint=record.seal_fingerprint,
            matched_by=matched_by,
            number=record.number,
        )
