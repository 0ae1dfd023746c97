"""Tokens signed by the service's token key (ES256): compact JWS access tokens, and the raw
signatures of the binary QR tokens.

The token key is a key-store handle (it may live in an HSM), so signing is done here from
the handle rather than by PyJWT, which wants the private key itself. JWS verification is
PyJWT's, with a fixed algorithm list and required claims (RFC 8725).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from econtract.errors import EContractError
from keys.handles import KeyAlgorithm, KeyHandle

ALGORITHM = "ES256"


class TokenError(EContractError):
    """A token is malformed, forged, expired or meant for something else."""

    code = "invalid-token"
    title = "The token is malformed, forged, expired or meant for something else."


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _coordinate(value: int) -> str:
    return b64url(value.to_bytes(32, "big"))


@dataclass(frozen=True)
class TokenKey:
    """The token-signing key: its handle, public JWK and key id."""

    handle: KeyHandle
    """Signs; the private key stays in the key store."""
    public_key: ec.EllipticCurvePublicKey
    """Verifies."""
    kid: str
    """RFC 7638 thumbprint of the public JWK."""

    @classmethod
    def from_handle(cls, handle: KeyHandle) -> TokenKey:
        """Wrap a P-256 handle; any other key is refused."""
        public = handle.public_key()
        if handle.algorithm is not KeyAlgorithm.EC_P256 or not isinstance(
            public, ec.EllipticCurvePublicKey
        ):
            raise TokenError("The token key must be an ECDSA P-256 key (ES256).", code="config")
        numbers = public.public_numbers()
        thumbprint_input = json.dumps(
            {"crv": "P-256", "kty": "EC", "x": _coordinate(numbers.x), "y": _coordinate(numbers.y)},
            separators=(",", ":"),
            sort_keys=True,
        ).encode()
        kid = b64url(hashlib.sha256(thumbprint_input).digest())
        return cls(handle=handle, public_key=public, kid=kid)

    def jwk(self) -> dict[str, str]:
        """The public key as a JWK (for /.well-known/jwks.json)."""
        numbers = self.public_key.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": _coordinate(numbers.x),
            "y": _coordinate(numbers.y),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }

    def sign(self, claims: dict[str, Any], *, typ: str) -> str:
        """A compact JWS of ``claims`` with header ``{alg, kid, typ}``."""
        header = {"alg": ALGORITHM, "kid": self.kid, "typ": typ}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
        )
        return signing_input + "." + b64url(self.sign_raw(signing_input.encode("ascii")))

    def sign_raw(self, message: bytes) -> bytes:
        """An ES256 signature of ``message`` as JWS writes it: ``r`` and ``s``, 32 bytes each."""
        r, s = decode_dss_signature(self.handle.sign(message, "sha256"))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify_raw(self, message: bytes, signature: bytes) -> None:
        """Check a :meth:`sign_raw` signature; ``TokenError`` when it does not verify."""
        verify_raw_signature(self.public_key, message, signature)

    def verify(
        self,
        token: str,
        *,
        typ: str,
        audience: str | None = None,
        issuer: str | None = None,
        required: tuple[str, ...] = ("exp", "iat", "iss", "aud"),
        leeway: float = 0,
    ) -> dict[str, Any]:
        """The claims of a token this key signed; ``TokenError`` for anything else."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("The token is not a well-formed JWS.") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError(
                f"Tokens are signed with {ALGORITHM}; this one says {header.get('alg')!r}."
            )
        if header.get("kid") != self.kid:
            raise TokenError("The token names an unknown key id.")
        if header.get("typ") != typ:
            raise TokenError(f"The token is not a {typ} token.")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=self.public_key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=issuer,
                leeway=leeway,
                options={
                    "require": list(required),
                    "verify_aud": audience is not None,
                    "verify_iss": issuer is not None,
                },
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("The token has expired.") from None
        except jwt.InvalidAudienceError:
            raise TokenError("The token is meant for another audience.") from None
        except jwt.InvalidIssuerError:
            raise TokenError("The token was issued by someone else.") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"The token lacks the {exc.claim!r} claim.") from None
        except jwt.PyJWTError:
            raise TokenError("The token's signature does not verify.") from None
        return claims


def verify_raw_signature(
    public_key: ec.EllipticCurvePublicKey, message: bytes, signature: bytes
) -> None:
    """Check a 64-byte ES256 signature (``r`` then ``s``) of ``message`` with a public key
    alone, as anyone holding ``/.well-known/jwks.json`` can; ``TokenError`` if it fails."""
    if len(signature) != 64:
        raise TokenError("An ES256 signature is 64 bytes.")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public_key.verify(der, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise TokenError("The token's signature does not verify.") from None
