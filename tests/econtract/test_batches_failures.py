"""A batch always ends: a row whose issuance keeps raising is failed after its last attempt,
and rows whose messages never reached the broker, or were lost there, are sent again.

The error is injected into the runner's call of ``process_row`` (an exception raised every
time, as a bug or a missing piece would); the queue tests run on the machine's Redis, with
real ``econtract worker`` processes where the workers' own start and sweep are the subject.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from econtract.batches import (
    ACTOR_NAME,
    ROW_ERROR_CODE,
    QueueRunner,
    ThreadRunner,
    make_broker,
    resend_rows,
    start_worker,
)
from econtract.batches import _runners as runners
from econtract.batches import process_row as process_row_of_store
from econtract.models import BatchRow
from econtract.services import Services
from routes.batches import row_public
from tests.econtract.test_batches_queue import (
    REDIS_URL,
    certificates,
    one_certificate_per_row,
    row_states,
    submit,
    workers,
)

#: Text the injected error carries, as an error quoting a row's fields would.
PERSONAL = "张三 330102199001011234"


def wait_until_done(services: Services, batch_id: str, seconds: float = 120) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while (states := row_states(services, batch_id)).get("queued", 0):
        assert time.monotonic() < deadline, states
        time.sleep(0.1)
    return states


@pytest.fixture
def row_3_always_raises(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Row 3 of every batch raises an unexpected error each time; the attempts at it."""
    attempts: list[int] = []
    real = process_row_of_store

    def process_row(services: Services, *, batch_id: str, row: int) -> str:
        if row == 3:
            attempts.append(row)
            raise RuntimeError(f"cannot issue for {PERSONAL}")
        return real(services, batch_id=batch_id, row=row)

    monkeypatch.setattr(runners, "process_row", process_row)
    return attempts


def failed_row(services: Services, batch_id: str) -> dict[str, Any]:
    with services.sessions() as session:
        row = session.get(BatchRow, (batch_id, 3))
        assert row is not None
        return row_public(row).model_dump()


def test_a_row_that_keeps_raising_in_the_thread_pool_fails_after_its_last_attempt(
    initialised: Services, row_3_always_raises: list[int]
) -> None:
    runner = ThreadRunner(initialised, threads=2, attempts=3, first_backoff_seconds=0.01)
    runner.start()  # before the batch: a start resumes the queued rows
    try:
        batch_id = submit(initialised, 4)
        runner.submit(batch_id, [1, 2, 3, 4])
        states = wait_until_done(initialised, batch_id)
    finally:
        runner.stop()
    assert states == {"issued": 3, "failed": 1}
    assert len(row_3_always_raises) == 3
    row = failed_row(initialised, batch_id)
    assert row["state"] == "failed"
    assert row["certificate_id"] is None
    [error] = row["errors"]
    assert error["code"] == ROW_ERROR_CODE
    assert error["pointer"] == "/"
    assert "3 attempts failed (RuntimeError)" in error["message"]
    # Neither the error's text (it may quote the row) nor a stack reaches the results.
    assert "张三" not in error["message"]
    assert "Traceback" not in error["message"]
    assert certificates(initialised) == 3


@pytest.fixture
def queue_services(initialised: Services) -> Iterator[Services]:
    """The initialised registry's services with a broker on a queue of the test's own."""
    settings = initialised.settings.model_copy(
        update={
            "broker_url": REDIS_URL,
            "batch_queue": f"econtract-test-{uuid.uuid4().hex[:12]}",
            "batch_row_attempts": 2,
        }
    )
    services = Services(settings=settings)
    yield services
    broker = make_broker(settings)
    broker.flush(settings.batch_queue)  # type: ignore[no-untyped-call]
    broker.close()  # type: ignore[no-untyped-call]
    services.dispose()


def test_a_row_that_keeps_raising_on_the_queue_fails_after_dramatiq_s_last_retry(
    queue_services: Services, row_3_always_raises: list[int]
) -> None:
    batch_id = submit(queue_services, 4)
    runner = QueueRunner(queue_services)
    stop = start_worker(queue_services, threads=2)
    try:
        runner.submit(batch_id, [1, 2, 3, 4])
        states = wait_until_done(queue_services, batch_id, seconds=60)
    finally:
        stop()
        runner.stop()
    assert states == {"issued": 3, "failed": 1}
    assert len(row_3_always_raises) == 2  # ECONTRACT_BATCH_ROW_ATTEMPTS
    [error] = failed_row(queue_services, batch_id)["errors"]
    assert error["code"] == ROW_ERROR_CODE
    assert "2 attempts failed (RuntimeError)" in error["message"]
    assert "张三" not in error["message"]
    assert certificates(queue_services) == 3


@pytest.mark.slow
def test_rows_committed_but_never_sent_are_sent_by_the_workers_sweep(
    queue_services: Services,
) -> None:
    """The process died between the batch's commit and its messages (no send at all)."""
    settings = queue_services.settings
    batch_id = submit(queue_services, 4)
    with workers(settings, 2, settings.batch_queue, ECONTRACT_BATCH_RESEND_SECONDS="1"):
        states = wait_until_done(queue_services, batch_id, seconds=60)
    assert states == {"issued": 4}
    one_certificate_per_row(queue_services, batch_id, 4)


@pytest.mark.slow
def test_messages_lost_by_the_broker_are_sent_again_once_no_row_moves(
    queue_services: Services,
) -> None:
    settings = queue_services.settings.model_copy(update={"batch_resend_seconds": 0.5})
    services = Services(settings=settings)
    runner = QueueRunner(services)
    broker = make_broker(settings)
    actor = broker.get_actor(ACTOR_NAME)  # type: ignore[no-untyped-call]
    client = getattr(broker, "client")  # noqa: B009 - RedisBroker's

    def send(batch_id: str, row: int) -> None:
        actor.send(batch_id, row)

    try:
        batch_id = submit(services, 4)
        runner.submit(batch_id, [1, 2, 3, 4])
        # The broker loses every message.
        broker.flush(settings.batch_queue)  # type: ignore[no-untyped-call]
        # Sent and marked a moment ago: nothing is sent again yet.
        assert resend_rows(services, client, send) == 0
        time.sleep(0.6)
        assert resend_rows(services, client, send) == 4
        # The sweep marked what it sent: a second sweep right after adds nothing.
        assert resend_rows(services, client, send) == 0
        with workers(settings, 2, settings.batch_queue):
            states = wait_until_done(services, batch_id, seconds=60)
    finally:
        broker.close()  # type: ignore[no-untyped-call]
        runner.stop()
        services.dispose()
    assert states == {"issued": 4}
    one_certificate_per_row(services, batch_id, 4)
