"""A crash never leaves a sealed licence the registry does not know, nor a licence without its PDF.

The blob store shows a sealed file only after its registry transaction committed; every start
sweeps what dead writers left in the staging directory. The end-to-end test kills
``econtract serve`` with SIGKILL while it issues, restarts it, and checks both directions on the
store and the registry; a file sealed with the service's seal that the registry never recorded
is UNKNOWN to ``POST /v1/verify`` and to ``econtract verify``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from econtract import db
from econtract.blobs import DiskBlobStore, content_key, sweep_staged
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, initialise
from econtract.clients import create_client
from econtract.config import Settings
from econtract.models import Certificate, Seal
from econtract.sealing import seal_document
from econtract.services import Services
from econtract.translog._tables import LogLeaf
from signing.options import SealLevel, SealOptions
from tests.factories import OPERATOR
from tests.licences import holder_fields, issue_example, seal_outside_the_registry
from tests.live import free_port
from tests.signing.sealing import make_pdf

ECONTRACT = str(Path(sys.executable).with_name("econtract"))
PASSPHRASE = "test-passphrase-0123"


# --- the staged blob and the sweep -------------------------------------------------------------


def test_a_staged_file_is_invisible_until_published(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    staged = store.staging()
    staged.file.write(b"%PDF-1.7 sealed")
    finished = staged.finish()
    assert store.stored_keys() == []
    assert finished.key == content_key(hashlib.sha256(b"%PDF-1.7 sealed").hexdigest())
    assert staged.publish()
    assert store.stored_keys() == [finished.key]
    assert list(store.staging_dir.iterdir()) == []


def test_the_staging_directory_is_never_served(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    staged = store.staging()
    staged.file.write(b"in flight")
    staged.file.flush()
    with pytest.raises(Exception, match="missing"):
        store.path(f"tmp/{staged.temp_path.name}")
    staged.discard()


def abandoned(store: DiskBlobStore, content: bytes) -> Path:
    """A staged file whose writer died: written, then its lock released with no publish."""
    staged = store.staging()
    staged.file.write(content)
    staged.finish()
    staged.file.close()  # what the kernel does for a killed process
    return staged.temp_path


def test_the_sweep_publishes_a_registered_leftover_and_removes_the_rest(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    registered = abandoned(store, b"registered")
    orphan = abandoned(store, b"never registered")
    known = {hashlib.sha256(b"registered").hexdigest()}
    report = sweep_staged(store, known.__contains__)
    assert report.published == (content_key(hashlib.sha256(b"registered").hexdigest()),)
    assert report.removed == 1
    assert store.stored_keys() == list(report.published)
    assert not registered.exists()
    assert not orphan.exists()


def test_the_sweep_leaves_a_file_being_written_alone(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    staged = store.staging()
    staged.file.write(b"half a licence")
    report = sweep_staged(store, lambda _: False)
    assert report.in_flight == 1
    assert staged.temp_path.exists()
    staged.file.write(b" and the rest")
    staged.finish()
    assert staged.publish()


def disk_store(services: Services) -> DiskBlobStore:
    """The service's own blob store, which these tests know to be on disk."""
    store = services.blobs
    assert isinstance(store, DiskBlobStore)
    return store


def test_a_licence_registered_but_not_yet_moved_is_restored_at_start(
    initialised: Services,
) -> None:
    """A crash between the commit and the rename: the start-up sweep finishes the rename."""
    certificate = issue_example(initialised)
    store = disk_store(initialised)
    stored = initialised.settings.blob_dir / certificate.blob_key
    shutil.move(stored, store.staging_dir / "dead-writer.part")
    report = initialise(initialised)
    assert report.sweep.published == (certificate.blob_key,)
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == certificate.pdf_sha256


def test_a_sealed_document_registered_but_not_yet_moved_is_restored_at_start(
    initialised: Services,
) -> None:
    with initialised.sessions() as session:
        seal_id = session.scalars(select(Seal.id).where(Seal.kind == "official")).one()
    sealed = seal_document(
        initialised,
        source=io.BytesIO(make_pdf()),
        seal_id=seal_id,
        options=SealOptions(level=SealLevel.B_B),
        actor=OPERATOR,
    ).document
    stored = initialised.settings.blob_dir / sealed.blob_key
    shutil.move(stored, disk_store(initialised).staging_dir / "x.part")
    assert initialise(initialised).sweep.published == (sealed.blob_key,)
    assert sha256_of(stored) == sealed.pdf_sha256


# --- kill -9 of econtract serve while it issues --------------------------------------------------


@contextmanager
def running_server(
    settings: Settings, port: int, **extra_env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``econtract serve`` on the test's data directory and database, ready to answer
    (``extra_env``: more ``ECONTRACT_*`` settings)."""
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(settings.data_dir),
        "ECONTRACT_DATABASE_URL": settings.effective_database_url,
        "ECONTRACT_KEY_PASSPHRASE": PASSPHRASE,
        "ECONTRACT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        **extra_env,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    server = subprocess.Popen(
        [ECONTRACT, "serve", "--port", str(port)],
        env=env,
        cwd=settings.data_dir.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "the server stopped while starting"
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.3)
        yield server
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def audit(base: str, action: str, store: Path) -> subprocess.CompletedProcess[str]:
    """``econtract audit fetch|check`` against the service at ``base``."""
    return subprocess.run(
        [ECONTRACT, "audit", action, "--url", base, "--store", str(store)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for_a_head_covering_the_log(base: str, services: Services) -> None:
    """Wait until the service's latest signed tree head covers every log entry."""
    with services.sessions() as session:
        leaves = session.scalar(select(func.count()).select_from(LogLeaf))
    deadline = time.monotonic() + 30
    while (sth := httpx.get(f"{base}/log/sth").json())["tree_size"] < (leaves or 0):
        assert time.monotonic() < deadline, f"no tree head covers the {leaves} entries: {sth}"
        time.sleep(0.3)


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_kill_9_during_concurrent_issuance_leaves_store_and_registry_in_step(
    initialised: Services, tmp_path: Path
) -> None:
    settings = initialised.settings
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session,
            department_code=DEMO_DEPARTMENT_CODE,
            name="crash",
            scopes="issue,read",
            actor=OPERATOR,
        )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # What each request asks for, by its Idempotency-Key: a retry sends the same again.
    asked = {str(uuid.uuid4()): holder_fields() for _ in range(30)}
    answered: dict[str, str] = {}
    enough = threading.Event()

    def issue(http: httpx.Client, token: str, key: str) -> httpx.Response:
        return http.post(
            f"{base}/v1/certificates",
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
            json={"type": "business_licence", "fields": asked[key]},
            timeout=60,
        )

    def issue_one(http: httpx.Client, token: str, key: str) -> None:
        try:
            response = issue(http, token, key)
        except httpx.HTTPError:
            return  # the server died under this request
        if response.status_code == 201:
            answered[key] = response.json()["id"]
            if len(answered) >= 4:
                enough.set()

    # Tree heads every second: the audit at the end sees every entry.
    sth_every_second = {"ECONTRACT_LOG_STH_SECONDS": "1"}
    audit_store = tmp_path / "audit"
    with running_server(settings, port, **sth_every_second) as server:
        token = httpx.post(
            f"{base}/v1/token", data={"grant_type": "client_credentials"}, auth=(client.id, secret)
        ).json()["access_token"]
        # The first tree head is published by the server's thread shortly after start (a busy
        # machine may answer /readyz first): the auditor starts from it.
        for _ in range(200):
            if httpx.get(f"{base}/log/sth", timeout=5).status_code == 200:
                break
            time.sleep(0.05)
        assert audit(base, "fetch", audit_store).returncode == 0
        with httpx.Client() as http, ThreadPoolExecutor(max_workers=30) as pool:
            for key in asked:
                pool.submit(issue_one, http, token, key)
            # Kill while most of the 30 are still in flight: some sealing, some committing.
            assert enough.wait(timeout=120), "no issuance answered"
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=30)
    assert 4 <= len(answered) < 30
    # The kill caught issuances in flight: they left staged files behind.
    assert list(disk_store(initialised).staging_dir.iterdir())

    # The restart's sweep runs before it serves.
    with running_server(settings, port, **sth_every_second):
        store = disk_store(initialised)
        with initialised.sessions() as session:
            certificates = session.scalars(select(Certificate)).all()
        by_key = {c.blob_key: c for c in certificates}
        # Every visible blob is a committed certificate's, byte for byte ...
        for key in store.stored_keys():
            assert key in by_key, f"{key} is in the store but no certificate has it"
            assert sha256_of(settings.blob_dir / key) == by_key[key].pdf_sha256
        # ... every certificate has its blob ...
        for certificate in certificates:
            assert sha256_of(settings.blob_dir / certificate.blob_key) == certificate.pdf_sha256
        # ... every licence the server answered for is registered, and nothing is left staged.
        assert set(answered.values()) <= {c.id for c in certificates}
        assert [p.name for p in store.staging_dir.iterdir()] == []

        # Every request retried with its key converges on one licence: an answered one, or
        # one the kill caught after its commit, is replayed; the others are issued now.
        with httpx.Client() as http, ThreadPoolExecutor(max_workers=8) as pool:
            retried = {}
            for key, response in zip(
                asked, pool.map(lambda key: issue(http, token, key), asked), strict=True
            ):
                assert response.status_code in (200, 201), response.text
                retried[key] = response.json()["id"]
            assert all(issue(http, token, key).json()["id"] == retried[key] for key in answered)
        assert {key: retried[key] for key in answered} == answered
        with initialised.sessions() as session:
            assert sorted(session.scalars(select(Certificate.id))) == sorted(retried.values())
        assert len(set(retried.values())) == len(asked)
        # The log holds every licence, consistent with the head taken before the kill.
        wait_for_a_head_covering_the_log(base, initialised)
        checked = audit(base, "check", audit_store)
        assert checked.returncode == 0, checked.stdout + checked.stderr

        # A file sealed with the service's seal that the registry never recorded is UNKNOWN.
        orphan = seal_outside_the_registry(initialised)
        report = httpx.post(
            f"{base}/v1/verify", files={"file": ("orphan.pdf", orphan, "application/pdf")}
        ).json()
        assert report["verdict"] == "UNKNOWN"
        assert report["reasons"][0]["code"] == "sealed-here-not-registered"
    (tmp_path / "orphan.pdf").write_bytes(orphan)
    done = subprocess.run(
        [ECONTRACT, "verify", str(tmp_path / "orphan.pdf"), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **os.environ,
            "ECONTRACT_DATA_DIR": str(settings.data_dir),
            "ECONTRACT_DATABASE_URL": settings.effective_database_url,
            "ECONTRACT_KEY_PASSPHRASE": PASSPHRASE,
        },
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["verdict"] == "UNKNOWN"
