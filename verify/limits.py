"""Bounded verification: a worker process with a wall-time and a memory limit.

An uploaded PDF is hostile until proven otherwise. :func:`verify_pdf_bounded` checks its
size before anything else, then runs :func:`verify.pdf.verify_pdf` in a child process whose
address space is capped (``RLIMIT_AS``) and which is killed when its time is up. The
result is a :class:`~verify.report.Report` or a :class:`~verify.errors.VerificationError`
(too large, malformed, timed out, out of memory), never a crash or a stalled server.

Workers come from a ``forkserver`` that has already imported pyHanko, so each one starts in
milliseconds. The registry is consulted in the calling process, which holds the database
session; the worker only sees the file, the trust roots and the revocation data.
"""

from __future__ import annotations

import multiprocessing
import resource
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from verify.errors import (
    MalformedPDFError,
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


@dataclass(frozen=True)
class _Job:
    """What crosses to the worker: bytes and plain values only (certificates as DER)."""

    data: bytes
    roots: tuple[bytes, ...]
    crls: tuple[bytes, ...]
    ocsp_responses: tuple[bytes, ...]
    now: datetime | None
    limits: VerificationLimits


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
    )
    context = _context()
    receiver, sender = context.Pipe(duplex=False)
    worker = context.Process(target=_work, args=(sender, job), daemon=True)
    worker.start()
    sender.close()
    try:
        if not receiver.poll(limits.wall_seconds):
            raise VerificationTimeoutError(
                f"Verification took longer than {limits.wall_seconds:g} seconds and was stopped.",
                seconds=limits.wall_seconds,
            )
        try:
            kind, payload = receiver.recv()
        except (EOFError, OSError):
            raise ResourceLimitError(
                "The verification worker stopped without an answer (out of memory or crashed)."
            ) from None
    finally:
        receiver.close()
        if worker.is_alive():
            worker.kill()
        worker.join(_JOIN_SECONDS)
    if kind == "report":
        assert isinstance(payload, Report)
        return apply_registry(payload, policy.registry)
    raise _rebuild(payload)


def _context() -> Any:
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(_PRELOAD)
        return context
    return multiprocessing.get_context("spawn")


def _work(sender: Connection, job: _Job) -> None:
    """The worker: cap the address space, verify, send back a report or an error."""
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
        sender.send(("report", verify_pdf(job.data, policy=policy)))
    except VerificationError as exc:
        sender.send(("error", _describe(exc)))
    except MemoryError:
        sender.send(("error", ("verification-resources", "Verification ran out of memory.")))
    except RecursionError:
        sender.send(("error", ("malformed-pdf", "The PDF nests objects too deeply.")))
    finally:
        sender.close()


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
    if code == ResourceLimitError.code:
        return ResourceLimitError(message)
    return VerificationError(message, code=str(code))
