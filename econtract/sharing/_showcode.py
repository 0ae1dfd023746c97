"""The 亮证码: a short code a holder shows at a window (as text or a QR code) so that a clerk's
app finds the licences the holder consented to.

Twelve characters of Crockford's base32 (no I, L, O or U: nothing to misread), 60 random
bits, written in three groups of four (``7KQ2-M9XD-4RTA``). A clerk may type it in either
case, with or without the dashes. Only its SHA-256 is stored; it expires after
``show_code_seconds`` and serves once, so a photographed code is worth little.
"""

from __future__ import annotations

import hashlib
import secrets

from econtract.errors import InvalidInputError

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base32 alphabet."""
LENGTH = 12
"""Characters in a 亮证码, dashes aside."""


def new_show_code() -> str:
    """A fresh 亮证码, grouped for reading: ``XXXX-XXXX-XXXX``."""
    raw = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, LENGTH, 4))


def show_code_digest(code: str) -> str:
    """The SHA-256 (hex) under which a 亮证码 is stored, of its normal form (upper case, no
    dashes or spaces); :class:`InvalidInputError` for a code of another shape."""
    normal = code.upper().replace("-", "").replace(" ", "")
    if len(normal) != LENGTH or any(ch not in ALPHABET for ch in normal):
        raise InvalidInputError(
            f"A 亮证码 has {LENGTH} characters of 0-9 and A-Z without I, L, O and U, "
            "grouped by dashes; this one is not of that shape.",
            errors=[("/code", "not a 亮证码")],
        )
    return hashlib.sha256(normal.encode("ascii")).hexdigest()
