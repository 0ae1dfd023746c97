"""Errors of verification: a file that cannot be judged at all, or a check out of bounds.

A file that can be parsed always gets a report with a verdict (INVALID, MODIFIED, ...); these
errors are for the rest, and every one of them maps to a 4xx response (``api.py`` chooses
the status code from the class).
"""

from __future__ import annotations

from keys.errors import EContractError


class VerificationError(EContractError):
    """A PDF could not be verified; the message says why, in a whole sentence."""

    code = "verification"
    title = "The PDF could not be verified."


class MalformedPDFError(VerificationError):
    """The bytes are not a PDF, or its structure cannot be read within the limits."""

    code = "malformed-pdf"
    title = "The PDF cannot be read."


class NotAPDFError(MalformedPDFError):
    """The bytes are not a PDF at all (no ``%PDF-`` header): the same problem, ``not-a-pdf``,
    as :class:`signing.errors.NotAPDFError`, so every endpoint answers it alike."""

    code = "not-a-pdf"
    title = "The file is not a PDF."


class TooLargeError(VerificationError):
    """The file, or something in it, exceeds a configured limit."""

    code = "too-large"
    title = "The file is too large."

    def __init__(self, message: str, *, limit: int, actual: int | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.actual = actual


class VerificationTimeoutError(VerificationError):
    """Verification took longer than its wall-time limit and was stopped."""

    code = "verification-timeout"
    title = "Verification took too long."

    def __init__(self, message: str, *, seconds: float) -> None:
        super().__init__(message)
        self.seconds = seconds


class ResourceLimitError(VerificationError):
    """Verification needed more memory than its limit, or its worker died."""

    code = "verification-resources"
    title = "Verification ran out of resources."
