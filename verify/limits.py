"""Bounded verification: a worker process with a wall-time and a memory limit.

An uploaded PDF is hostile until proven otherwise. :func:`verify_pdf_bounded` checks its
size before anything else, then runs :func:`verify.pdf.verify_pdf` in a child process whose
address space is capped (``RLIMIT_AS``) and which is killed when its time is up. The
result is a :class:`~verify.report.Report` or a :class:`~verify.errors.VerificationError`
(too large, malformed, timed out, out of memory), never a crash or a stalled server.

Workers come from a ``forkserver`` that has already imported pyHanko, so each one starts in
milliseconds. The registry is consulted in the calling process, which holds the database
session; the worker only sees the file, the trust roots and the revocation data.

The worker writes nothing to stderr itself: its log records (pyHanko reports a failed
difference analysis with a traceback), Python's warnings and anything a library prints on
``sys.stderr`` are sent back over the pipe as plain values and logged again in the calling
process, through whatever handlers it configured (the service's JSON lines, the command
line's quiet ones). An unexpected exception in the worker becomes an error for the caller,
not a traceback.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import resource
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from verify.errors import (
    MalformedPDFError,
    NotAPDFError,
    ResourceLimitError,
    TooLargeError,
    VerificationError,
    VerificationTimeoutError,
)
from verify.policy import VerificationLimits, VerificationPolicy
from verify.report import Report
from verify.verdict import apply_registry

__all__ = ["verify_pdf_bounded"]

_PRELOAD = ["verify.pdf"]
_JOIN_SECONDS = 5.0
# A hostile file can make a library log on every object; the caller's log gets this many
# records of one verification, then one saying how many more were dropped.
_MAX_LOG_RECORDS = 100
_MAX_LOG_TEXT = 16 * 1024

log = logging.getLogger("verify.worker")


@dataclass(frozen=True)
class _Job:
    """What crosses to the worker: bytes and plain values only (certificates as DER)."""

    data: bytes
    roots: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    ocsp_responses: tuple[bytes, ...]
    now: datetime | None
    limits: VerificationLimits
    log_level: int = logging.WARNING


def verify_pdf_bounded(data: bytes, *, policy: VerificationPolicy) -> Report:
    """Verify ``data`` in a worker process under ``policy.limits``; see the module."""
    limits = policy.limits
    if len(data) > limits.max_file_size:
        raise TooLargeError(
            f"The file has {len(data)} bytes; at most {limits.max_file_size} are accepted.",
            limit=limits.max_file_size,
            actual=len(data),
        )
    job = _Job(
        data=data,
        roots=tuple(r.public_bytes(Encoding.DER) for r in policy.trust_roots),
        crls=policy.crls,
        ocsp_responses=policy.ocsp_responses,
        now=policy.now,
        limits=limits,
        log_level=logging.getLogger().getEffectiveLevel(),
    )
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_work, args=(sender, job), daemon=True)
    worker.start()
    sender.close()
    try:
        kind, payload = _answer(receiver, limits.wall_seconds)
    finally:
        receiver.close()
        if worker.is_alive():
            worker.kill()
        worker.join(_JOIN_SECONDS)
    if kind == "report":
        assert isinstance(payload, Report)
        return apply_registry(payload, policy.registry)
    raise _rebuild(payload)


def _answer(receiver: Connection, wall_seconds: float) -> tuple[str, Any]:
    """The worker's answer; its log records, which come first, are logged here on the way."""
    deadline = time.monotonic() + wall_seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not receiver.poll(remaining):
            raise VerificationTimeoutError(
                f"Verification took longer than {wall_seconds:g} seconds and was stopped.",
                seconds=wall_seconds,
            )
        try:
            kind, payload = receiver.recv()
        except (EOFError, OSError):
            raise ResourceLimitError(
                "The verification worker stopped without an answer (out of memory or crashed)."
            ) from None
        if kind != "log":
            return kind, payload
        _relog(payload)


def _relog(fields: dict[str, Any]) -> None:
    """Log a record of the worker again here, under its own logger name and time."""
    record = logging.makeLogRecord(fields)
    record.worker = "verification"
    logging.getLogger(record.name).handle(record)


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


class _SendRecords(logging.Handler):
    """The worker's only log handler: records go to the caller as plain values."""

    def __init__(self, sender: Connection, level: int) -> None:
        super().__init__(level)
        self.sender = sender
        self.sent = 0
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if self.sent >= _MAX_LOG_RECORDS:
            self.dropped += 1
            return
        try:
            exc_text = None
            if record.exc_info:
                exc_text = logging.Formatter().formatException(record.exc_info)
            elif record.exc_text:
                exc_text = record.exc_text
            self.sender.send(
                (
                    "log",
                    {
                        "name": record.name,
                        "levelno": record.levelno,
                        "levelname": record.levelname,
                        "msg": record.getMessage()[:_MAX_LOG_TEXT],
                        "exc_text": exc_text[-_MAX_LOG_TEXT:] if exc_text else None,
                        "created": record.created,
                    },
                )
            )
            self.sent += 1
        except Exception:  # logging must never break verification
            self.dropped += 1

    def close(self) -> None:
        if self.dropped:
            dropped, self.dropped, self.sent = self.dropped, 0, 0
            log.warning("%d more log records of the verification were dropped", dropped)
        super().close()


class _StderrToLog(io.TextIOBase):
    """``sys.stderr`` of the worker: whatever a library prints becomes a log record."""

    def __init__(self) -> None:
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        for line in lines:
            if line.strip():
                log.warning("%s", line)
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            log.warning("%s", self._pending)
        self._pending = ""


def _capture_output(sender: Connection, level: int) -> _SendRecords:
    handler = _SendRecords(sender, level)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            logger.handlers[:] = []
            logger.propagate = True
    logging.captureWarnings(True)
    sys.stderr = _StderrToLog()
    return handler


def _work(sender: Connection, job: _Job) -> None:
    """The worker: cap the address space, verify, send back a report or an error."""
    handler = _capture_output(sender, job.log_level)
    try:
        answer = _verify(job)
        # The log records go first: the caller stops reading at the answer.
        sys.stderr.flush()
        handler.close()
        sender.send(answer)
    finally:
        sender.close()


def _verify(job: _Job) -> tuple[str, Any]:
    try:
        resource.setrlimit(resource.RLIMIT_AS, (job.limits.memory_bytes, job.limits.memory_bytes))
        from verify.pdf import verify_pdf  # noqa: PLC0415  # preloaded by the forkserver

        policy = VerificationPolicy(
            trust_roots=tuple(x509.load_der_x509_certificate(r) for r in job.roots),
            crls=job.crls,
            ocsp_responses=job.ocsp_responses,
            now=job.now,
            limits=job.limits,
        )
        return ("report", verify_pdf(job.data, policy=policy))
    except VerificationError as exc:
        return ("error", _describe(exc))
    except MemoryError:
        return ("error", ("verification-resources", "Verification ran out of memory."))
    except RecursionError:
        return ("error", ("malformed-pdf", "The PDF nests objects too deeply."))
    except Exception as exc:
        # A defect, not a verdict: the caller learns that the file could not be checked,
        # and the log gets the traceback as a field of its record.
        log.exception("verification failed unexpectedly")
        return (
            "error",
            (
                "verification-failed",
                f"The file could not be verified ({type(exc).__name__}); "
                "the service's log has the details.",
            ),
        )


def _describe(exc: VerificationError) -> tuple[str, str, int | None, int | None]:
    return (
        exc.code,
        exc.message,
        getattr(exc, "limit", None),
        getattr(exc, "actual", None),
    )


def _rebuild(payload: tuple[Any, ...]) -> VerificationError:
    code, message = payload[0], payload[1]
    if code == TooLargeError.code:
        return TooLargeError(message, limit=int(payload[2] or 0), actual=payload[3])
    if code == MalformedPDFError.code:
        return MalformedPDFError(message)
    if code == NotAPDFError.code:
        return NotAPDFError(message)
    if code == ResourceLimitError.code:
        return ResourceLimitError(message)
    return VerificationError(message, code=str(code))
