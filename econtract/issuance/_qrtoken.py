"""The QR token: a short signed statement, printed on a licence, of which licence it is.

Version 2, printed on every licence issued now, is 85 bytes written in base64url without
padding (114 characters), so that the URL stays short and its QR code coarse enough to scan
from a print or a 100 dpi scan:

==========  ======  ============================================================
bytes       length  content
==========  ======  ============================================================
0           1       the version, ``0x02``
1–16        16      the certificate id: the 128 random bits after ``crt_``
17–20       4       the issue time, Unix seconds, unsigned big-endian
21–84       64      ES256 signature (``r`` then ``s``, as JWS writes it) of
                    ``b"econtract-qr/2"`` followed by bytes 0–20
==========  ======  ============================================================

Anyone can check it offline with the key published at ``/.well-known/jwks.json``, as EU
digital COVID certificates are checked with their COSE signatures; the service checks it
at ``GET /v/{token}`` and adds the registry's number, holder and current status. The
context string keeps a signature over these bytes from ever standing for an access token
signed by the same key.

Version 1, printed before, is a compact JWS (ES256, key id, ``typ`` ``econtract-qr+jwt``,
claim ``v: 1``) that also carried the number, type, a digest of the fields and the
validity; those tokens are still read and checked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from econtract.tokens import TokenError, TokenKey, b64url

#: The JWS ``typ`` header of version-1 tokens.
TOKEN_TYPE = "econtract-qr+jwt"  # noqa: S105 - a media type, not a secret
#: The version claim of JWS tokens.
JWS_VERSION = 1
#: The first byte of a compact token: change it when the layout changes.
COMPACT_VERSION = 2
#: What a compact token's signature covers before the token's own bytes.
COMPACT_CONTEXT = b"econtract-qr/2"

_PAYLOAD = struct.Struct(">B16sI")
_COMPACT_LENGTH = _PAYLOAD.size + 64
_COMPACT_TEXT = re.compile(r"[A-Za-z0-9_-]{114}")
_CERTIFICATE_ID = re.compile(r"crt_([A-Za-z0-9_-]{22})")


def fields_digest(fields: dict[str, Any]) -> str:
    """A short digest of a licence's fields (canonical JSON, SHA-256, first 16 bytes)."""
    canonical = json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(canonical.encode()).digest()[:16])


@dataclass(frozen=True, kw_only=True)
class QRClaims:
    """What a QR token states.

    A compact (version 2) token states the id and the issue time; the other claims were
    carried by version-1 tokens only, and are ``None`` when read from a compact one.
    """

    certificate_id: str
    """The certificate's public id."""
    issued_at: datetime
    """When the licence was issued (a compact token keeps whole seconds)."""
    number: str | None = None
    """The licence number."""
    type_code: str | None = None
    """The certificate type."""
    fields_digest: str | None = None
    """:func:`fields_digest` of the fields at issuance."""
    valid_from: date | None = None
    """First day of validity."""
    valid_until: date | None = None
    """Last day of validity, ``None`` for an open-ended licence (or a compact token)."""
    version: int = COMPACT_VERSION
    """The token format the claims were read from."""

    def to_claims(self) -> dict[str, Any]:
        """The version-1 JWS payload (short names kept the QR code small)."""
        if self.number is None or self.type_code is None or self.fields_digest is None:
            raise ValueError("A version-1 QR token needs the number, type and fields digest.")
        if self.valid_from is None:
            raise ValueError("A version-1 QR token needs the first day of validity.")
        claims: dict[str, Any] = {
            "v": JWS_VERSION,
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


def _id_bytes(certificate_id: str) -> bytes:
    match = _CERTIFICATE_ID.fullmatch(certificate_id)
    if match is None:
        raise ValueError(f"{certificate_id!r} is not a certificate id (crt_ and 128 bits).")
    raw = base64.urlsafe_b64decode(match.group(1) + "==")
    if b64url(raw) != match.group(1):
        raise ValueError(f"{certificate_id!r} is not a canonical certificate id.")
    return raw


def make_qr_token(key: TokenKey, claims: QRClaims) -> str:
    """The compact (version 2) QR token of ``claims``: their id and issue time, signed."""
    seconds = int(claims.issued_at.timestamp())
    payload = _PAYLOAD.pack(COMPACT_VERSION, _id_bytes(claims.certificate_id), seconds)
    return b64url(payload + key.sign_raw(COMPACT_CONTEXT + payload))


def make_jws_qr_token(key: TokenKey, claims: QRClaims) -> str:
    """A version-1 (JWS) QR token, as licences issued before compact tokens carry."""
    return key.sign(claims.to_claims(), typ=TOKEN_TYPE)


def read_qr_token(key: TokenKey, token: str) -> QRClaims:
    """Check a QR token of either version (signature, key, type, version); ``TokenError``
    if any check fails."""
    if len(token) > 2048:
        raise TokenError("The token is too long to be a QR token.")
    if "." in token:
        return _read_jws(key, token)
    return _read_compact(key, token)


def _read_compact(key: TokenKey, token: str) -> QRClaims:
    if _COMPACT_TEXT.fullmatch(token) is None:
        raise TokenError("The token is not a QR token.")
    try:
        raw = base64.urlsafe_b64decode(token + "==")
    except (binascii.Error, ValueError):
        raise TokenError("The token is not a QR token.") from None
    # One spelling per token: base64url's spare bits must be zero.
    if len(raw) != _COMPACT_LENGTH or b64url(raw) != token:
        raise TokenError("The token is not a QR token.")
    payload, signature = raw[: _PAYLOAD.size], raw[_PAYLOAD.size :]
    version, id_bytes, seconds = _PAYLOAD.unpack(payload)
    if version != COMPACT_VERSION:
        raise TokenError(f"Unknown QR token version {version}.")
    key.verify_raw(COMPACT_CONTEXT + payload, signature)
    return QRClaims(
        certificate_id="crt_" + b64url(id_bytes),
        issued_at=datetime.fromtimestamp(seconds, UTC),
    )


def _read_jws(key: TokenKey, token: str) -> QRClaims:
    claims = key.verify(token, typ=TOKEN_TYPE, required=("iat",))
    if claims.get("v") != JWS_VERSION:
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
            version=JWS_VERSION,
        )
    except (KeyError, TypeError, ValueError):
        raise TokenError("The QR token lacks a claim or has a malformed one.") from None
