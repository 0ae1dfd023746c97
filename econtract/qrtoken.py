"""The QR token: a compact signed statement of what a licence is, printed on the licence.

A JWS (ES256, key id, version marker) carrying the certificate id, number, type, a digest of
the licence's fields and its validity. Anyone can check it offline with the key published at
``/.well-known/jwks.json``; the service checks it at ``GET /v/{token}`` and adds the
registry's current status.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from econtract.tokens import TokenError, TokenKey, b64url

#: The token's ``typ`` header and version claim: change them when the claims change.
TOKEN_TYPE = "econtract-qr+jwt"  # noqa: S105 - a media type, not a secret
VERSION = 1


def fields_digest(fields: dict[str, Any]) -> str:
    """A short digest of a licence's fields (canonical JSON, SHA-256, first 16 bytes)."""
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest()[:16])


@dataclass(frozen=True, kw_only=True)
class QRClaims:
    """What a QR token states."""

    certificate_id: str
    """The certificate's public id."""
    number: str
    """The licence number."""
    type_code: str
    """The certificate type."""
    fields_digest: str
    """:func:`fields_digest` of the fields at issuance."""
    valid_from: date
    """First day of validity."""
    valid_until: date | None
    """Last day of validity, ``None`` for an open-ended licence."""
    issued_at: datetime
    """When the licence was issued."""

    def to_claims(self) -> dict[str, Any]:
        """The JWS payload (short names keep the QR code small)."""
        claims: dict[str, Any] = {
            "v": VERSION,
            "id": self.certificate_id,
            "n": self.number,
            "t": self.type_code,
            "fd": self.fields_digest,
            "vf": self.valid_from.isoformat(),
            "iat": int(self.issued_at.timestamp()),
        }
        if self.valid_until is not None:
            claims["vu"] = self.valid_until.isoformat()
        return claims


def make_qr_token(key: TokenKey, claims: QRClaims) -> str:
    """Sign ``claims`` as a QR token."""
    return key.sign(claims.to_claims(), typ=TOKEN_TYPE)


def read_qr_token(key: TokenKey, token: str) -> QRClaims:
    """Check a QR token's signature, key id, type and version; ``TokenError`` if any fails."""
    if len(token) > 2048:
        raise TokenError("The token is too long to be a QR token.")
    claims = key.verify(token, typ=TOKEN_TYPE, required=("iat",))
    if claims.get("v") != VERSION:
        raise TokenError(f"Unknown QR token version {claims.get('v')!r}.")
    try:
        return QRClaims(
            certificate_id=str(claims["id"]),
            number=str(claims["n"]),
            type_code=str(claims["t"]),
            fields_digest=str(claims["fd"]),
            valid_from=date.fromisoformat(claims["vf"]),
            valid_until=date.fromisoformat(claims["vu"]) if "vu" in claims else None,
            issued_at=datetime.fromtimestamp(int(claims["iat"]), UTC),
        )
    except (KeyError, TypeError, ValueError):
        raise TokenError("The QR token lacks a claim or has a malformed one.") from None
