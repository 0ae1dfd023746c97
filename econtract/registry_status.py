"""The public status of one exact file: what anyone holding the file may learn from the registry.

A relying party that checks a licence offline (``econtract verify --trust-root``) proves the
seal but not whether the issuer has since revoked or suspended it. This query answers that for
the file in hand, found the way verification finds it (:class:`DatabaseRegistryView`): by the
whole file's SHA-256, or by the digest of the bytes one of its seals signed.

It answers what the file itself cannot say, and nothing personal: the record's kind, its
number, its status, when the status last changed and the kind of reason given (never the
department's free text, never the holder), and the fingerprint of the seal recorded at
issuance (public already: the seal's certificate is in the file), so that a verifier can tell
the file's seal from another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from econtract.errors import NotFoundError, RegistryError
from econtract.models import StatusEvent
from econtract.reasons import reason_kind
from econtract.services import Services
from econtract.verification import DatabaseRegistryView
from verify.registry import MatchedBy, RecordKind, RegistryStatus

#: The version marker of the JSON answer.
FORMAT = "econtract-status/1"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class MalformedDigestError(RegistryError):
    """The digest asked about is not a SHA-256 in hexadecimal, or not exactly one was given
    (a malformed request: HTTP 400)."""

    code = "malformed-digest"
    title = "The digest is not a SHA-256 in hexadecimal."


@dataclass(frozen=True, kw_only=True)
class PublicStatus:
    """A registry record's status, as anyone holding its file may read it."""

    kind: RecordKind
    """``certificate`` (a licence) or ``document`` (a sealed document)."""
    number: str | None
    """The number people read (licences only)."""
    status: RegistryStatus
    """valid, revoked, suspended, superseded or expired."""
    status_changed_at: str | None
    """When the status last changed (ISO 8601), if it ever did."""
    reason_kind: str | None
    """The kind of reason for a revocation, suspension or replacement (``keyCompromise``,
    ``privilegeWithdrawn``, ``other`` …), never its text; ``None`` for a valid or expired
    record."""
    seal_sha256: str
    """SHA-256 (hex) of the seal certificate recorded at issuance."""
    matched_by: MatchedBy
    """``file`` (the whole file's SHA-256) or ``signed-bytes`` (a seal's signed digest)."""

    def to_json(self) -> dict[str, Any]:
        """The answer of ``GET /v1/status``."""
        return {
            "format": FORMAT,
            "kind": self.kind,
            "number": self.number,
            "status": self.status,
            "status_changed_at": self.status_changed_at,
            "reason_kind": self.reason_kind,
            "seal_sha256": self.seal_sha256,
            "matched_by": self.matched_by,
        }


def parse_digest(value: str, *, name: str) -> str:
    """``value`` as a lowercase hex SHA-256, or :class:`MalformedDigestError` naming ``name``."""
    digest = value.strip().lower()
    if _SHA256_HEX.fullmatch(digest) is None:
        raise MalformedDigestError(f"{name} must be a SHA-256 as 64 hexadecimal characters.")
    return digest


@dataclass(frozen=True, kw_only=True)
class PublicSeal:
    """One of the service's seal certificates, known by its SHA-256: the answer that tells a
    verifier that a file sealed by it and not found was sealed here but never registered."""

    seal_sha256: str
    """SHA-256 (hex) of the seal certificate."""

    def to_json(self) -> dict[str, Any]:
        """The answer of ``GET /v1/status?seal_sha256=``."""
        return {"format": FORMAT, "kind": "seal", "seal_sha256": self.seal_sha256}


def find_public_status(
    services: Services,
    *,
    sha256: str | None = None,
    signed_digest: str | None = None,
    seal_sha256: str | None = None,
) -> PublicStatus | PublicSeal:
    """The status of the file whose SHA-256 is ``sha256``, or of the file a seal of which
    signed bytes hashing to ``signed_digest``; or, for ``seal_sha256``, whether that seal
    certificate is one of the service's. Exactly one of the three is given.

    Raises :class:`MalformedDigestError` for a malformed digest (or none, or several), and
    :class:`NotFoundError` when the registry holds no such file or seal.
    """
    given = [v for v in (sha256, signed_digest, seal_sha256) if v is not None]
    if len(given) != 1:
        raise MalformedDigestError(
            "Give exactly one of sha256 (the file's), signed_digest (a seal's signed bytes) "
            "or seal_sha256 (a seal's certificate)."
        )
    view = DatabaseRegistryView(services)
    if seal_sha256 is not None:
        fingerprint = parse_digest(seal_sha256, name="seal_sha256")
        if not view.knows_seal(fingerprint):
            raise NotFoundError("No seal of this service has this certificate.")
        return PublicSeal(seal_sha256=fingerprint)
    if sha256 is not None:
        match = view.lookup(parse_digest(sha256, name="sha256"), [])
    else:
        assert signed_digest is not None
        match = view.lookup("", [parse_digest(signed_digest, name="signed_digest")])
    if match is None:
        raise NotFoundError("The registry holds no file with this digest.")
    reason: str | None = None
    # Only a withdrawal has a reason to tell; a valid record's last event is its issue (or
    # reinstatement), and an expired one simply ran out.
    if match.kind == "certificate" and match.status in ("revoked", "suspended", "superseded"):
        with services.sessions() as session:
            text = session.scalar(
                select(StatusEvent.reason)
                .where(StatusEvent.certificate_id == match.record_id)
                .order_by(StatusEvent.id.desc())
                .limit(1)
            )
        reason = reason_kind(text).code
    return PublicStatus(
        kind=match.kind,
        number=match.number,
        status=match.status,
        status_changed_at=match.status_changed_at,
        reason_kind=reason,
        seal_sha256=match.seal_fingerprint,
        matched_by=match.matched_by,
    )
