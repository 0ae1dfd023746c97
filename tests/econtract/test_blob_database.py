"""The database blob store: sealed PDFs as registry rows, visible only with their transaction,
read slice by slice; and moving blobs between the stores."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract import db
from econtract.backup import backup, restore
from econtract.blobs import READ_CHUNK, DatabaseBlobStore, DiskBlobStore, content_key
from econtract.blobs._model import Blob
from econtract.bootstrap import initialise
from econtract.cli import run
from econtract.config import Settings, get_settings
from econtract.errors import NotFoundError
from econtract.models import Seal, SealedDocument, new_public_id
from econtract.services import Services

# The fixture of an empty data directory and database to restore into.
from tests.econtract.test_backup import target as restore_target  # noqa: F401
from tests.factories import token_for
from tests.licences import issue_example


@pytest.fixture
def in_database(settings: Settings) -> Services:
    """Initialised services keeping their blobs in the registry."""
    services = Services(settings=settings.model_copy(update={"blob_store": "database"}))
    initialise(services)
    return services


def blob_rows(services: Services) -> int:
    with services.sessions() as session:
        return session.scalar(select(func.count()).select_from(Blob)) or 0


def test_the_database_store_keeps_an_issued_licence_in_the_registry(
    in_database: Services,
) -> None:
    assert isinstance(in_database.blobs, DatabaseBlobStore)
    certificate = issue_example(in_database)
    with in_database.blobs.open(certificate.blob_key) as stored:
        pdf = stored.read()
    assert hashlib.sha256(pdf).hexdigest() == certificate.pdf_sha256
    assert pdf.startswith(b"%PDF-")
    assert not DiskBlobStore(in_database.settings.blob_dir).stored_keys()


def test_a_rolled_back_transaction_leaves_no_blob(in_database: Services) -> None:
    before = blob_rows(in_database)

    def register_then_fail(key: str, sha256: str) -> None:
        with db.transaction(in_database.sessions) as session:
            session.add(_document_row(in_database, key, sha256))
            session.flush()
            # Inside the transaction the row is there, beside the one that records it.
            assert session.get(Blob, key) is not None
            raise RuntimeError("refused")

    with in_database.blobs.staging() as staged:
        staged.file.write(b"%PDF-1.7 never registered")
        finished = staged.finish()
        with pytest.raises(RuntimeError, match="refused"):
            register_then_fail(finished.key, finished.sha256)
    assert blob_rows(in_database) == before
    with pytest.raises(NotFoundError, match="stored document is missing"):
        in_database.blobs.open(finished.key)


def test_a_staged_blob_nothing_records_is_never_stored(in_database: Services) -> None:
    before = blob_rows(in_database)
    with in_database.blobs.staging() as staged:
        staged.file.write(b"%PDF-1.7 finished, not recorded")
        staged.finish()
        staged.committing()
    assert blob_rows(in_database) == before
    # The staged file had no name to leave behind.
    assert not list((in_database.settings.data_dir / "tmp").iterdir())


def test_reading_a_blob_goes_slice_by_slice(in_database: Services) -> None:
    content = os.urandom(READ_CHUNK * 2 + 123)
    sha = hashlib.sha256(content).hexdigest()
    with in_database.blobs.staging() as staged:
        staged.file.write(content)
        staged.finish()
        with db.transaction(in_database.sessions) as session:
            session.add(_document_row(in_database, content_key(sha), sha))
        staged.committing()
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    from sqlalchemy import event  # noqa: PLC0415

    event.listen(in_database.engine, "before_cursor_execute", record)
    try:
        with in_database.blobs.open(content_key(sha)) as stored:
            first = stored.read(10)
            rest = stored.read()
    finally:
        event.remove(in_database.engine, "before_cursor_execute", record)
    assert first + rest == content
    slices = [s for s in statements if "substr" in s]
    assert len(slices) == 3


def test_a_download_from_the_database_store_says_its_length(in_database: Services) -> None:
    from api import create_app  # noqa: PLC0415

    certificate = issue_example(in_database)
    with TestClient(create_app(in_database.settings)) as client:
        token = token_for(client, in_database, scopes="read")
        response = client.get(
            f"/v1/certificates/{certificate.id}/pdf",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == certificate.pdf_sha256
    assert response.headers["content-length"] == str(len(response.content))


def test_reading_a_missing_key_is_not_found(in_database: Services) -> None:
    with pytest.raises(NotFoundError, match="stored document is missing"):
        in_database.blobs.open("00/" + "0" * 64 + ".pdf")


def test_migrate_moves_every_blob_both_ways_and_is_idempotent(
    initialised: Services,
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    certificates = [issue_example(initialised) for _ in range(2)]
    assert run(["blobs", "migrate", "--to", "database"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "2 blobs checked: 2 copied to the database store, 0 already there."
    ]
    assert run(["blobs", "migrate", "--to", "database"]) == 0
    assert "0 copied to the database store, 2 already there." in capsys.readouterr().out
    settings = initialised.settings
    in_db = Services(settings=settings.model_copy(update={"blob_store": "database"}))
    for certificate in certificates:
        with in_db.blobs.open(certificate.blob_key) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == certificate.pdf_sha256
        (settings.blob_dir / certificate.blob_key).unlink()
    in_db.dispose()

    monkeypatch.setenv("ECONTRACT_BLOB_STORE", "database")
    get_settings.cache_clear()
    assert run(["blobs", "migrate", "--to", "disk"]) == 0
    assert "2 copied to the disk store" in capsys.readouterr().out
    for certificate in certificates:
        on_disk = (settings.blob_dir / certificate.blob_key).read_bytes()
        assert hashlib.sha256(on_disk).hexdigest() == certificate.pdf_sha256


def test_migrate_refuses_a_changed_blob_naming_it(
    initialised: Services, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    certificate = issue_example(initialised)
    path = initialised.settings.blob_dir / certificate.blob_key
    path.write_bytes(path.read_bytes() + b"%tampered")
    assert run(["blobs", "migrate", "--to", "database"]) == 1
    err = capsys.readouterr().err
    assert f"The blob {certificate.blob_key} has changed in the disk store" in err
    assert blob_rows(initialised) == 0


def test_migrate_refuses_a_missing_blob_naming_it(
    initialised: Services, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    certificate = issue_example(initialised)
    (initialised.settings.blob_dir / certificate.blob_key).unlink()
    assert run(["blobs", "migrate", "--to", "database"]) == 1
    assert (
        f"error: The blob {certificate.blob_key} is missing from the disk store."
        in capsys.readouterr().err
    )


def test_a_backup_of_the_database_store_carries_its_blobs_in_the_registry(
    in_database: Services,
    restore_target: Settings,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    certificate = issue_example(in_database)
    snapshot = tmp_path / "snapshot"
    backup(in_database.settings, snapshot)
    # The blobs are rows of the registry's snapshot, not files beside it.
    assert not (snapshot / "blobs").exists()
    restored_settings = restore_target.model_copy(update={"blob_store": "database"})
    restore(restored_settings, snapshot)
    restored = Services(settings=restored_settings)
    try:
        with restored.blobs.open(certificate.blob_key) as stored:
            assert hashlib.sha256(stored.read()).hexdigest() == certificate.pdf_sha256
    finally:
        restored.dispose()


def _document_row(services: Services, key: str, sha256: str) -> SealedDocument:
    """A sealed document's row recording the blob ``key`` (as the sealing use case writes)."""
    with services.sessions() as session:
        seal = session.scalars(select(Seal)).first()
        assert seal is not None
    return SealedDocument(
        id=new_public_id("doc"),
        department_id=seal.department_id,
        seal_id=seal.id,
        file_name=None,
        level="B-B",
        pdf_sha256=sha256,
        signed_digest=sha256,
        blob_key=key,
    )
