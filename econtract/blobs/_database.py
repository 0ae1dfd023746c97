"""Sealed PDFs kept in the registry database (``ECONTRACT_BLOB_STORE=database``), so that every
instance sharing the registry serves every PDF.

The rule of :mod:`econtract.blobs._disk` holds here as a database's own: a blob becomes visible with
the transaction that records it, and only with it. The steps:

1. :meth:`DatabaseBlobStore.staging` hands out a nameless temporary file (removed by the
   kernel whatever happens to the process); the engine writes into it;
2. :meth:`StagedBlob.finish` names it by its SHA-256 and marks it pending in the store;
3. when the use case's session flushes a row that records the key (a ``blob_key`` column:
   a certificate, a sealed document), the store inserts the ``blobs`` row in that same
   flush, so the commit makes both visible at once and a rollback leaves neither;
4. publishing after the commit only releases the file.

Nothing survives a crash outside a transaction, so the start-up sweep has nothing to do.
Reads go slice by slice (``substr``) on short connections of their own: a download never loads
a whole PDF, nor holds a connection while the client is slow.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Engine, event, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from econtract.blobs._disk import (
    FinishedBlob,
    StagedBlob,
    SweepReport,
    _StagingFile,
    _storage_errors,
)
from econtract.blobs._model import Blob
from econtract.errors import NotFoundError
from econtract.filemodes import make_private_dir

#: The slice a read fetches per query: large enough that a query's cost is small beside it.
READ_CHUNK = 1024 * 1024
_COPY_CHUNK = 1024 * 1024


class DatabaseStagedBlob(StagedBlob):
    """A staged blob of the database store: its row is written by the flush that records it."""

    store: DatabaseBlobStore | None = None

    def finish(self) -> FinishedBlob:
        """Name the file by its content and hand it to the store, to be inserted with the row
        that records it."""
        finished = super().finish()
        assert self.store is not None
        self.store.pending(self)
        return finished

    def publish(self) -> bool:
        """Release the file: the row was committed with the registry's; ``True`` when this
        writer's flush inserted it (not a copy with the same content stored before)."""
        assert self.store is not None
        try:
            return self.store.forget(self)
        finally:
            self.file.close()

    def discard(self) -> None:
        """Release the file; the transaction that would have stored it did not commit."""
        if self.store is not None:
            self.store.forget(self)
        with contextlib.suppress(OSError):
            self.file.close()


@dataclass(eq=False)
class DatabaseBlobStore:
    """Blobs as rows of the registry's ``blobs`` table."""

    sessions: sessionmaker[Session]
    """The service's session factory: a flush of its sessions inserts the pending blobs."""
    staging_dir: Path
    """Where the nameless temporary files are created."""
    _pending: dict[str, DatabaseStagedBlob] = field(default_factory=dict, repr=False)
    _inserted: set[int] = field(default_factory=set, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        event.listen(self.sessions, "before_flush", self._insert_recorded)

    @property
    def engine(self) -> Engine:
        """The registry's engine."""
        bind = self.sessions.kw["bind"]
        assert isinstance(bind, Engine)
        return bind

    def staging(self) -> StagedBlob:
        """A nameless temporary file to write into; ``finish`` it inside the transaction that
        records it, or before."""
        with _storage_errors():
            make_private_dir(self.staging_dir)
            fd, name = tempfile.mkstemp(dir=self.staging_dir, suffix=".part")
        # Nameless from the start: nothing is left behind by a crash, and no sweep is needed.
        os.unlink(name)
        staged = DatabaseStagedBlob(self.staging_dir, Path(name), _StagingFile(io.FileIO(fd, "r+")))
        staged.store = self
        return staged

    def pending(self, staged: DatabaseStagedBlob) -> None:
        """Wait for the flush of a row that records ``staged``'s key."""
        assert staged.finished is not None
        with self._lock:
            self._pending[staged.finished.key] = staged

    def forget(self, staged: DatabaseStagedBlob) -> bool:
        """Stop waiting for ``staged``; whether a flush inserted its row."""
        with self._lock:
            if staged.finished is not None and self._pending.get(staged.finished.key) is staged:
                del self._pending[staged.finished.key]
            inserted = id(staged) in self._inserted
            self._inserted.discard(id(staged))
            return inserted

    def _insert_recorded(self, session: Session, _context: Any, _instances: Any) -> None:
        """Insert, in the flushing transaction, the pending blobs its new rows record."""
        keys = {getattr(obj, "blob_key", None) for obj in session.new}
        with self._lock:
            staged = [self._pending[k] for k in keys if isinstance(k, str) and k in self._pending]
        for blob in staged:
            self._write(session, blob)

    def _write(self, session: Session, staged: DatabaseStagedBlob) -> None:
        finished = staged.finished
        assert finished is not None
        staged.file.seek(0)
        # A PDF fits in memory once while it is written (the engine held it whole already);
        # only reads must never take it whole.
        content = staged.file.read()
        inserted = write_row(session, finished, content)
        if inserted:
            with self._lock:
                self._inserted.add(id(staged))

    def open(self, key: str) -> BinaryIO:
        """Read a stored blob, slice by slice (``NotFoundError`` when there is none)."""
        with self.engine.connect() as connection:
            size = connection.execute(select(Blob.size).where(Blob.key == key)).scalar()
        if size is None:
            raise NotFoundError("The stored document is missing.")
        return io.BufferedReader(_RowReader(self.engine, key, size), READ_CHUNK)

    def copy_to(self, key: str, destination: BinaryIO) -> None:
        """Copy a stored blob into a stream."""
        with self.open(key) as source:
            while chunk := source.read(_COPY_CHUNK):
                destination.write(chunk)

    def sweep(self, is_registered: Callable[[str], bool]) -> SweepReport:
        """Nothing to settle: a staged blob is nameless, and a row exists only committed."""
        return SweepReport()

    def store_verified(self, finished: FinishedBlob, content: bytes) -> bool:
        """Insert a blob the registry already records (what a migration between stores does),
        in a transaction of its own; ``True`` when it was not there."""
        with self.sessions.begin() as session:
            return write_row(session, finished, content)


def write_row(session: Session, finished: FinishedBlob, content: bytes) -> bool:
    """Insert a ``blobs`` row unless one with its key (its content) is there; whether it was
    inserted. Two writers of the same content both succeed, the second inserting nothing."""
    values = {
        "key": finished.key,
        "sha256": finished.sha256,
        "size": len(content),
        "content": content,
    }
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        statement: Any = postgresql.insert(Blob).values(values).on_conflict_do_nothing()
    elif dialect == "sqlite":
        statement = sqlite.insert(Blob).values(values).on_conflict_do_nothing()
    else:  # pragma: no cover - the registry is SQLite or PostgreSQL.
        statement = insert(Blob).values(values)
    return bool(session.connection().execute(statement).rowcount)


class _RowReader(io.RawIOBase):
    """A blob's content as a raw stream: each read one ``substr`` query on a short-lived
    connection (the pool's), so a slow client holds no connection between reads."""

    def __init__(self, engine: Engine, key: str, size: int) -> None:
        self._engine = engine
        self._key = key
        self.size = size
        """The blob's length in bytes."""
        self._position = 0

    def readable(self) -> bool:
        return True

    def readall(self) -> bytes:
        """The rest, in slices of :data:`READ_CHUNK` (the default reads 8 KiB per query)."""
        parts = []
        while chunk := self.read(READ_CHUNK):
            parts.append(chunk)
        return b"".join(parts)

    def readinto(self, buffer: Any) -> int:
        want = min(len(buffer), self.size - self._position)
        if want <= 0:
            return 0
        # substr counts from 1; it slices bytea on PostgreSQL and a BLOB on SQLite alike.
        query = select(func.substr(Blob.content, self._position + 1, want)).where(
            Blob.key == self._key
        )
        with self._engine.connect() as connection:
            chunk = connection.execute(query).scalar()
        if chunk is None:
            raise NotFoundError("The stored document is missing.")
        data = bytes(chunk)
        buffer[: len(data)] = data
        self._position += len(data)
        return len(data)
