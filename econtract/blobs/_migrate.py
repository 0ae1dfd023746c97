"""``econtract blobs migrate``: copy every blob the registry records into the other store.

Each blob is checked against the SHA-256 its registry row records, read from the source and
again as the target holds it; each copy is committed on its own, so an interrupted run resumes
where it stopped, and a second run copies nothing. A blob missing from the source, or whose
bytes are not what the registry records, stops the run naming it: nothing unverified is ever
copied. The source is left as it was, for the operator to remove once the service runs on
the target store.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select

from econtract import db
from econtract.blobs import open_blob_store
from econtract.blobs._database import DatabaseBlobStore
from econtract.blobs._disk import BlobStore, DiskBlobStore, FinishedBlob
from econtract.config import Settings
from econtract.errors import ConflictError, NotFoundError
from econtract.models import Certificate, SealedDocument

StoreName = Literal["disk", "database"]


@dataclass(frozen=True)
class MigrationReport:
    """What a migration did."""

    target: StoreName
    """The store blobs were copied to."""
    copied: int
    """Blobs copied by this run."""
    present: int
    """Blobs the target held already, verified."""

    def summary(self) -> str:
        """The one line the command prints."""
        return (
            f"{self.copied + self.present} blobs checked: {self.copied} copied to the "
            f"{self.target} store, {self.present} already there."
        )


def migrate_blobs(settings: Settings, target: StoreName) -> MigrationReport:
    """Copy every blob the registry records from the other store into ``target``."""
    source: StoreName = "disk" if target == "database" else "database"
    engine = db.make_engine(settings.effective_database_url)
    sessions = db.session_factory(engine)
    try:
        with sessions() as session:
            recorded = sorted(
                {
                    (key, sha)
                    for model in (Certificate, SealedDocument)
                    for key, sha in session.execute(select(model.blob_key, model.pdf_sha256))
                }
            )
        reader = open_blob_store(settings.model_copy(update={"blob_store": source}), sessions)
        writer = open_blob_store(settings.model_copy(update={"blob_store": target}), sessions)
        copied = present = 0
        for key, sha256 in recorded:
            held = _held(writer, key)
            if held == sha256:
                present += 1
                continue
            if held is not None:
                raise ConflictError(
                    f"The blob {key} in the {target} store has changed (its SHA-256 is "
                    f"{held}, the registry records {sha256})."
                )
            content = _read_checked(reader, source, key, sha256)
            _write(writer, FinishedBlob(key=key, sha256=sha256), content)
            copied += 1
    finally:
        engine.dispose()
    return MigrationReport(target=target, copied=copied, present=present)


def _held(store: BlobStore, key: str) -> str | None:
    """The SHA-256 of what ``store`` holds under ``key`` (hashed afresh), or ``None``."""
    try:
        stream = store.open(key)
    except (NotFoundError, FileNotFoundError):
        return None
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def _read_checked(store: BlobStore, name: str, key: str, sha256: str) -> bytes:
    try:
        with store.open(key) as stream:
            content = stream.read()
    except (NotFoundError, FileNotFoundError):
        raise NotFoundError(f"The blob {key} is missing from the {name} store.") from None
    actual = hashlib.sha256(content).hexdigest()
    if actual != sha256:
        raise ConflictError(
            f"The blob {key} has changed in the {name} store (its SHA-256 is {actual}, "
            f"the registry records {sha256})."
        )
    return content


def _write(store: BlobStore, finished: FinishedBlob, content: bytes) -> None:
    if isinstance(store, DatabaseBlobStore):
        store.store_verified(finished, content)
        return
    assert isinstance(store, DiskBlobStore)
    # The registry records the blob already: publish it at once, as the start-up sweep does
    # for a registered file.
    staged = store.staging()
    try:
        staged.file.write(content)
        staged.finish()
    except BaseException:
        staged.discard()
        raise
    staged.publish()
