"""Faults of what the service stands on: the database stops, the disk fills.

Either way the caller gets a problem it can act on (503 with ``Retry-After``, 507), never a 500
or a hang; the registry never holds a row without its blob and its log entry, the store never a
file the registry does not know; and the service carries on once the fault is gone, with no
restart. The tests use the real things: a PostgreSQL cluster of their own that they stop and
start, a tmpfs that fills up.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract.blobs import DiskBlobStore
from econtract.models import Certificate, Seal, SealedDocument
from econtract.services import Services
from tests.econtract.test_crash import sha256_of
from tests.factories import token_for
from tests.licences import holder_fields
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
