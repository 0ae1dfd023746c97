"""The bounded verification pool: a few uploads verified at once, a few waiting, the rest
refused at once with 503 and Retry-After, and the QR page answering all the while."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient

from api import create_app
from econtract.config import Settings
from econtract.services import Services
from tests.licences import issue_example, qr_token
from verify.limits import VerificationBusyError, VerificationPool


@contextmanager
def held(client: TestClient, pool: VerificationPool, jobs: int) -> Iterator[None]:
    """Give the pool ``jobs`` verifications that last until the block ends (the first ones
    run, the others wait), as slow uploads would."""
    release = threading.Event()
    assert client.portal is not None
    futures: list[Future[bool]] = [
        client.portal.start_task_soon(pool.run, release.wait, 30) for _ in range(jobs)
    ]
    try:
        for _ in range(100):
            if pool.admitted == jobs:
                break
            threading.Event().wait(0.01)
        assert pool.admitted == jobs
        yield
    finally:
        release.set()
        for future in futures:
            assert future.result(timeout=30) is True


@pytest.fixture
def small_pool_client(initialised: Services) -> Iterator[TestClient]:
    """The API with one verification worker and a queue of one."""
    settings = Settings(
        **(initialised.settings.model_dump() | {"verify_workers": 1, "verify_queue": 1}),
        _env_file=None,
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_an_upload_beyond_the_workers_and_the_queue_is_refused_with_retry_after(
    small_pool_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    pdf = (initialised.settings.blob_dir / certificate.blob_key).read_bytes()
    pool: VerificationPool = small_pool_client.app.state.verification_pool  # type: ignore[attr-defined]
    assert (pool.workers, pool.queue) == (1, 1)
    with held(small_pool_client, pool, 2):
        refused = small_pool_client.post(
            "/v1/verify", files={"file": ("x.pdf", pdf, "application/pdf")}
        )
        assert refused.status_code == 503
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "urn:econtract:problem:verification-busy"
        assert int(refused.headers["retry-after"]) >= 1
    # Once the pool has room again the same upload is verified.
    answered = small_pool_client.post(
        "/v1/verify", files={"file": ("x.pdf", pdf, "application/pdf")}
    )
    assert answered.status_code == 200
    assert answered.json()["verdict"] == "VALID"
    assert pool.admitted == 0


def test_a_full_pool_refuses_an_upload_before_its_body_is_read(
    small_pool_client: TestClient,
) -> None:
    pool: VerificationPool = small_pool_client.app.state.verification_pool  # type: ignore[attr-defined]
    # A body no multipart parser accepts: had it been read, the answer would be a 4xx about it.
    garbage = b"--not-a-boundary\r\n" * 1000
    headers = {"Content-Type": "multipart/form-data; boundary=x"}
    with held(small_pool_client, pool, 2):
        refused = small_pool_client.post("/v1/verify", content=garbage, headers=headers)
        assert refused.status_code == 503
        assert refused.json()["type"] == "urn:econtract:problem:verification-busy"
        assert int(refused.headers["retry-after"]) >= 1
        # The whole body was drained: the client may retry on the same connection.
        assert "connection" not in refused.headers
    assert small_pool_client.post("/v1/verify", content=garbage, headers=headers).status_code in (
        400,
        422,
    )


def test_the_qr_page_answers_while_every_verification_worker_is_busy(
    small_pool_client: TestClient, initialised: Services
) -> None:
    certificate = issue_example(initialised)
    pool: VerificationPool = small_pool_client.app.state.verification_pool  # type: ignore[attr-defined]
    with held(small_pool_client, pool, 2):
        page = small_pool_client.get(
            f"/v/{qr_token(initialised, certificate)}", headers={"Accept": "application/json"}
        )
    assert page.status_code == 200
    assert page.json()["verdict"] == "VALID"


def test_the_pool_size_comes_from_the_settings_and_the_queue_defaults_to_twice_it(
    initialised: Services,
) -> None:
    settings = Settings(
        **(initialised.settings.model_dump() | {"verify_workers": 3}),
        _env_file=None,
    )
    pool: VerificationPool = create_app(settings).state.verification_pool
    assert (pool.workers, pool.queue) == (3, 6)


def test_a_full_pool_refuses_at_once_and_a_cancelled_waiter_frees_its_place() -> None:
    async def scenario() -> None:
        pool = VerificationPool(workers=1, queue=1)
        release = threading.Event()
        ran: list[str] = []

        def job(name: str) -> str:
            ran.append(name)
            release.wait(30)
            return name

        running = asyncio.create_task(pool.run(job, "running"))
        waiting = asyncio.create_task(pool.run(job, "waiting"))
        await asyncio.sleep(0.05)
        with pytest.raises(VerificationBusyError, match="try again") as refused:
            await pool.run(job, "refused")
        assert refused.value.retry_after >= 1
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pool.admitted == 1
        # The place the cancelled upload held is free: another may wait in it.
        replacement = asyncio.create_task(pool.run(job, "replacement"))
        await asyncio.sleep(0.05)
        release.set()
        assert await running == "running"
        assert await replacement == "replacement"
        assert ran == ["running", "replacement"]
        assert pool.admitted == 0
        pool.shutdown()

    asyncio.run(scenario())


def test_a_pool_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        VerificationPool(workers=0, queue=1)
