"""Faults of what the service stands on: the database stops, the disk fills.

Either way the caller gets a problem it can act on (503 with ``Retry-After``, 507), never a 500
or a hang; the registry never holds a row without its blob and its log entry, the store never a
file the registry does not know; and the service carries on once the fault is gone, with no
restart. The tests use the real things: a PostgreSQL cluster of their own that they stop and
start, a tmpfs that fills up.
"""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from econtract import db
from econtract.blobs import DiskBlobStore
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clients import create_client
from econtract.config import Settings
from econtract.models import Certificate, Seal, SealedDocument
from econtract.periodic import PeriodicThread
from econtract.services import Services
from econtract.translog._tables import LogLeaf
from tests.econtract.test_crash import (
    PASSPHRASE,
    audit,
    running_server,
    sha256_of,
    wait_for_a_head_covering_the_log,
)
from tests.factories import OPERATOR, token_for
from tests.licences import holder_fields, qr_token
from tests.live import free_port
from tests.signing.sealing import make_pdf

PROBLEM_JSON = "application/problem+json"


# --- the disk fills up ---------------------------------------------------------------------------


@pytest.fixture
def small_blob_disk(initialised: Services) -> Iterator[Path]:
    """The blob store on a 2 MiB tmpfs, all but 4 KiB taken by a filler file (yielded).

    Removing the filler makes room again. The file system is unmounted at the end.
    """
    blob_dir = initialised.settings.blob_dir
    blob_dir.mkdir(parents=True, exist_ok=True)
    assert not any(blob_dir.iterdir()), "the blob store is mounted over, so it starts empty"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(blob_dir)], check=True)
    try:
        filler = blob_dir / "filler"
        filler.write_bytes(b"\0" * (2 * 1024 * 1024 - 4 * 1024))
        yield filler
    finally:
        subprocess.run(["umount", str(blob_dir)], check=True)


def assert_nothing_stored(services: Services) -> None:
    """No registry row, no visible blob and no staged file."""
    store = services.blobs
    assert isinstance(store, DiskBlobStore)
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Certificate)) == 0
        assert session.scalar(select(func.count()).select_from(SealedDocument)) == 0
    assert store.stored_keys() == []
    assert list(store.staging_dir.iterdir()) == []


def assert_insufficient_storage(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == "urn:econtract:problem:insufficient-storage"


def test_a_full_disk_refuses_issuance_with_507_and_keeps_nothing(
    api_client: TestClient, initialised: Services, small_blob_disk: Path
) -> None:
    token = token_for(api_client, initialised, scopes="issue,read")
    key = str(uuid.uuid4())

    def issue() -> httpx.Response:
        response: httpx.Response = api_client.post(
            "/v1/certificates",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            json={"type": "business_licence", "fields": holder_fields()},
        )
        return response

    assert_insufficient_storage(issue())
    assert_nothing_stored(initialised)

    # Room again: the same request with the same key is issued, with its blob.
    small_blob_disk.unlink()
    issued = issue()
    assert issued.status_code == 201, issued.text
    with initialised.sessions() as session:
        certificate = session.scalars(select(Certificate)).one()
    assert certificate.id == issued.json()["id"]
    stored = initialised.settings.blob_dir / certificate.blob_key
    assert sha256_of(stored) == certificate.pdf_sha256


def test_a_full_disk_refuses_sealing_with_507_and_keeps_nothing(
    api_client: TestClient, initialised: Services, small_blob_disk: Path
) -> None:
    token = token_for(api_client, initialised, scopes="seal")
    with initialised.sessions() as session:
        seal_id = session.scalars(select(Seal.id).where(Seal.kind == "official")).one()
    pdf = make_pdf()

    def seal() -> httpx.Response:
        response: httpx.Response = api_client.post(
            "/v1/documents/seal",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("in.pdf", pdf, "application/pdf")},
            data={"seal": seal_id, "level": "B-LT"},
        )
        return response

    assert_insufficient_storage(seal())
    assert_nothing_stored(initialised)
    small_blob_disk.unlink()
    assert seal().status_code == 201


# --- background work outlives a failed step ------------------------------------------------------


class FailingOnce(PeriodicThread):
    """A step that fails the first time (the database restarting), then counts its calls."""

    def __init__(self) -> None:
        super().__init__(name="failing-once", tick_seconds=0.01, log=logging.getLogger("test"))
        self.calls = 0
        self.again = threading.Event()

    def step(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise OperationalError("SELECT 1", None, ConnectionRefusedError())
        self.again.set()


def test_a_periodic_thread_outlives_a_failed_step() -> None:
    """Tree heads and webhooks carry on once the database is back (the failure is logged)."""
    worker = FailingOnce()
    worker.start()
    try:
        assert worker.again.wait(timeout=10), "the thread ended with its failed step"
    finally:
        worker.stop()


# --- PostgreSQL stops and starts again -----------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    """A PostgreSQL cluster of the test's own (the shared server is never stopped)."""

    version: str
    name: str
    port: int

    @property
    def url(self) -> str:
        """The URL of its ``postgres`` database."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, action: str) -> None:
        """``pg_ctlcluster`` ``start`` or ``stop`` (fast: clients are disconnected at once)."""
        mode = ["--mode", "fast"] if action == "stop" else []
        subprocess.run(
            ["pg_ctlcluster", *mode, self.version, self.name, action],
            check=True,
            capture_output=True,
            timeout=60,
        )


@pytest.fixture
def own_cluster() -> Iterator[Cluster]:
    """A new, running PostgreSQL cluster on a free port, with trust authentication; dropped at
    the end."""
    version = max(os.listdir("/usr/lib/postgresql"), key=int)
    cluster = Cluster(version=version, name=f"faults{secrets.token_hex(4)}", port=free_port())
    create = ["pg_createcluster", version, cluster.name, "-p", str(cluster.port), "--start"]
    subprocess.run(
        [*create, "--", "--auth=trust"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield cluster
    finally:
        subprocess.run(
            ["pg_dropcluster", version, cluster.name, "--stop"],
            check=True,
            capture_output=True,
            timeout=120,
        )


class IssuingLoad:
    """Threads that issue licences one after another and keep every answer."""

    def __init__(self, base: str, token: str, threads: int = 3) -> None:
        self._base = base
        self._token = token
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.answers: list[httpx.Response] = []
        self.failures: list[BaseException] = []
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> IssuingLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def _run(self) -> None:
        with httpx.Client(base_url=self._base) as http:
            while not self._stop.is_set():
                try:
                    # The service's own request timeout is 30 s: no answer within 60 s is a hang.
                    response = issue_over(http, self._token, str(uuid.uuid4()), timeout=60)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.failures.append(exc)
                    continue
                with self._lock:
                    self.answers.append(response)
                if response.status_code != 201:
                    time.sleep(0.2)

    def count(self, status: int) -> int:
        """How many answers had ``status``."""
        with self._lock:
            return sum(1 for a in self.answers if a.status_code == status)

    def wait_for(self, status: int, more: int, *, timeout: float = 60) -> None:
        """Wait until ``more`` answers with ``status`` arrived after this call."""
        target = self.count(status) + more
        deadline = time.monotonic() + timeout
        while self.count(status) < target:
            assert time.monotonic() < deadline, f"fewer than {more} answers {status} came"
            time.sleep(0.1)


def issue_over(
    http: httpx.Client,
    token: str,
    key: str,
    *,
    fields: dict[str, Any] | None = None,
    timeout: float = 60,
) -> httpx.Response:
    """``POST /v1/certificates`` with ``key`` as its Idempotency-Key (a new holder's fields
    unless ``fields`` are given)."""
    return http.post(
        "/v1/certificates",
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        json={"type": "business_licence", "fields": fields or holder_fields()},
        timeout=timeout,
    )


def assert_database_unavailable(response: httpx.Response) -> None:
    """503 problem+json ``database-unavailable`` with a ``Retry-After``."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["type"] == "urn:econtract:problem:database-unavailable"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.slow
def test_postgresql_stopped_and_started_under_load_is_survived_without_a_restart(
    own_cluster: Cluster, tmp_path: Path
) -> None:
    settings = Settings(
        _env_file=None,
        data_dir=tmp_path / "var",
        database_url=own_cluster.url,
        key_passphrase=PASSPHRASE,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    audit_store = tmp_path / "audit"
    # Tree heads every second: the audit at the end sees the entries made after the outage.
    with running_server(settings, port, ECONTRACT_LOG_STH_SECONDS="1") as server:
        services = Services(settings=settings)
        try:
            with db.transaction(services.sessions) as session:
                client, secret = create_client(
                    session,
                    department_code=DEMO_DEPARTMENT_CODE,
                    name="faults",
                    scopes="issue,read",
                    actor=OPERATOR,
                )
            with httpx.Client(base_url=base) as http:
                token = http.post(
                    "/v1/token",
                    data={"grant_type": "client_credentials"},
                    auth=(client.id, secret),
                ).json()["access_token"]
                first = issue_over(http, token, str(uuid.uuid4()))
                assert first.status_code == 201, first.text
                with services.sessions() as session:
                    certificate = session.get(Certificate, first.json()["id"])
                    assert certificate is not None
                qr_page = f"/v/{qr_token(services, certificate)}"
                fetched = audit(base, "fetch", audit_store)
                assert fetched.returncode == 0, fetched.stdout + fetched.stderr

                with IssuingLoad(base, token) as load:
                    load.wait_for(201, 2)
                    own_cluster.ctl("stop")
                    # What needs the registry is refused, and said to be worth retrying.
                    load.wait_for(503, 3)
                    assert_database_unavailable(issue_over(http, token, str(uuid.uuid4())))
                    assert_database_unavailable(http.get(qr_page))
                    assert_database_unavailable(
                        http.get(
                            f"/v1/certificates/{certificate.id}",
                            headers={"Authorization": f"Bearer {token}"},
                        )
                    )
                    # Not ready, yet alive: an orchestrator routes around it, never restarts it.
                    assert http.get("/readyz").status_code == 503
                    assert http.get("/healthz").status_code == 200

                    own_cluster.ctl("start")
                    # Recovered with no restart: the pool reconnects by itself.
                    deadline = time.monotonic() + 30
                    while http.get("/readyz").status_code != 200:
                        assert time.monotonic() < deadline, "the service did not recover"
                        time.sleep(0.2)
                    key, fields = str(uuid.uuid4()), holder_fields()
                    again = issue_over(http, token, key, fields=fields)
                    assert again.status_code == 201, again.text
                    replayed = issue_over(http, token, key, fields=fields)
                    assert replayed.json()["id"] == again.json()["id"]
                    assert http.get(qr_page).status_code == 200
                    load.wait_for(201, 2)
                assert server.poll() is None, "the service was restarted"

                # Every answer was an issued licence or a 503 worth retrying: no 500, no hang.
                assert load.failures == []
                for answer in load.answers:
                    if answer.status_code != 201:
                        assert_database_unavailable(answer)
                issued = {a.json()["id"] for a in load.answers if a.status_code == 201}

            # Nothing half-written: every licence has its blob and its log entry.
            with services.sessions() as session:
                certificates = session.scalars(select(Certificate)).all()
                logged = set(session.scalars(select(LogLeaf.subject)))
            assert issued | {first.json()["id"], again.json()["id"]} <= {c.id for c in certificates}
            for each in certificates:
                assert sha256_of(settings.blob_dir / each.blob_key) == each.pdf_sha256
                assert each.id in logged
            store = services.blobs
            assert isinstance(store, DiskBlobStore)
            assert set(store.stored_keys()) <= {c.blob_key for c in certificates}
        finally:
            services.dispose()
        # The log is consistent with the head seen before the outage, and with a head that
        # covers every entry made since.
        wait_for_a_head_covering_the_log(base, services)
        checked = audit(base, "check", audit_store)
        assert checked.returncode == 0, checked.stdout + checked.stderr
