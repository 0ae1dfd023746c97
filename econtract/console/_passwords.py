"""Console passwords: argon2id (RFC 9106) with argon2-cffi's parameters, and the one rule a
new password keeps."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from econtract.errors import InvalidInputError

#: The shortest password accepted.
MIN_PASSWORD_LENGTH = 12

_HASHER = PasswordHasher()  # argon2id, RFC 9106's low-memory profile

# A hash of no password anyone has, checked for an unknown name so that the answer takes as
# long as for a known one.
_DUMMY_HASH = _HASHER.hash("no console user has this password")


class WeakPasswordError(InvalidInputError):
    """A new password breaks the rule."""

    code = "weak-password"
    title = "The password is too weak."


def check_password_rule(password: str) -> None:
    """Raise :class:`WeakPasswordError` unless ``password`` has at least 12 characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPasswordError(
            f"A password needs at least {MIN_PASSWORD_LENGTH} characters.",
            errors=[("/password", f"at least {MIN_PASSWORD_LENGTH} characters")],
        )


def hash_password(password: str) -> str:
    """The argon2id hash of ``password`` (PHC string: algorithm, parameters, salt, digest)."""
    return _HASHER.hash(password)


def password_matches(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; ``None`` (no such person) is checked against
    a dummy hash, taking the same time, and never matches."""
    try:
        return _HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False
