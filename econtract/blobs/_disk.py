"""Sealed PDFs on the local disk (the embedded default): a blob store keyed by content.

The rest of the service reaches the store through ``Services.blobs`` and the :class:`BlobStore`
interface, which hands out streams, never paths: a store need not be a directory.

A blob becomes visible only after the registry transaction that records it has committed, so
that the store never holds a sealed file the registry does not know:

1. :meth:`DiskBlobStore.staging` opens a temporary file under ``tmp/`` and takes an exclusive
   lock on it, held for as long as the file is in flight;
2. the engine writes into it; :meth:`StagedBlob.finish` makes it durable and names it (its
   SHA-256 and content key), still invisible;
3. the use case commits its registry transaction with that key;
4. :meth:`StagedBlob.publish` renames the file under its key (atomic on one file system).

A crash before 3 leaves only a temporary file; a crash between 3 and 4 leaves a registered
file in ``tmp/``. :func:`sweep_staged` (run at every start) finishes the second kind and
removes the first; the lock tells a file whose writer died from one still being written, since
the kernel drops a dead process's locks, ``kill -9`` included.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from econtract.errors import InsufficientStorageError, NotFoundError
from econtract.filemodes import make_private_dir, private_opener

if TYPE_CHECKING:
    from types import TracebackType

    from _typeshed import ReadableBuffer

_CHUNK = 1024 * 1024
_STAGED_SUFFIX = ".part"
#: What a file system answers when the disk, or the writer's quota on it, is full.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Name a full disk as :class:`InsufficientStorageError`, so that the caller answers it as
    the operator's problem it is rather than as a crash of the service."""
    try:
        yield
    except OSError as exc:
        named = _named(exc)
        if named is exc:
            raise
        raise named from exc


def _named(exc: OSError) -> Exception:
    """A full disk's error as :class:`InsufficientStorageError`; any other as it is."""
    if exc.errno in _NO_ROOM:
        return InsufficientStorageError(
            f"The document store has no room left ({exc.strerror}); nothing was stored."
        )
    return exc


class _StagingFile(io.BufferedRandom):
    """A staged file whose writes report a full disk as :class:`InsufficientStorageError`.

    The sealing engine writes into the file itself and reads any ``OSError`` as a network
    failure (the timestamp authority's); the domain's error passes through it unchanged.
    A plain ``try`` rather than :func:`_storage_errors`: a PDF writer makes thousands of small
    writes per licence, and a context manager around each cost milliseconds per issuance.
    """

    def write(self, buffer: ReadableBuffer, /) -> int:
        """Write, as the buffered file does."""
        try:
            return super().write(buffer)
        except OSError as exc:
            named = _named(exc)
            if named is exc:
                raise
            raise named from exc

    def flush(self) -> None:
        """Flush, as the buffered file does."""
        with _storage_errors():
            super().flush()


def content_key(sha256: str) -> str:
    """The key a blob with this SHA-256 (hex) is stored under."""
    return f"{sha256[:2]}/{sha256}.pdf"


class BlobStore(Protocol):
    """Stores files by key; a stored file never changes."""

    def staging(self) -> StagedBlob:
        """A new temporary file to write into, then ``finish``, ``publish`` or ``discard``."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Read a stored blob (``NotFoundError`` when there is none under the key)."""
        ...

    def copy_to(self, key: str, destination: BinaryIO) -> None:
        """Copy a stored blob into a stream."""
        ...

    def sweep(self, is_registered: Callable[[str], bool]) -> SweepReport:
        """Settle the files of writers that died (see :func:`sweep_staged`)."""
        ...


@dataclass(frozen=True)
class FinishedBlob:
    """A staged file made durable: what the registry records about it."""

    key: str
    """The key it will be stored under."""
    sha256: str
    """SHA-256 (hex) of its bytes."""


@dataclass
class StagedBlob:
    """A file being written, locked by its writer; it becomes visible under its key only when
    :meth:`publish`\\ ed, after the registry recorded it."""

    directory: Path
    """The store's directory."""
    temp_path: Path
    """Where the file is written (under ``tmp/``)."""
    file: BinaryIO = field(repr=False)
    """The open, locked file to write into."""
    _finished: FinishedBlob | None = field(default=None, init=False, repr=False)
    _committing: bool = field(default=False, init=False, repr=False)

    def __enter__(self) -> StagedBlob:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Publish the file when its registry transaction committed; discard it when none
        was attempted or it failed before committing; after a failure during the commit,
        release it where it is, for the start-up sweep to settle by the registry's word."""
        if not self._committing:
            self.discard()
        elif exc_type is None:
            self.publish()
        else:
            self.file.close()

    @property
    def finished(self) -> FinishedBlob | None:
        """Its name, once :meth:`finish`\\ ed."""
        return self._finished

    def committing(self) -> None:
        """Say that the transaction recording this blob is done and about to commit."""
        self._committing = True

    def finish(self) -> FinishedBlob:
        """Flush the file to disk and name it by its content; it stays invisible."""
        self.file.flush()
        with _storage_errors():
            os.fsync(self.file.fileno())
        self.file.seek(0)
        digest = hashlib.sha256()
        while chunk := self.file.read(_CHUNK):
            digest.update(chunk)
        sha = digest.hexdigest()
        self._finished = FinishedBlob(key=content_key(sha), sha256=sha)
        return self._finished

    def publish(self) -> bool:
        """Move the finished file under its key and release it; ``True`` when it is new there.

        Call only after the registry transaction that records the key has committed. A file
        with the same content already stored is left as it is.
        """
        finished = self._finished or self.finish()
        try:
            new = _move_into_place(self.directory, self.temp_path, finished.key)
        finally:
            self.file.close()
        return new

    def discard(self) -> None:
        """Remove the file and release it (nothing was registered, or the attempt failed)."""
        if self.file.closed:
            return
        try:
            self.temp_path.unlink(missing_ok=True)
        finally:
            # The bytes are thrown away: closing flushes what is buffered, which fails again
            # on a full disk, and does not matter. The descriptor and its lock go either way.
            with contextlib.suppress(OSError, InsufficientStorageError):
                self.file.close()


def _move_into_place(directory: Path, temp_path: Path, key: str) -> bool:
    target = directory / key
    make_private_dir(target.parent)
    if target.exists():
        temp_path.unlink(missing_ok=True)
        return False
    os.replace(temp_path, target)
    # The rename is durable once the directory entry is: a registered blob must survive a
    # power cut as the registry's row does.
    directory_fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory_fd)
    finally:
        os.close(directory_fd)
    return True


@dataclass
class DiskBlobStore:
    """Blobs as files under a directory, named by their SHA-256."""

    directory: Path

    @property
    def staging_dir(self) -> Path:
        """Where files in flight are written: never served, swept at start."""
        return self.directory / "tmp"

    def staging(self) -> StagedBlob:
        """A new temporary file in the store's directory (same file system: the rename is
        atomic), created and locked by this process."""
        tmp = self.staging_dir
        with _storage_errors():
            make_private_dir(tmp)
        while True:
            path = tmp / f"{secrets.token_hex(12)}{_STAGED_SUFFIX}"
            with _storage_errors():
                # Created 0600: the rename that publishes it keeps the mode.
                file = _StagingFile(io.FileIO(path, "x+", opener=private_opener))
            fcntl.flock(file.fileno(), fcntl.LOCK_EX)
            # A sweep may have taken the file between its creation and the lock, and removed
            # it as abandoned: then write into a new one.
            try:
                if os.stat(path).st_ino == os.fstat(file.fileno()).st_ino:
                    return StagedBlob(self.directory, path, file)
            except FileNotFoundError:
                pass
            file.close()

    def open(self, key: str) -> BinaryIO:
        """Read a stored blob."""
        return self.path(key).open("rb")

    def path(self, key: str) -> Path:
        """The path of a stored blob; refuses keys outside the store.

        Only this store and its tests use paths: the service reads blobs through
        :meth:`open`."""
        path = (self.directory / key).resolve()
        if (
            self.directory.resolve() not in path.parents
            or self.staging_dir.resolve() in path.parents
            or not path.is_file()
        ):
            raise NotFoundError("The stored document is missing.")
        return path

    def remove(self, key: str) -> None:
        """Delete a blob (only for one whose registration failed)."""
        (self.directory / key).unlink(missing_ok=True)

    def copy_to(self, key: str, destination: BinaryIO) -> None:
        """Copy a stored blob into a stream."""
        with self.open(key) as f:
            shutil.copyfileobj(f, destination, _CHUNK)

    def sweep(self, is_registered: Callable[[str], bool]) -> SweepReport:
        """Finish or remove the staged files of writers that died (:func:`sweep_staged`)."""
        return sweep_staged(self, is_registered)

    def stored_keys(self) -> list[str]:
        """The keys of every visible blob (what an audit of the store compares with the
        registry)."""
        return sorted(
            p.relative_to(self.directory).as_posix()
            for p in self.directory.glob("??/*.pdf")
            if p.is_file()
        )


@dataclass(frozen=True)
class SweepReport:
    """What :func:`sweep_staged` did."""

    published: tuple[str, ...] = ()
    """Keys of registered files whose writer died before moving them into place."""
    removed: int = 0
    """Abandoned files nothing registered, removed."""
    in_flight: int = 0
    """Files still locked by a live writer, left alone."""


def sweep_staged(store: DiskBlobStore, is_registered: Callable[[str], bool]) -> SweepReport:
    """Finish or remove the staged files of writers that died (see the module's docstring).

    ``is_registered(sha256)`` says whether the registry records a file with that SHA-256;
    a registered file is moved under its key, any other abandoned file is removed. Files a
    live process still holds are left alone, so a sweep is safe while others issue.
    """
    published: list[str] = []
    removed = in_flight = 0
    tmp = store.staging_dir
    if not tmp.is_dir():
        return SweepReport()
    for path in sorted(tmp.iterdir()):
        if not path.is_file():
            continue
        try:
            file = path.open("rb")
        except FileNotFoundError:
            continue
        with file:
            try:
                fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                in_flight += 1
                continue
            digest = hashlib.sha256()
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
            sha = digest.hexdigest()
            if is_registered(sha):
                key = content_key(sha)
                _move_into_place(store.directory, path, key)
                published.append(key)
            else:
                path.unlink(missing_ok=True)
                removed += 1
    return SweepReport(published=tuple(published), removed=removed, in_flight=in_flight)
