"""The domain's errors. ``api.py`` maps each family to an HTTP status in one place."""

from __future__ import annotations

from keys.errors import (
    EContractError,
    KeyNotFoundError,
    KeyStoreError,
    MalformedRequestError,
    PKIError,
)

# The sealing engine's errors are the domain's too: the HTTP face maps them without importing
# signing.
from signing.errors import (
    BrokenPDFError,
    DocumentCertifiedError,
    EncryptedPDFError,
    FieldReservedError,
    NotAPDFError,
    PlacementError,
    SealUnusableError,
    SigningError,
    TimestampError,
)

__all__ = [
    "BrokenPDFError",
    "ConflictError",
    "DatabaseUnavailableError",
    "DocumentCertifiedError",
    "EContractError",
    "EncryptedPDFError",
    "FieldReservedError",
    "InsufficientStorageError",
    "InvalidInputError",
    "KeyNotFoundError",
    "KeyStoreError",
    "LicenceExistsError",
    "MalformedRequestError",
    "NotAPDFError",
    "NotFoundError",
    "PKIError",
    "PermissionDeniedError",
    "PlacementError",
    "RegistryError",
    "SealUnusableError",
    "SigningError",
    "TimestampError",
]


class RegistryError(EContractError):
    """A registry operation was refused."""

    code = "registry"
    title = "The registry refused the operation."


class NotFoundError(RegistryError):
    """The object does not exist, or not for this caller (the two look the same on purpose)."""

    code = "not-found"
    title = "The object does not exist."


class ConflictError(RegistryError):
    """The change conflicts with what is stored (a duplicate, a state that forbids it)."""

    code = "conflict"
    title = "The change conflicts with the current state."

    @property
    def data(self) -> dict[str, str]:
        """Members the problem+json answer carries besides the message (none by default)."""
        return {}


class LicenceExistsError(ConflictError):
    """The holder already holds a valid licence of this type from this department."""

    code = "licence-exists"
    title = "The holder already holds a valid licence of this type; supersede it instead."

    def __init__(self, message: str, *, certificate_id: str, number: str) -> None:
        super().__init__(message)
        self.certificate_id = certificate_id
        self.number = number

    @property
    def data(self) -> dict[str, str]:
        """The licence the holder holds: the one to supersede."""
        return {"existing_certificate_id": self.certificate_id, "existing_number": self.number}


class InvalidInputError(RegistryError):
    """Input failed validation; ``errors`` lists ``(pointer, message)`` pairs."""

    code = "invalid-input"
    title = "The input is not valid."

    def __init__(self, message: str, *, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class PermissionDeniedError(RegistryError):
    """The caller lacks the scope or the ownership the action needs."""

    code = "forbidden"
    title = "The caller may not do this."


class DatabaseUnavailableError(EContractError):
    """The database cannot be reached or the URL is wrong; the message names the setting."""

    code = "database-unavailable"
    title = "The database is unavailable."


class InsufficientStorageError(EContractError):
    """The blob store's disk (or the quota on it) is full: nothing was stored or registered."""

    code = "insufficient-storage"
    title = "The service has no room to store the document."
