"""Who processes a batch's rows: the service's own threads, or workers on a task queue.

Without ``ECONTRACT_BROKER_URL`` (the embedded default), :class:`ThreadRunner` issues the rows
in a thread pool of the service process, so that one machine needs nothing more; it resumes
the queued rows when the service starts again.

With a broker, :class:`QueueRunner` sends one message per row to a Dramatiq queue and
``econtract worker`` processes (:func:`run_worker`), on any number of machines, take them.
Dramatiq is a small task queue whose Redis broker acknowledges a message only after its actor
returned (at least once): a worker killed mid-row leaves its messages unacknowledged, and once
its heartbeat is older than ``ECONTRACT_BROKER_HEARTBEAT_SECONDS`` the broker gives them to
another worker. Redis rather than RabbitMQ because the deployment on several machines already
runs Redis for the rate limits' counts, so the queue adds no server to operate. Celery would
do the same with more moving parts (result backends, its own worker model) that a row, whose
result is in the registry, has no use for.

A row delivered twice is issued once (:mod:`econtract.batches._store`).

A row whose issuance raises an unexpected error (a bug, a seal's key gone, the database away)
is tried ``ECONTRACT_BATCH_ROW_ATTEMPTS`` times with backoff, by Dramatiq's retries or by the
thread pool's own loop, and then failed with the error's kind (:data:`ROW_ERROR_CODE`), so
that its batch ends; the stack goes to the log, never into the row. A row that waits for
another worker holding it is sent again later and uses up no attempt. Rows whose message
never reached the broker are sent again by the workers' sweep (:mod:`._resend`).
"""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from econtract.batches._resend import ResendSweeper, mark_sent, resend_rows
from econtract.batches._store import RowBusyError, fail_row, process_row, queued_rows
from econtract.config import Settings
from econtract.errors import EContractError, NotFoundError
from econtract.services import Services

if TYPE_CHECKING:
    import dramatiq
    from redis import Redis

log = logging.getLogger("econtract.batches")

#: The actor's name on the queue; workers and senders must agree on it.
ACTOR_NAME = "issue_batch_row"
#: The actor Dramatiq sends a row to when its attempts are used up.
EXHAUSTED_ACTOR_NAME = "fail_batch_row"
#: How long a runner waits before taking a row that another worker holds again.
BUSY_PAUSE_SECONDS = 0.5
#: The first pause after a failed attempt (it doubles with each attempt) and the longest.
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
#: The code of a row failed because its issuance kept raising an unexpected error.
ROW_ERROR_CODE = "batch-row-error"


def row_error_message(attempts: int, kind: str) -> str:
    """The reason a row gives when ``attempts`` attempts raised ``kind`` (an exception's class
    name: what went wrong without the error's text, which may quote the row's fields)."""
    return (
        f"The row could not be issued: {attempts} attempts failed ({kind}); the service's "
        "log has the cause. Submit the row again once it is fixed."
    )


class BatchRunner(Protocol):
    """Takes the rows of a submitted batch and sees them processed."""

    def start(self) -> None:
        """Begin (the embedded runner resumes rows left queued by a stop)."""

    def submit(self, batch_id: str, rows: Sequence[int]) -> None:
        """Hand the rows over; returns before they are processed."""

    def stop(self) -> None:
        """Stop taking rows; rows not begun stay queued in the registry."""


def open_runner(services: Services) -> BatchRunner:
    """The runner the settings ask for: on the broker when one is configured."""
    if services.settings.broker_url:
        return QueueRunner(services)
    return ThreadRunner(
        services,
        threads=services.settings.batch_threads,
        attempts=services.settings.batch_row_attempts,
    )


class ThreadRunner:
    """Rows issued by a thread pool of this process (no broker)."""

    def __init__(
        self,
        services: Services,
        *,
        threads: int,
        attempts: int,
        first_backoff_seconds: float = FIRST_BACKOFF_SECONDS,
    ) -> None:
        self._services = services
        self._threads = threads
        self._attempts = attempts
        self._first_backoff = first_backoff_seconds
        self._pool: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Start the pool and resume the rows a stopped or killed service left queued."""
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="batch")
        try:
            left = queued_rows(self._services)
        except SQLAlchemyError as exc:
            # The service still starts; its /readyz says what is wrong with the registry.
            log.error("queued batch rows not resumed", extra={"reason": str(exc).splitlines()[0]})
            return
        for batch_id, row in left:
            self._pool.submit(self._run, batch_id, row)

    def submit(self, batch_id: str, rows: Sequence[int]) -> None:
        """Queue the rows on the pool."""
        assert self._pool is not None, "the runner is not started"
        for row in rows:
            self._pool.submit(self._run, batch_id, row)

    def stop(self) -> None:
        """Finish the rows being issued; drop the rest (they stay queued for the next start)."""
        self._stopping.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self, batch_id: str, row: int) -> None:
        attempt = 1
        while not self._stopping.is_set():
            try:
                process_row(self._services, batch_id=batch_id, row=row)
            except RowBusyError:
                self._stopping.wait(BUSY_PAUSE_SECONDS)
                continue
            except Exception as exc:
                log.exception(
                    "batch row not processed",
                    extra={"batch": batch_id, "row": row, "attempt": attempt},
                )
                if attempt >= self._attempts:
                    self._fail(batch_id, row, attempt, type(exc).__name__)
                    return
                # A stop during the pause leaves the row queued for the next start.
                pause = self._first_backoff * 2 ** (attempt - 1)
                self._stopping.wait(min(pause, MAX_BACKOFF_SECONDS))
                attempt += 1
                continue
            return

    def _fail(self, batch_id: str, row: int, attempts: int, kind: str) -> None:
        try:
            fail_row(
                self._services,
                batch_id=batch_id,
                row=row,
                code=ROW_ERROR_CODE,
                message=row_error_message(attempts, kind),
            )
        except Exception:
            # The row stays queued and is resumed at the next start.
            log.exception("batch row not failed", extra={"batch": batch_id, "row": row})


def make_broker(settings: Settings) -> dramatiq.Broker:
    """The Redis broker of ``ECONTRACT_BROKER_URL``, whose actors issue a row (tried again with
    backoff when it raises) and fail a row whose attempts are used up."""
    import dramatiq  # noqa: PLC0415 - the embedded default never loads the task queue
    from dramatiq.brokers.redis import RedisBroker  # noqa: PLC0415
    from dramatiq.middleware import AgeLimit, Callbacks, Retries, ShutdownNotifications  # noqa: PLC0415

    # Dramatiq's default middleware also starts a Prometheus exporter of its own; the
    # service's metrics are its own business, so the list is spelt out without it.
    broker = RedisBroker(
        url=settings.broker_url,
        heartbeat_timeout=int(settings.broker_heartbeat_seconds * 1000),
        # Dead workers' messages are found by a maintenance pass that runs with this chance
        # per broker command (out of a million): often enough that a row does not wait long.
        maintenance_chance=50_000,
        middleware=[AgeLimit(), ShutdownNotifications(), Callbacks(), Retries()],
    )
    backoff = {
        "min_backoff": int(FIRST_BACKOFF_SECONDS * 1000),
        "max_backoff": int(MAX_BACKOFF_SECONDS * 1000),
    }
    dramatiq.Actor(
        _issue_row,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=settings.batch_queue,
        priority=0,
        # Retries count the attempts after the first; once they are used up, Dramatiq sends
        # the message to the actor that fails the row.
        options={
            "max_retries": settings.batch_row_attempts - 1,
            "on_retry_exhausted": EXHAUSTED_ACTOR_NAME,
            **backoff,
        },
    )
    dramatiq.Actor(
        _fail_exhausted_row,
        broker=broker,
        actor_name=EXHAUSTED_ACTOR_NAME,
        queue_name=settings.batch_queue,
        priority=0,
        # Failing the row needs the registry; if it stays away past these, the row stays
        # queued and the re-send sweep gives it new attempts.
        options={"max_retries": 20, **backoff},
    )
    return broker


class QueueRunner:
    """Rows sent as messages to the broker's queue, for ``econtract worker`` processes."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self._broker = make_broker(services.settings)

    def start(self) -> None:
        """Nothing to start: the workers run elsewhere."""

    def submit(self, batch_id: str, rows: Sequence[int]) -> None:
        """Send one message per row, then mark the batch sent (:mod:`._resend`): a row not
        sent, by a refusal or a death before the mark, is sent again by the workers' sweep."""
        actor = self._broker.get_actor(ACTOR_NAME)
        for row in rows:
            actor.send(batch_id, row)
        mark_sent(
            _redis(self._broker),
            queue=self._services.settings.batch_queue,
            batch_id=batch_id,
            at=self._services.clock.now(),
        )

    def stop(self) -> None:
        """Close the broker's connections."""
        self._broker.close()


def _redis(broker: dramatiq.Broker) -> Redis:
    client: Redis = getattr(broker, "client")  # noqa: B009 - RedisBroker's, untyped
    return client


# The worker process's services and broker, set by start_worker before it takes any message.
_worker_services: Services | None = None
_worker_broker: dramatiq.Broker | None = None


def _issue_row(batch_id: str, row: int) -> None:
    assert _worker_services is not None, "not in a worker process"
    assert _worker_broker is not None
    try:
        process_row(_worker_services, batch_id=batch_id, row=row)
    except NotFoundError:
        # A message about a batch this registry does not hold (another deployment's queue).
        log.error("batch row unknown", extra={"batch": batch_id, "row": row})
    except RowBusyError:
        # Not a failure: the row is sent again for later, outside the attempts' count.
        _worker_broker.get_actor(ACTOR_NAME).send_with_options(
            args=(batch_id, row), delay=int(BUSY_PAUSE_SECONDS * 1000)
        )
    # Any other error goes back to Dramatiq, which tries the row again with backoff and,
    # after the last attempt, sends it to _fail_exhausted_row.


#: The class name of an exception, on the last line of a formatted traceback.
_ERROR_KIND = re.compile(r"^(?:[A-Za-z_][\w]*\.)*([A-Za-z_]\w*)(?::|$)")


def _fail_exhausted_row(message: dict[str, Any], retries: dict[str, Any]) -> None:
    # Dramatiq's on_retry_exhausted: the failed message and its retry count. The kind of the
    # last error is read from the traceback Dramatiq keeps with the message; its text is not
    # taken, since it may quote the row's fields.
    assert _worker_services is not None, "not in a worker process"
    batch_id, row = message["args"]
    lines = str(message.get("options", {}).get("traceback") or "").strip().splitlines()
    found = _ERROR_KIND.match(lines[-1]) if lines else None
    kind = found.group(1) if found else "an unexpected error"
    attempts = int(retries.get("retries", 0)) + 1
    fail_row(
        _worker_services,
        batch_id=batch_id,
        row=int(row),
        code=ROW_ERROR_CODE,
        message=row_error_message(attempts, kind),
    )
    log.error("batch row failed", extra={"batch": batch_id, "row": row, "attempts": attempts})


def start_worker(services: Services, *, threads: int) -> Callable[[], None]:
    """Take batch rows from the broker in ``threads`` threads of this process, after sending
    again the rows whose messages are missing (and every ``ECONTRACT_BATCH_RESEND_SECONDS``
    from then on); the function that stops it all."""
    import dramatiq  # noqa: PLC0415

    global _worker_services, _worker_broker  # noqa: PLW0603 - one worker's services per process
    settings = services.settings
    if not settings.broker_url:
        raise EContractError("No broker is configured: set ECONTRACT_BROKER_URL.")
    _worker_services = services
    broker = _worker_broker = make_broker(settings)
    actor = broker.get_actor(ACTOR_NAME)

    def send(batch_id: str, row: int) -> None:
        actor.send(batch_id, row)

    try:
        resend_rows(services, _redis(broker), send)
    except Exception:
        # The worker still takes rows; the sweep runs again at its next tick.
        log.exception("batch rows not swept at start")
    sweeper = ResendSweeper(services, _redis(broker), send)
    worker = dramatiq.Worker(broker, queues={settings.batch_queue}, worker_threads=threads)
    worker.start()
    sweeper.start()
    log.info("worker started", extra={"queue": settings.batch_queue, "threads": threads})

    def stop() -> None:
        sweeper.stop()
        worker.stop()
        broker.close()

    return stop


def run_worker(services: Services, *, threads: int) -> None:
    """Process batch rows from the broker with ``services`` until SIGTERM or SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    stop_worker = start_worker(services, threads=threads)
    try:
        stop.wait()
    finally:
        stop_worker()
