"""The snapshot's manifest: what a backup directory holds, and the check a restore runs first.

``manifest.json`` lists every other file of the directory with its size and SHA-256, and
says what the snapshot is (format version, time, database kind, counts, the log's latest
signed tree head). Its ``checksum`` is the SHA-256 of the rest of the manifest in canonical
JSON, so that an edit of the manifest alone (a count, the tree head) is seen too; the tree
head itself is checked against the restored log and the log key.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from econtract.errors import EContractError

MANIFEST = "manifest.json"
FORMAT = "econtract-backup"
FORMAT_VERSION = 1
_CHUNK = 1024 * 1024


class BackupError(EContractError):
    """A backup or a restore could not be done; the message says why, in one line."""

    code = "backup"
    title = "The backup or restore could not be done."


class SnapshotRejectedError(BackupError):
    """A snapshot does not match its manifest; ``path`` names the file at fault."""

    code = "snapshot-rejected"
    title = "The snapshot does not match its manifest."

    def __init__(self, message: str, *, path: str) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True, kw_only=True)
class FileEntry:
    """One file of a snapshot."""

    path: str
    """Its path in the snapshot directory, with ``/`` separators."""
    size: int
    """Its size in bytes."""
    sha256: str
    """SHA-256 of its bytes, in hex."""

    def to_json(self) -> dict[str, Any]:
        """The manifest's form of the entry."""
        return {"path": self.path, "size": self.size, "sha256": self.sha256}


def copy_hashing(source: BinaryIO, destination: BinaryIO) -> tuple[int, str]:
    """Copy a stream; return the size and SHA-256 (hex) of what was copied."""
    digest = hashlib.sha256()
    size = 0
    while chunk := source.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        destination.write(chunk)
    return size, digest.hexdigest()


def hash_file(path: Path) -> tuple[int, str]:
    """The size and SHA-256 (hex) of a file."""
    with path.open("rb") as f, open(os.devnull, "wb") as sink:
        return copy_hashing(f, sink)


def _checksum(body: dict[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k != "checksum"}
    canonical = json.dumps(rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def write_manifest(directory: Path, body: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (with its checksum) last, so that a backup cut short has none
    and no restore accepts it."""
    body = {"format": FORMAT, "version": FORMAT_VERSION, **body}
    body["checksum"] = _checksum(body)
    path = directory / MANIFEST
    path.write_text(json.dumps(body, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def _safe_path(text: object) -> str:
    """A manifest path that stays inside the snapshot directory."""
    if not isinstance(text, str) or not text:
        raise SnapshotRejectedError(f"{MANIFEST} lists a file without a path.", path=MANIFEST)
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts or text == MANIFEST or "\\" in text:
        raise SnapshotRejectedError(
            f"{MANIFEST} lists a path outside the snapshot: {text!r}.", path=MANIFEST
        )
    return text


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest, after checking it and every file of the directory against it.

    Refuses (``SnapshotRejectedError`` naming the file) a missing or edited manifest, a file
    missing, changed (size or SHA-256) or not listed.
    """
    path = directory / MANIFEST
    if not path.is_file():
        raise SnapshotRejectedError(
            f"{directory} holds no {MANIFEST}: it is not a complete snapshot.", path=MANIFEST
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SnapshotRejectedError(f"{MANIFEST} is not JSON: {exc}.", path=MANIFEST) from None
    if not isinstance(body, dict) or body.get("format") != FORMAT:
        raise SnapshotRejectedError(f"{MANIFEST} is not a snapshot's manifest.", path=MANIFEST)
    if body.get("version") != FORMAT_VERSION:
        raise SnapshotRejectedError(
            f"{MANIFEST} is of format version {body.get('version')!r}; "
            f"this release restores version {FORMAT_VERSION}.",
            path=MANIFEST,
        )
    if body.get("checksum") != _checksum(body):
        raise SnapshotRejectedError(
            f"{MANIFEST} was edited after the backup (its checksum does not match).",
            path=MANIFEST,
        )
    listed: dict[str, FileEntry] = {}
    for item in body.get("files", []):
        if not isinstance(item, dict):
            raise SnapshotRejectedError(
                f"{MANIFEST} lists a file entry that is not an object.", path=MANIFEST
            )
        entry = FileEntry(
            path=_safe_path(item.get("path")),
            size=item.get("size", -1),
            sha256=item.get("sha256", ""),
        )
        listed[entry.path] = entry
    present = {
        p.relative_to(directory).as_posix()
        for p in directory.rglob("*")
        if p.is_file() or p.is_symlink()
    } - {MANIFEST}
    for extra in sorted(present - listed.keys()):
        raise SnapshotRejectedError(
            f"The snapshot holds {extra}, which {MANIFEST} does not list.", path=extra
        )
    for name in sorted(listed):
        entry = listed[name]
        file = directory / name
        if name not in present or file.is_symlink():
            raise SnapshotRejectedError(f"The snapshot's file {name} is missing.", path=name)
        if hash_file(file) != (entry.size, entry.sha256):
            raise SnapshotRejectedError(
                f"The snapshot's file {name} changed since the backup (its SHA-256 "
                "does not match the manifest).",
                path=name,
            )
    return body
