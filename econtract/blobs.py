"""Where sealed PDFs are kept: a blob store keyed by content, on the local disk by default."""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from econtract.errors import NotFoundError

_CHUNK = 1024 * 1024


class BlobStore(Protocol):
    """Stores files by key; a stored file never changes."""

    def staging(self) -> StagedBlob:
        """A new temporary file to write into, then :meth:`StagedBlob.commit` or ``discard``."""
        ...

    def open(self, key: str) -> BinaryIO:
        """Read a stored blob."""
        ...

    def path(self, key: str) -> Path:
        """The local path of a stored blob (for streaming responses)."""
        ...


@dataclass
class StagedBlob:
    """A file being written; it becomes visible under a key only when committed."""

    directory: Path
    temp_path: Path

    def commit(self) -> tuple[str, str, bool]:
        """Move the file under its content key; return (key, SHA-256 hex, whether it is new).

        A file with the same content already stored is left as it is.
        """
        digest = hashlib.sha256()
        with self.temp_path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        sha = digest.hexdigest()
        key = f"{sha[:2]}/{sha}.pdf"
        target = self.directory / key
        target.parent.mkdir(parents=True, exist_ok=True)
        new = not target.exists()
        os.replace(self.temp_path, target)
        return key, sha, new

    def discard(self) -> None:
        """Remove the file."""
        self.temp_path.unlink(missing_ok=True)


@dataclass
class DiskBlobStore:
    """Blobs as files under a directory, named by their SHA-256."""

    directory: Path

    def staging(self) -> StagedBlob:
        """A temporary file in the store's directory (same file system: the rename is atomic)."""
        tmp = self.directory / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return StagedBlob(self.directory, tmp / f"{secrets.token_hex(12)}.part")

    def open(self, key: str) -> BinaryIO:
        """Read a stored blob."""
        return self.path(key).open("rb")

    def path(self, key: str) -> Path:
        """The path of a stored blob; refuses keys outside the store."""
        path = (self.directory / key).resolve()
        if self.directory.resolve() not in path.parents or not path.is_file():
            raise NotFoundError("The stored document is missing.")
        return path

    def remove(self, key: str) -> None:
        """Delete a blob (only for one whose registration failed)."""
        (self.directory / key).unlink(missing_ok=True)

    def copy_to(self, key: str, destination: BinaryIO) -> None:
        """Copy a stored blob into a stream."""
        with self.open(key) as f:
            shutil.copyfileobj(f, destination, _CHUNK)
