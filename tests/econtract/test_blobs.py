"""The blob store as the service holds it, and the caches that belong to one Services."""

from __future__ import annotations

import gc
import hashlib
import weakref
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from econtract.blobs import DiskBlobStore
from econtract.bootstrap import initialise
from econtract.config import Settings
from econtract.errors import NotFoundError
from econtract.models import Department, Seal
from econtract.sealing import seal_identity
from econtract.services import Services
from econtract.verification import is_seal_of_service
from tests.licences import issue_example


def official_seal(services: Services) -> tuple[Seal, Department]:
    """The demo department's official seal and its department, detached from any session."""
    with services.sessions() as session:
        seal = session.scalars(select(Seal).where(Seal.kind == "official")).one()
        department = session.get(Department, seal.department_id)
        assert department is not None
    return seal, department


def settings_in(directory: Path) -> Settings:
    """A registry of its own, with its own PKI, under ``directory``."""
    return Settings(_env_file=None, data_dir=directory, key_passphrase="test-passphrase-0123")


def test_the_service_keeps_its_blobs_on_disk_by_default(initialised: Services) -> None:
    assert initialised.settings.blob_store == "disk"
    assert initialised.blobs == DiskBlobStore(initialised.settings.blob_dir)
    assert initialised.blobs is initialised.blobs


def test_a_stored_licence_is_read_through_the_store(initialised: Services) -> None:
    certificate = issue_example(initialised)
    with initialised.blobs.open(certificate.blob_key) as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == certificate.pdf_sha256


@pytest.mark.parametrize("key", ["00/missing.pdf", "../econtract.db", "tmp/x.part"])
def test_reading_a_key_the_store_does_not_hold_is_not_found(
    initialised: Services, key: str
) -> None:
    with pytest.raises(NotFoundError, match="stored document is missing"):
        initialised.blobs.open(key)


def test_a_new_services_never_inherits_a_collected_ones_seal_identity_or_seals(
    tmp_path: Path,
) -> None:
    first = Services(settings=settings_in(tmp_path / "first"))
    initialise(first)
    first_seal, first_department = official_seal(first)
    first_certificate = seal_identity(first, first_seal, first_department).certificate
    first_fingerprint = hashlib.sha256(first_seal.certificate_der).hexdigest()
    assert is_seal_of_service(first, first_fingerprint)
    first.dispose()
    collected = weakref.ref(first)
    del first
    gc.collect()
    assert collected() is None

    # Python may hand the collected object's id() to a later one: a cache keyed by id() served
    # the first registry's seals to such a successor.
    second = Services(settings=settings_in(tmp_path / "second"))
    initialise(second)
    try:
        seal, department = official_seal(second)
        # The same seal id in both registries: only the cache's owner tells them apart.
        seal.id = first_seal.id
        identity = seal_identity(second, seal, department)
        assert identity.certificate == x509.load_der_x509_certificate(seal.certificate_der)
        assert identity.certificate != first_certificate
        assert identity.chain[-1].public_bytes(Encoding.DER) == (
            second.pki.root.certificate.public_bytes(Encoding.DER)
        )
        assert not is_seal_of_service(second, first_fingerprint)
    finally:
        second.dispose()


class _CommitFailedError(Exception):
    """Stands for a commit whose outcome is unknown."""


def test_a_staged_blob_whose_transaction_never_committed_is_discarded(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    with store.staging() as staged:
        staged.file.write(b"%PDF-1.7 never registered")
    assert not list(store.staging_dir.iterdir())
    assert store.stored_keys() == []


def test_a_staged_blob_is_published_once_its_transaction_committed(tmp_path: Path) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    data = b"%PDF-1.7 registered"
    with store.staging() as staged:
        staged.file.write(data)
        key = staged.finish().key
        staged.committing()
    assert store.stored_keys() == [key]
    with store.open(key) as stored:
        assert stored.read() == data
    assert not list(store.staging_dir.iterdir())


def test_a_failure_during_the_commit_leaves_the_staged_file_for_the_sweep(
    tmp_path: Path,
) -> None:
    store = DiskBlobStore(tmp_path / "blobs")
    staged = store.staging()

    def commit_that_fails() -> None:
        with staged:
            staged.file.write(b"%PDF-1.7 commit outcome unknown")
            staged.committing()
            raise _CommitFailedError("outcome unknown")

    with pytest.raises(_CommitFailedError, match="outcome unknown"):
        commit_that_fails()
    assert staged.file.closed
    assert [p.name for p in store.staging_dir.iterdir()] == [staged.temp_path.name]
    assert store.stored_keys() == []
