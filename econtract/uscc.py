"""Unified social credit codes (统一社会信用代码), GB 32100-2015.

Eighteen characters: registration authority (1), organisation category (1), administrative
division (6, digits), organisation code (9, GB 11714 with its own check character) and the
check character (1) over the first seventeen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The 31 characters of the code; I, O, Z, S and V are excluded by the standard.
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_VALUES = {c: i for i, c in enumerate(ALPHABET)}
_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_ORG_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)
_SHAPE = re.compile(rf"^[{ALPHABET}]{{2}}\d{{6}}[0-9A-Z]{{8}}[0-9X][{ALPHABET}]$")


@dataclass(frozen=True)
class WrongCheckCharacter:
    """A check character of a credit code that its standard computes otherwise."""

    position: int
    """The character's position in the code, counting from 1 (17 or 18)."""
    given: str
    """The character the code has there."""
    expected: str
    """The character the standard computes."""
    standard: str
    """The standard that computes it: ``GB 32100`` (the code's) or ``GB 11714`` (the
    organisation code's, positions 9 to 17)."""


class InvalidCreditCodeError(ValueError):
    """The text is not a well-formed unified social credit code; the message says why.

    ``wrong`` lists every check character that is wrong, so that one answer names them all.
    """

    def __init__(self, message: str, *, wrong: tuple[WrongCheckCharacter, ...] = ()) -> None:
        super().__init__(message)
        self.wrong = wrong


def check_character(first17: str) -> str:
    """The GB 32100 check character of the first seventeen characters."""
    total = sum(_VALUES[c] * w for c, w in zip(first17, _WEIGHTS, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


def organisation_check_character(body8: str) -> str:
    """The GB 11714 check character of an organisation code's first eight characters."""
    total = sum(int(c, 36) * w for c, w in zip(body8, _ORG_WEIGHTS, strict=True))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def validate_credit_code(code: str) -> str:
    """Return ``code`` when it is a valid unified social credit code; raise otherwise."""
    if len(code) != 18:
        raise InvalidCreditCodeError(
            f"A unified social credit code has 18 characters; {code!r} has {len(code)}."
        )
    if not _SHAPE.match(code):
        raise InvalidCreditCodeError(
            f"{code!r} is not a unified social credit code: it uses characters outside "
            "GB 32100's alphabet or a non-numeric region."
        )
    # Both check characters are computed before either is judged: a typing error in the
    # organisation code usually breaks both, and the caller should hear of both at once.
    wrong: list[WrongCheckCharacter] = []
    expected = check_character(code[:17])
    if code[17] != expected:
        wrong.append(WrongCheckCharacter(18, code[17], expected, "GB 32100"))
    org_expected = organisation_check_character(code[8:16])
    if code[16] != org_expected:
        wrong.append(WrongCheckCharacter(17, code[16], org_expected, "GB 11714"))
    if wrong:
        described = [
            f"the wrong check character {w.given!r}; GB 32100 gives {w.expected!r}"
            if w.standard == "GB 32100"
            else f"a wrong organisation code check character {w.given!r} (position 17); "
            f"GB 11714 gives {w.expected!r}"
            for w in wrong
        ]
        raise InvalidCreditCodeError(
            f"{code!r} has " + ", and ".join(described) + ".", wrong=tuple(wrong)
        )
    return code


def is_valid_credit_code(code: str) -> bool:
    """Whether ``code`` is valid; prefer :func:`validate_credit_code` where the reason matters."""
    try:
        validate_credit_code(code)
    except InvalidCreditCodeError:
        return False
    return True
