"""One-time codes (RFC 6238 TOTP) for the supervisors' second factor, and their secrets at
rest.

The codes are those every authenticator app makes: HMAC-SHA-1, 30-second steps, 6 digits,
computed by pyca/cryptography's ``TOTP``. A code of the step before or after the current one
is accepted too (a phone's clock drifts, a person types slowly), and each step's code is
accepted once: the caller keeps the last step used and passes it back.

The secret is stored encrypted (AES-256-GCM under a key derived from ``ECONTRACT_SECRET_KEY``
with HKDF), so that a copy of the registry alone makes no codes.
"""

from __future__ import annotations

import base64
import hmac
import os
from datetime import datetime
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA1, SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from econtract.errors import EContractError

#: Seconds per time step, digits per code (what authenticator apps assume).
STEP_SECONDS = 30
DIGITS = 6
#: Steps either side of the current one whose codes are accepted.
DRIFT_STEPS = 1
#: Bytes of a new secret (160 bits, RFC 4226's recommendation for HMAC-SHA-1).
SECRET_BYTES = 20

_ENCRYPTED = "aesgcm"


def new_secret() -> bytes:
    """A new random secret."""
    return os.urandom(SECRET_BYTES)


def secret_text(secret: bytes) -> str:
    """The secret as a person types it into an authenticator app: base32, no padding."""
    return base64.b32encode(secret).decode("ascii").rstrip("=")


def provisioning_uri(secret: bytes, *, account: str, issuer: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (from a QR code or pasted)."""
    label = quote(f"{issuer}:{account}", safe="")
    query = urlencode(
        {
            "secret": secret_text(secret),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": DIGITS,
            "period": STEP_SECONDS,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{query}"


def step_of(at: datetime) -> int:
    """The time step ``at`` falls in."""
    return int(at.timestamp()) // STEP_SECONDS


def _totp(secret: bytes, digits: int) -> TOTP:
    # HMAC-SHA-1 is what authenticator apps compute (RFC 6238's default); HMAC does not rest
    # on SHA-1's collision resistance.
    return TOTP(secret, digits, SHA1(), STEP_SECONDS, enforce_key_length=False)  # noqa: S303


def code_at(secret: bytes, at: datetime, *, digits: int = DIGITS) -> str:
    """The code of ``secret`` for the step of ``at``."""
    return _totp(secret, digits).generate(int(at.timestamp())).decode("ascii")


def accepted_step(secret: bytes, code: str, *, at: datetime, last_step: int | None) -> int | None:
    """The step whose code ``code`` is, within the drift around ``at`` and later than
    ``last_step``; ``None`` when there is none (a wrong code, or one used already)."""
    code = code.strip()
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret, DIGITS)
    now = step_of(at)
    found = None
    # Every candidate is compared, in constant time, whatever matched before.
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        expected = totp.generate(step * STEP_SECONDS)
        if hmac.compare_digest(expected, code.encode("ascii")) and found is None:
            found = step
    if found is None or (last_step is not None and found <= last_step):
        return None
    return found


class SecretUnreadableError(EContractError):
    """A stored one-time-code secret does not decrypt (``ECONTRACT_SECRET_KEY`` changed)."""

    code = "totp-secret-unreadable"
    title = "A one-time-code secret cannot be read with the configured secret key."


def _key(server_secret: bytes) -> bytes:
    return HKDF(
        algorithm=SHA256(), length=32, salt=None, info=b"econtract console totp secret"
    ).derive(server_secret)


def seal_secret(secret: bytes, *, server_secret: bytes, user_name: str) -> str:
    """``secret`` encrypted for the registry, bound to its person's name."""
    nonce = os.urandom(12)
    sealed = AESGCM(_key(server_secret)).encrypt(nonce, secret, user_name.encode("utf-8"))
    return f"{_ENCRYPTED}${nonce.hex()}${sealed.hex()}"


def open_secret(stored: str, *, server_secret: bytes, user_name: str) -> bytes:
    """The secret :func:`seal_secret` stored; :class:`SecretUnreadableError` otherwise."""
    try:
        scheme, nonce_hex, sealed_hex = stored.split("$")
        if scheme != _ENCRYPTED:
            raise ValueError(scheme)
        return AESGCM(_key(server_secret)).decrypt(
            bytes.fromhex(nonce_hex), bytes.fromhex(sealed_hex), user_name.encode("utf-8")
        )
    except (ValueError, InvalidTag):
        raise SecretUnreadableError(
            f"The one-time-code secret of {user_name!r} cannot be decrypted."
        ) from None
