"""Errors of the sealing engine; each says what was wrong with the input or the seal."""

from __future__ import annotations

from keys.errors import EContractError


class SigningError(EContractError):
    """A PDF could not be sealed."""

    code = "signing"
    title = "The PDF could not be sealed."


class NotAPDFError(SigningError):
    """The input is not a PDF."""

    code = "not-a-pdf"
    title = "The file is not a PDF."


class EncryptedPDFError(SigningError):
    """The input is an encrypted PDF; it must be decrypted before sealing."""

    code = "encrypted-pdf"
    title = "The PDF is encrypted."


class BrokenPDFError(SigningError):
    """The PDF's structure (cross-reference table, trailer, objects) is damaged."""

    code = "broken-pdf"
    title = "The PDF is damaged."


class SealUnusableError(SigningError):
    """The seal may not sign now: revoked, retired, expired, not yet valid, or not the caller's."""

    code = "seal-unusable"
    title = "The seal cannot be used now."


class PlacementError(SigningError):
    """The seal's page or position is not on the document."""

    code = "bad-placement"
    title = "The seal's position is not on the document."


class TimestampError(SigningError):
    """The timestamp authority is unreachable or answered something unusable."""

    code = "timestamp-unavailable"
    title = "The timestamp authority is unavailable."


class DocumentCertifiedError(SigningError):
    """The document is certified with no changes allowed, as an issued licence is.

    Nothing may be added to such a document, not even another seal.
    """

    code = "document-certified"
    title = "The licence is certified: no further changes are allowed."


class FieldReservedError(SigningError):
    """The seal field is reserved for another department or seal than the one sealing.

    ``field_name`` names the field.
    """

    code = "field-reserved"
    title = "The seal field is reserved for another department."

    def __init__(self, message: str, *, field_name: str) -> None:
        super().__init__(message)
        self.field_name = field_name
