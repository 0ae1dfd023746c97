"""Checks on free text that reaches certificates, seals and the registry."""

from __future__ import annotations

import unicodedata

from econtract.errors import InvalidInputError

#: Bidirectional controls let text display differently from what is stored (Trojan Source).
_BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)


def clean_text(value: str, *, field: str, max_length: int, allow_newlines: bool = False) -> str:
    """Return ``value`` NFC-normalised and stripped; refuse empty, over-long or control text."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InvalidInputError(f"{field} must not be empty.", errors=[(f"/{field}", "empty")])
    if len(text) > max_length:
        raise InvalidInputError(
            f"{field} has {len(text)} characters; at most {max_length} are allowed.",
            errors=[(f"/{field}", f"longer than {max_length} characters")],
        )
    for ch in text:
        if ch in _BIDI_CONTROLS:
            raise InvalidInputError(
                f"{field} contains a bidirectional control character U+{ord(ch):04X}.",
                errors=[(f"/{field}", "bidirectional control character")],
            )
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and not (
            allow_newlines and ch == "\n"
        ):
            raise InvalidInputError(
                f"{field} contains the control character U+{ord(ch):04X}.",
                errors=[(f"/{field}", "control character")],
            )
    return text
