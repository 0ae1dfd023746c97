"""The error families of the service.

The base class lives here, at the lowest layer, so that every package (``keys``,
``signing``, ``verify``, ``econtract``) raises subclasses of one root that ``api.py``
maps to problem+json responses in a single place.
"""

from __future__ import annotations


class EContractError(Exception):
    """Root of every error the service raises on purpose.

    ``code`` is a short, stable, machine-readable slug; ``title`` is one whole sentence for
    people that names the kind of problem (the problem+json ``title``: the same for every
    error of a class, so each class declares its own); the message is a whole sentence about
    this occurrence.
    """

    code: str = "error"
    title: str = "The service could not do what was asked."

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class KeyStoreError(EContractError):
    """A key could not be created, found, unlocked or used."""

    code = "key-store"
    title = "The key store could not be used."


class KeyNotFoundError(KeyStoreError):
    """No key under the given label in the key store."""

    code = "key-not-found"
    title = "The key is not in the key store."

    def __init__(self, label: str, message: str | None = None) -> None:
        super().__init__(message or f"No key labelled {label!r} in the key store.")
        self.label = label


class PKIError(EContractError):
    """A certificate, CRL, OCSP or timestamp operation failed or got bad input."""

    code = "pki"
    title = "The certificate, revocation or timestamp operation failed."


class MalformedRequestError(PKIError):
    """A PKI protocol request (OCSP, RFC 3161) could not be parsed or is not supported."""

    code = "malformed-request"
    title = "The PKI protocol request could not be read."
