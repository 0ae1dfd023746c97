"""The transparency log's errors: one family under ``LogError``."""

from __future__ import annotations

from econtract.errors import EContractError, NotFoundError


class LogError(EContractError):
    """A transparency log operation failed."""

    code = "log"
    title = "The transparency log operation failed."


class LogRequestError(LogError):
    """A request to the log is malformed or out of range (answered with 400).

    ``parameter`` names the offending query parameter, when there is one.
    """

    code = "log-bad-request"
    title = "The request to the transparency log is malformed."

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class LogNotFoundError(LogError, NotFoundError):
    """The log holds no such entry, or has not published a tree head yet."""

    code = "log-not-found"
    title = "The transparency log has no such entry or tree head."


class LogFormatError(LogError):
    """Bytes or JSON claimed to be a log entry, tree head or proof could not be read."""

    code = "log-format"
    title = "The log data could not be read."


class ProofVerificationError(LogError):
    """A proof, a tree head's signature or a recomputed root did not verify."""

    code = "log-proof-invalid"
    title = "The log's proof does not verify."


class LogIntegrityError(LogError):
    """The stored log is damaged: a row is missing or disagrees with a signed tree head.

    The log refuses to hand out a proof it cannot back; this is a server fault (500).
    """

    code = "log-integrity"
    title = "The transparency log is damaged."
