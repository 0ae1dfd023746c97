"""Errors of the HTTP layer itself (the domain's are in ``econtract.errors``)."""

from __future__ import annotations

from econtract.errors import EContractError


class PayloadTooLargeError(EContractError):
    """The request body is larger than the configured limit."""

    code = "payload-too-large"
    title = "The request body is too large."


class IdempotencyKeyRequiredError(EContractError):
    """A request that must never take effect twice came without an ``Idempotency-Key``."""

    code = "idempotency-key-required"
    title = "The request needs an Idempotency-Key header."


class UnsupportedMediaTypeError(EContractError):
    """The request body's media type is not the one the endpoint takes."""

    code = "unsupported-media-type"
    title = "The request body's media type is not the one this endpoint takes."
