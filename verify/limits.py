"""Bounded verification: a worker process with a wall-time and a memory limit.

An uploaded PDF is hostile until proven otherwise. :func:`verify_pdf_bounded` checks its
size before anything else, then runs :func:`verify.pdf.verify_pdf` in a child process whose
address space is capped (``RLIMIT_AS``) and which is killed when its time is up (its CPU time
for the file is bounded by the kernel too, ``RLIMIT_CPU``, should the caller be gone). The
result is a :class:`~verify.report.Report` or a :class:`~verify.errors.VerificationError`
(too large, malformed, timed out, out of memory), never a crash or a stalled server.

Workers come from a ``forkserver`` that has already imported pyHanko, so each one starts in
milliseconds, and a worker is kept for the next file: it is replaced after an error, a
timeout (it is killed) or a hundred files. The registry is consulted in the calling process,
which holds the database session; the worker only sees the file, the trust roots and the
revocation data.

The worker writes nothing to stderr itself: its log records (pyHanko reports a failed
difference analysis with a traceback), Python's warnings and anything a library prints on
``sys.stderr`` are sent back over the pipe as plain values and logged again in the calling
process, through whatever handlers it configured (the service's JSON lines, the command
line's quiet ones). An unexpected exception in the worker becomes an error for the caller,
not a traceback.

A service verifies uploads through a :class:`VerificationPool`: at most ``workers``
verifications run at once, at most ``queue`` more wait for a turn, and the next is refused at
once with :class:`VerificationBusyError` (the service answers 503 with ``Retry-After``).
Without it every upload got a worker process of its own, and fifty parallel uploads took
gigabytes and every core. The waiting is done by an executor's queue, not by a thread or the
event loop, and the workers take only the CPU the service leaves (:func:`take_only_idle_cpu`:
``SCHED_IDLE`` in a session of the lowest weight), so that the QR page stays quick while files
are checked.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import io
import logging
import math
import multiprocessing
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

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

__all__ = ["VerificationBusyError", "VerificationPool", "default_workers", "verify_pdf_bounded"]

# The forkserver imports the main module too (multiprocessing's own default), so that each
# worker finds it there instead of running the program's script again before it starts:
# for ``econtract serve`` that is the command line's imports, ~0.1 s of CPU per upload.
_PRELOAD = ["__main__", "verify.pdf"]
_JOIN_SECONDS = 5.0
# A hostile file can make a library log on every object; the caller's log gets this many
# records of one verification, then one saying how many more were dropped.
_MAX_LOG_RECORDS = 100
_MAX_LOG_TEXT = 16 * 1024
# A worker verifies this many files, then a fresh process takes over (memory fragmentation
# and whatever a library caches stay bounded).
_JOBS_PER_WORKER = 100
# Workers kept waiting for the next file per process; more are stopped when they finish.
_MAX_IDLE_WORKERS = 8
# How often a worker tries to lower its session's weight while others change theirs.
_AUTOGROUP_ATTEMPTS = 50
_AUTOGROUP_RETRY_SECONDS = 0.01
# Bounds of the Retry-After a busy pool answers with, in seconds.
_MIN_RETRY_SECONDS = 1
_MAX_RETRY_SECONDS = 60

_P = ParamSpec("_P")
_T = TypeVar("_T")

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


class VerificationBusyError(VerificationError):
    """Every verification worker is busy and the queue is full; ``retry_after`` says in how
    many seconds a new upload may find a place."""

    code = "verification-busy"
    title = "The service is verifying as many files as it can; try again shortly."

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def default_workers() -> int:
    """Verifications at once by default: half the cores this process may use, at least one.

    Verification is CPU-bound; the other half stays for the service's own requests (and for
    the other server processes, each of which has a pool of its own).
    """
    return max(1, len(os.sched_getaffinity(0)) // 2)


class VerificationPool:
    """At most ``workers`` verifications at once and ``queue`` waiting; the rest refused.

    :meth:`run` is awaited by a request: it either takes a place (running, or waiting in the
    executor's queue without holding a thread) or raises :class:`VerificationBusyError` at
    once. The call it runs is expected to call :func:`verify_pdf_bounded`, which keeps its
    own time and memory limits.
    """

    def __init__(self, *, workers: int, queue: int) -> None:
        if workers < 1:
            raise ValueError("A verification pool needs at least one worker.")
        if queue < 0:
            raise ValueError("A verification pool's queue cannot be negative.")
        self.workers = workers
        """How many verifications run at once."""
        self.queue = queue
        """How many more may wait for a turn."""
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
        self._lock = threading.Lock()
        self._admitted = 0
        # Seconds one verification takes, smoothed; it sizes Retry-After.
        self._mean_seconds = 1.0

    @property
    def admitted(self) -> int:
        """Verifications running or waiting now."""
        return self._admitted

    @property
    def full(self) -> bool:
        """Whether the next verification would be refused (every place is taken)."""
        return self._admitted >= self.workers + self.queue

    def busy_error(self) -> VerificationBusyError:
        """The refusal of a verification while the pool is full."""
        return VerificationBusyError(
            f"{self._admitted} files are being verified or waiting; try again in a moment.",
            retry_after=self.retry_after(),
        )

    async def run(self, work: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run ``work`` on a worker of the pool and wait for it without blocking the loop."""
        with self._lock:
            if self.full:
                raise self.busy_error()
            self._admitted += 1
        # The work runs in the request's context, so that the worker's log records relayed
        # there carry the request's id (an executor's thread starts without it).
        context = contextvars.copy_context()
        call = functools.partial(work, *args, **kwargs)
        try:
            future = self._executor.submit(context.run, self._timed, call)
        except BaseException:
            self._release(None)
            raise
        future.add_done_callback(self._release)
        # A request that goes away cancels its future: a waiting one never runs.
        return await asyncio.wrap_future(future)

    def retry_after(self) -> int:
        """Seconds until a place is likely free: the queue ahead, worked off ``workers`` at a
        time at the recent pace."""
        rounds = (self.workers + self.queue) / self.workers
        seconds = math.ceil(self._mean_seconds * rounds)
        return min(_MAX_RETRY_SECONDS, max(_MIN_RETRY_SECONDS, seconds))

    def shutdown(self) -> None:
        """Stop taking work; waiting work is dropped, running work finishes, and the idle
        worker processes are stopped."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        _IDLE.stop_all()

    def _timed(self, work: Callable[[], _T]) -> _T:
        started = time.monotonic()
        try:
            return work()
        finally:
            elapsed = time.monotonic() - started
            with self._lock:
                self._mean_seconds = 0.8 * self._mean_seconds + 0.2 * elapsed

    def _release(self, _: Future[Any] | None) -> None:
        with self._lock:
            self._admitted -= 1


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
    worker = _IDLE.take() or _Worker()
    try:
        worker.connection.send(job)
        kind, payload = _answer(worker.connection, limits.wall_seconds)
    except BaseException:
        worker.stop()
        raise
    worker.jobs += 1
    if kind == "report" and worker.jobs < _JOBS_PER_WORKER:
        _IDLE.give(worker)
    else:
        # After an error (out of memory, a defect) or many files, a fresh process takes over.
        worker.stop()
    if kind == "report":
        assert isinstance(payload, Report)
        return apply_registry(payload, policy.registry)
    raise _rebuild(payload)


class _Worker:
    """A verification process, started from the forkserver, that verifies one file after
    another.

    Starting a process for every file and tearing it down again is mostly work in the kernel
    (copying the page tables of an interpreter that has pyHanko loaded, faulting in fresh
    memory, freeing it all at exit), and on a kernel that does not preempt itself that work
    delays the service's own requests on the same core. A worker is therefore kept for the
    next file, and replaced after an error, a timeout or :data:`_JOBS_PER_WORKER` files.
    """

    def __init__(self) -> None:
        context = _context()
        self.connection, child = context.Pipe(duplex=True)
        self.process = context.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()
        self.jobs = 0

    def stop(self) -> None:
        """End the process at once (it may be in the middle of a file)."""
        self.connection.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(_JOIN_SECONDS)


class _IdleWorkers:
    """Workers waiting for the next file, at most :data:`_MAX_IDLE_WORKERS`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        # A forked child does not own its parent's workers (their pipes are the parent's).
        os.register_at_fork(after_in_child=self._forget)

    def take(self) -> _Worker | None:
        """A live idle worker, if there is one."""
        with self._lock:
            while self._workers:
                worker = self._workers.pop()
                if worker.process.is_alive():
                    return worker
                worker.stop()
        return None

    def give(self, worker: _Worker) -> None:
        """Keep ``worker`` for the next file (or stop it if enough are waiting)."""
        with self._lock:
            if len(self._workers) < _MAX_IDLE_WORKERS:
                self._workers.append(worker)
                return
        worker.stop()

    def stop_all(self) -> None:
        """Stop every idle worker (the service's shutdown)."""
        with self._lock:
            workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._workers = []


_IDLE = _IdleWorkers()


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

    def finish(self) -> None:
        """The end of one file: say how many records were dropped, and count afresh."""
        dropped, self.dropped, self.sent = self.dropped, 0, 0
        if dropped:
            log.warning("%d more log records of the verification were dropped", dropped)
        self.sent = 0


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


def take_only_idle_cpu() -> None:
    """Make the calling process take only the CPU that others leave, machine-wide.

    ``SCHED_IDLE`` alone yields only inside the process's scheduling group. Where Linux
    groups processes by session (autogroup, the default outside a cgroup of the cpu
    controller), the process first leads a session of its own and gives that group the
    lowest weight (niceness 19, which needs no privilege): in the service's own group, the
    serving threads often waited a whole tick (4 ms) behind a verification, because the
    kernel picks only among tasks that have not had more than their share, and a serving
    thread that has just run has. The process leaves its process group and terminal with
    its session; a verification worker ends anyway when its caller's pipe closes."""
    if _autogroups_enabled():
        os.setsid()
        autogroup = Path("/proc/self/autogroup")
        for _attempt in range(_AUTOGROUP_ATTEMPTS):
            try:
                autogroup.write_text("19")
                break
            except BlockingIOError:
                # Unprivileged changes are limited to ten a second, machine-wide.
                time.sleep(_AUTOGROUP_RETRY_SECONDS)
            except OSError:
                log.warning("the verification worker's group keeps its weight", exc_info=True)
                break
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _autogroups_enabled() -> bool:
    try:
        enabled = Path("/proc/sys/kernel/sched_autogroup_enabled").read_text().strip() == "1"
    except OSError:
        return False  # a kernel without autogroups: SCHED_IDLE is all there is
    return enabled and Path("/proc/self/autogroup").exists()


def _serve(connection: Connection) -> None:
    """The worker: verify each file received until the caller closes the pipe; send back a
    report or an error for each, after the file's log records."""
    # Verification takes only the CPU the service's own requests leave, so that the QR page
    # stays quick while files are checked.
    handler = _capture_output(connection, logging.WARNING)
    take_only_idle_cpu()
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        handler.setLevel(job.log_level)
        logging.getLogger().setLevel(job.log_level)
        answer = _verify(job)
        # The log records go first: the caller stops reading at the answer.
        sys.stderr.flush()
        handler.finish()
        connection.send(answer)


def bound_cpu(seconds: float) -> None:
    """Let the calling process use at most ``seconds`` more CPU time; then the kernel stops
    it (``SIGXCPU``, without a core file).

    The caller kills a worker whose file takes longer than the wall-time limit, which bounds
    its CPU too; this bound holds when the caller is gone. A worker leads a session of its
    own (:func:`take_only_idle_cpu`), so stopping the service's process group no longer
    stops it: it ends at the next file, when it finds the pipe closed, or here."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    limit = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    # The soft limits only: the next file may come with a higher one.
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    resource.setrlimit(resource.RLIMIT_CPU, (limit, hard))


def _verify(job: _Job) -> tuple[str, Any]:
    try:
        # The soft limit only: the next file may come with a higher one.
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (job.limits.memory_bytes, hard))
        # One second more than the caller waits, so that the caller's timeout answers first.
        bound_cpu(job.limits.wall_seconds + 1)
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
