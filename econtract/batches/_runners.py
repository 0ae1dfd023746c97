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
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from sqlalchemy.exc import SQLAlchemyError

from econtract.batches._store import RowBusyError, process_row, queued_rows
from econtract.config import Settings
from econtract.errors import EContractError, NotFoundError
from econtract.services import Services

if TYPE_CHECKING:
    import dramatiq

log = logging.getLogger("econtract.batches")

#: The actor's name on the queue; workers and senders must agree on it.
ACTOR_NAME = "issue_batch_row"
#: How long a runner waits before taking a row that another worker holds again.
BUSY_PAUSE_SECONDS = 0.5


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
        return QueueRunner(services.settings)
    return ThreadRunner(services, threads=services.settings.batch_threads)


class ThreadRunner:
    """Rows issued by a thread pool of this process (no broker)."""

    def __init__(self, services: Services, *, threads: int) -> None:
        self._services = services
        self._threads = threads
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
        while not self._stopping.is_set():
            try:
                process_row(self._services, batch_id=batch_id, row=row)
            except RowBusyError:
                time.sleep(BUSY_PAUSE_SECONDS)
                continue
            except Exception:
                # The row stays queued and is resumed at the next start.
                log.exception("batch row not processed", extra={"batch": batch_id, "row": row})
            return


def make_broker(settings: Settings) -> dramatiq.Broker:
    """The Redis broker of ``ECONTRACT_BROKER_URL``, with retries for rows that must wait."""
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
    dramatiq.Actor(
        _issue_row,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=settings.batch_queue,
        priority=0,
        options={"max_retries": 1000, "min_backoff": 200, "max_backoff": 5_000},
    )
    return broker


class QueueRunner:
    """Rows sent as messages to the broker's queue, for ``econtract worker`` processes."""

    def __init__(self, settings: Settings) -> None:
        self._broker = make_broker(settings)

    def start(self) -> None:
        """Nothing to start: the workers run elsewhere."""

    def submit(self, batch_id: str, rows: Sequence[int]) -> None:
        """Send one message per row."""
        actor = self._broker.get_actor(ACTOR_NAME)
        for row in rows:
            actor.send(batch_id, row)

    def stop(self) -> None:
        """Close the broker's connections."""
        self._broker.close()


# The worker process's services, opened by run_worker before it takes any message.
_worker_services: Services | None = None


def _issue_row(batch_id: str, row: int) -> None:
    assert _worker_services is not None, "not in a worker process"
    try:
        process_row(_worker_services, batch_id=batch_id, row=row)
    except NotFoundError:
        # A message about a batch this registry does not hold (another deployment's queue).
        log.error("batch row unknown", extra={"batch": batch_id, "row": row})
    # RowBusyError and any other error go back to the broker, which delivers the row again.


def run_worker(services: Services, *, threads: int) -> None:
    """Process batch rows from the broker with ``services`` until SIGTERM or SIGINT."""
    import dramatiq  # noqa: PLC0415

    global _worker_services  # noqa: PLW0603 - one worker's services per process
    settings = services.settings
    if not settings.broker_url:
        raise EContractError("No broker is configured: set ECONTRACT_BROKER_URL.")
    _worker_services = services
    broker = make_broker(settings)
    worker = dramatiq.Worker(broker, queues={settings.batch_queue}, worker_threads=threads)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    worker.start()
    log.info("worker started", extra={"queue": settings.batch_queue, "threads": threads})
    try:
        stop.wait()
    finally:
        worker.stop()
        broker.close()
