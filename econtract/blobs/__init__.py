"""Where sealed PDFs are kept: a blob store keyed by content, chosen by
``ECONTRACT_BLOB_STORE``.

- ``disk`` (the embedded default, :mod:`econtract.blobs._disk`): files under
  ``<data_dir>/blobs``, published after the registry transaction that records them;
- ``database`` (:mod:`econtract.blobs._database`): rows of the registry's ``blobs`` table,
  written in the transaction that records them, served by every instance sharing the registry.

Either way a blob is visible only once the registry records it, and the service reaches it
through :class:`BlobStore` only, which hands out streams, never paths.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from econtract import db
from econtract.blobs._database import READ_CHUNK, DatabaseBlobStore
from econtract.blobs._disk import (
    BlobStore,
    DiskBlobStore,
    FinishedBlob,
    StagedBlob,
    SweepReport,
    content_key,
    sweep_staged,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from econtract.config import Settings

__all__ = [
    "READ_CHUNK",
    "BlobStore",
    "DatabaseBlobStore",
    "DiskBlobStore",
    "FinishedBlob",
    "StagedBlob",
    "SweepReport",
    "content_key",
    "open_blob_store",
    "sweep_staged",
]


def open_blob_store(settings: Settings, sessions: sessionmaker[Session] | None = None) -> BlobStore:
    """The blob store the settings choose (``ECONTRACT_BLOB_STORE``).

    The database store writes its rows in the flushes of ``sessions``' sessions, so a use
    case must register blobs through the same factory (``Services.blobs`` passes its own); a
    store opened without one serves reads and copies."""
    match settings.blob_store:
        case "disk":
            return DiskBlobStore(settings.blob_dir)
        case "database":
            if sessions is None:
                sessions = db.session_factory(db.make_engine(settings.effective_database_url))
            return DatabaseBlobStore(sessions, settings.data_dir / "tmp")
        case _:
            assert_never(settings.blob_store)
