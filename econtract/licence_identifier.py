"""The licence identifier (证照标识) of GB/T 36904 and its ISO 7064 MOD 37,36 check character.

An identifier reads ``1.2.156.3005.2.{type code}.{issuer code}.{serial}.{version}.{check}``:

- the type code (证照类型代码): the 18-character unified social credit code of the authority
  that defines the licence type, then 3 digits it numbers its types with;
- the issuer code (发证机构代码): the issuing department's unified social credit code;
- the serial (证照编号): the licence number, in the characters ``0-9A-Z``;
- the version: 3 digits, ``001`` for a first issue, one more for each supersession;
- the check character over type code, issuer code, serial and version concatenated, by the
  hybrid system ISO 7064 MOD 37,36 (alphanumeric, M = 36, M + 1 = 37).

:class:`LicenceIdentifier` checks every part when it is made; :func:`parse` reads the text
form and names the first thing that is wrong. This module is pure: the migration that gives
existing certificates their identifiers uses it too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from econtract.uscc import InvalidCreditCodeError, validate_credit_code

PREFIX = "1.2.156.3005.2"
"""The object identifier arc of licence identifiers (GB/T 36904)."""

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_VALUES = {c: i for i, c in enumerate(_ALPHABET)}
_MODULUS = 36
_SERIAL = re.compile(r"^[0-9A-Z]{1,64}$")
_VERSION = re.compile(r"^\d{3}$")
_TYPE_NUMBER = re.compile(r"^\d{3}$")


class InvalidIdentifierError(ValueError):
    """The text or a part is not a well-formed licence identifier; the message says what.

    ``part`` names the part at fault: ``prefix``, ``type_code``, ``issuer_code``, ``serial``,
    ``version`` or ``check``.
    """

    def __init__(self, message: str, *, part: str) -> None:
        super().__init__(message)
        self.part = part


def check_character(text: str) -> str:
    """The ISO 7064 MOD 37,36 check character of ``text`` (characters ``0-9A-Z``).

    The hybrid system: start with P = M; for each character, S = (P + value) mod M, with
    M for 0, and P = 2S mod (M + 1); the check character makes (P + value) mod M equal 1.
    """
    product = _MODULUS
    for char in text:
        try:
            value = _VALUES[char]
        except KeyError:
            raise ValueError(f"{char!r} is not one of the characters 0-9 and A-Z.") from None
        total = (product + value) % _MODULUS or _MODULUS
        product = (total * 2) % (_MODULUS + 1)
    return _ALPHABET[(_MODULUS + 1 - product) % _MODULUS]


def _check_credit_code(code: str, *, part: str, what: str) -> None:
    try:
        validate_credit_code(code)
    except InvalidCreditCodeError as exc:
        raise InvalidIdentifierError(f"The {what} is not a credit code: {exc}", part=part) from None


@dataclass(frozen=True, kw_only=True)
class LicenceIdentifier:
    """A licence identifier (证照标识) whose every part has been checked.

    Made by :meth:`create` (which computes the check character) or :func:`parse`; the
    constructor raises :class:`InvalidIdentifierError` for any wrong part, the check
    character included.
    """

    type_code: str
    """The national type code: the defining authority's credit code and 3 digits (21)."""
    issuer_code: str
    """The issuing department's unified social credit code (18)."""
    serial: str
    """The licence number, in ``0-9A-Z``."""
    version: int
    """1 for a first issue, one more for each supersession (1 to 999)."""
    check: str
    """The ISO 7064 MOD 37,36 check character."""

    def __post_init__(self) -> None:
        if len(self.type_code) != 21:
            raise InvalidIdentifierError(
                f"A type code has 21 characters (a credit code and 3 digits); "
                f"{self.type_code!r} has {len(self.type_code)}.",
                part="type_code",
            )
        if not _TYPE_NUMBER.match(self.type_code[18:]):
            raise InvalidIdentifierError(
                f"A type code ends in 3 digits, not {self.type_code[18:]!r}.", part="type_code"
            )
        _check_credit_code(self.type_code[:18], part="type_code", what="type code's authority")
        _check_credit_code(self.issuer_code, part="issuer_code", what="issuer code")
        if not _SERIAL.match(self.serial):
            raise InvalidIdentifierError(
                f"A serial is 1 to 64 characters of 0-9 and A-Z, not {self.serial!r}.",
                part="serial",
            )
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise TypeError("A version is an int.")
        if not 1 <= self.version <= 999:
            raise InvalidIdentifierError(
                f"A version is 001 to 999, not {self.version}.", part="version"
            )
        expected = check_character(self._body)
        if self.check != expected:
            raise InvalidIdentifierError(
                f"The check character is {self.check!r}; ISO 7064 MOD 37,36 gives {expected!r}.",
                part="check",
            )

    @classmethod
    def create(
        cls, *, type_code: str, issuer_code: str, serial: str, version: int = 1
    ) -> LicenceIdentifier:
        """The identifier of these parts, with its check character computed."""
        body = f"{type_code}{issuer_code}{serial}{version:03d}"
        try:
            check = check_character(body)
        except ValueError:
            # A character outside 0-9A-Z: let the constructor name the part it is in.
            check = "?"
        return cls(
            type_code=type_code,
            issuer_code=issuer_code,
            serial=serial,
            version=version,
            check=check,
        )

    @property
    def _body(self) -> str:
        return f"{self.type_code}{self.issuer_code}{self.serial}{self.version:03d}"

    @property
    def version_text(self) -> str:
        """The version as the identifier writes it, 3 digits."""
        return f"{self.version:03d}"

    def __str__(self) -> str:
        return (
            f"{PREFIX}.{self.type_code}.{self.issuer_code}.{self.serial}."
            f"{self.version_text}.{self.check}"
        )


def parse(text: str) -> LicenceIdentifier:
    """Read an identifier's text form; :class:`InvalidIdentifierError` names what is wrong."""
    if not text.startswith(PREFIX + "."):
        raise InvalidIdentifierError(
            f"A licence identifier starts with {PREFIX}.; {text[:20]!r} does not.", part="prefix"
        )
    parts = text[len(PREFIX) + 1 :].split(".")
    if len(parts) != 5:
        raise InvalidIdentifierError(
            "After the prefix come five parts separated by dots (type code, issuer code, "
            f"serial, version, check character); there are {len(parts)}.",
            part="prefix",
        )
    type_code, issuer_code, serial, version, check = parts
    if not _VERSION.match(version):
        raise InvalidIdentifierError(f"A version is 3 digits, not {version!r}.", part="version")
    if len(check) != 1:
        raise InvalidIdentifierError(
            f"The check character is one character, not {check!r}.", part="check"
        )
    return LicenceIdentifier(
        type_code=type_code,
        issuer_code=issuer_code,
        serial=serial,
        version=int(version),
        check=check,
    )
