"""``econtract backup``: a consistent snapshot of a running service.

The order is what makes it consistent without stopping the service:

1. the registry, at one instant: SQLite through its online backup API (a read transaction,
   which never blocks the writers of WAL mode); PostgreSQL by ``pg_dump`` of the configured
   schema inside a snapshot exported from a REPEATABLE READ transaction, in which the
   blobs' keys, the counts and the latest signed tree head are read too;
2. the blobs the snapshot's rows reference, copied afterwards: a blob is immutable and named
   by its content, and it is published right after the transaction that registers it, so
   every key of the snapshot is there (a moment's wait covers one being published); each
   copy's SHA-256 is checked against the row. With the database blob store they are rows of
   the registry, in its snapshot already;
3. the key files, copied afterwards too: a key is written before the row that names it, so
   every key the snapshot uses is there (keys made since are harmless extras). Keys in an
   HSM are not copied; the manifest says so;
4. ``manifest.json``, last.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from econtract.backup._manifest import (
    BackupError,
    FileEntry,
    copy_hashing,
    hash_file,
    write_manifest,
)
from econtract.blobs import BlobStore, open_blob_store
from econtract.config import Settings
from econtract.db import make_engine
from econtract.errors import NotFoundError
from econtract.models import Certificate, SealedDocument
from econtract.translog import LogNotFoundError, sth_json

SQLITE_FILE = "registry.sqlite3"
PGDUMP_FILE = "registry.pgdump"
#: How long a referenced blob may take to appear (its use case committed, not yet published).
BLOB_WAIT_SECONDS = 10.0
HSM_NOTE = (
    "The private keys live in the PKCS#11 token (HSM) and are not in this snapshot; "
    "restore needs the same token."
)


@dataclass(frozen=True)
class RegistryFacts:
    """What the registry snapshot holds, read from the snapshot itself."""

    blobs: frozenset[tuple[str, str]]
    """``(blob key, SHA-256)`` of every certificate and sealed document."""
    certificates: int
    """Certificates registered."""
    sealed_documents: int
    """Sealed documents registered."""
    tree_head: dict[str, Any] | None
    """The log's latest signed tree head, as GET /log/sth serves it (``None`` before one)."""


def read_facts(session: Session) -> RegistryFacts:
    """The blob keys, counts and latest tree head of the registry ``session`` reads."""
    blobs = {
        (key, sha)
        for model in (Certificate, SealedDocument)
        for key, sha in session.execute(select(model.blob_key, model.pdf_sha256))
    }
    try:
        head: dict[str, Any] | None = sth_json(session)
    except LogNotFoundError:
        head = None
    return RegistryFacts(
        blobs=frozenset(blobs),
        certificates=session.scalar(select(func.count()).select_from(Certificate)) or 0,
        sealed_documents=session.scalar(select(func.count()).select_from(SealedDocument)) or 0,
        tree_head=head,
    )


@dataclass
class BackupReport:
    """What ``backup`` wrote."""

    directory: Path
    """The snapshot directory."""
    database: str
    """``sqlite`` or ``postgresql``."""
    facts: RegistryFacts
    """What the registry snapshot holds."""
    files: list[FileEntry] = field(default_factory=list)
    """Every file written besides the manifest."""

    def summary(self) -> str:
        """One line for the operator."""
        head = self.facts.tree_head
        size = "no tree head" if head is None else f"log tree size {head['tree_size']}"
        total = sum(f.size for f in self.files)
        return (
            f"backup written to {self.directory}: {self.database} registry, "
            f"{self.facts.certificates} certificates, {self.facts.sealed_documents} sealed "
            f"documents, {len(self.facts.blobs)} blobs, {size}, {len(self.files)} files, "
            f"{total} bytes"
        )


def prepare_empty_directory(directory: Path, what: str) -> None:
    """Create ``directory`` (0700) or accept it empty; refuse anything else."""
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{what} {directory} is not an empty directory; refusing to write there.")
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def backup(settings: Settings, target: Path) -> BackupReport:
    """Write a snapshot of the service ``settings`` describe into the empty ``target``."""
    prepare_empty_directory(target, "The backup target")
    url = make_url(settings.effective_database_url)
    files: list[FileEntry] = []
    if url.get_backend_name() == "sqlite":
        kind, facts, extra = "sqlite", _snapshot_sqlite(url, target / SQLITE_FILE), {}
        files.append(_entry(target, SQLITE_FILE))
    elif url.get_backend_name() == "postgresql":
        kind = "postgresql"
        facts, schema = _snapshot_postgresql(url, target / PGDUMP_FILE)
        extra = {"schema": schema}
        files.append(_entry(target, PGDUMP_FILE))
    else:
        raise BackupError(f"Backing up a {url.get_backend_name()} registry is not supported.")
    if settings.blob_store != "database":
        # The database store's blobs are rows of the registry: the dump holds them already.
        files.extend(_copy_blobs(open_blob_store(settings), facts.blobs, target))
    keys: dict[str, Any] = {"store": settings.key_store}
    if settings.key_store == "file":
        key_files = _copy_keys(settings.data_dir / "keys", target)
        files.extend(key_files)
        keys["files"] = len(key_files)
    else:
        keys["note"] = HSM_NOTE
    write_manifest(
        target,
        {
            "created_at": datetime.now(UTC).isoformat(),
            "database": {"kind": kind, "file": files[0].path, **extra},
            "keys": keys,
            "counts": {
                "certificates": facts.certificates,
                "sealed_documents": facts.sealed_documents,
                "blobs": len(facts.blobs),
            },
            "tree_head": facts.tree_head,
            "files": [f.to_json() for f in files],
        },
    )
    return BackupReport(directory=target, database=kind, facts=facts, files=files)


def _entry(directory: Path, name: str) -> FileEntry:
    size, sha = hash_file(directory / name)
    return FileEntry(path=name, size=size, sha256=sha)


@contextmanager
def reading(path: Path) -> Iterator[Session]:
    """A session on a SQLite file, for reading only."""
    engine = create_engine(f"sqlite:///{path.as_posix()}", poolclass=NullPool)
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _snapshot_sqlite(url: URL, destination: Path) -> RegistryFacts:
    source = Path(url.database or "")
    if not source.is_file():
        raise BackupError(f"There is no SQLite registry at {source}.")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(destination)
    try:
        # One step (all pages): the copy is one read transaction of the source, one instant.
        src.backup(dst)
        # A self-contained file: no WAL beside it.
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise BackupError(f"The SQLite backup of {source} failed: {exc}") from None
    finally:
        dst.close()
        src.close()
    destination.chmod(0o600)
    with reading(destination) as session:
        return read_facts(session)


def libpq_environment(url: URL) -> dict[str, str]:
    """The environment that points ``pg_dump``/``pg_restore`` at ``url``'s database (the
    password in ``PGPASSWORD``, never on a command line)."""
    env = dict(os.environ)
    for name, value in (
        ("PGHOST", url.host),
        ("PGPORT", url.port),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGDATABASE", url.database),
        ("PGSSLMODE", url.query.get("sslmode")),
    ):
        if isinstance(value, str | int):
            env[name] = str(value)
    return env


def run_client(program: str, arguments: list[str], url: URL) -> str:
    """Run a PostgreSQL client program; its stdout, or ``BackupError`` with its first error."""
    path = shutil.which(program)
    if path is None:
        raise BackupError(f"{program} is not installed; install the PostgreSQL client tools.")
    done = subprocess.run(  # noqa: S603 - a fixed program with arguments built here
        [path, *arguments], env=libpq_environment(url), capture_output=True, check=False, text=True
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise BackupError(f"{program} failed: {lines[0] if lines else done.returncode}")
    return done.stdout


def _snapshot_postgresql(url: URL, destination: Path) -> tuple[RegistryFacts, str]:
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with (
            engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn,
            conn.begin(),
        ):
            # pg_dump reads in the snapshot of this transaction: the dump, the blob keys
            # and the tree head read here are of the same instant.
            snapshot = conn.scalar(text("SELECT pg_export_snapshot()"))
            schema = _current_schema(conn)
            with Session(bind=conn) as session:
                facts = read_facts(session)
            run_client(
                "pg_dump",
                [
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--schema={schema}",
                    "--no-owner",
                    "--no-privileges",
                    f"--file={destination}",
                ],
                url,
            )
    finally:
        engine.dispose()
    destination.chmod(0o600)
    return facts, schema


def _current_schema(conn: Connection) -> str:
    schema = conn.scalar(text("SELECT current_schema()"))
    if not schema:
        raise BackupError("The registry's database has no current schema (check search_path).")
    return str(schema)


def _copy_blobs(
    store: BlobStore, blobs: frozenset[tuple[str, str]], target: Path
) -> list[FileEntry]:
    entries = []
    for key, sha256 in sorted(blobs):
        with _open_blob(store, key) as source:
            entry = _copy_into(source, target, f"blobs/{key}")
        if entry.sha256 != sha256:
            raise BackupError(
                f"The stored blob {key} does not match its registry row (SHA-256 "
                f"{entry.sha256}); the blob store is damaged."
            )
        entries.append(entry)
    return entries


def _copy_into(source: BinaryIO, target: Path, name: str) -> FileEntry:
    """Copy a stream to ``target/name`` (0600 in 0700 directories); its manifest entry."""
    destination = target / name
    destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with destination.open("xb") as out:
        size, digest = copy_hashing(source, out)
    destination.chmod(0o600)
    return FileEntry(path=name, size=size, sha256=digest)


def _open_blob(store: BlobStore, key: str) -> BinaryIO:
    deadline = time.monotonic() + BLOB_WAIT_SECONDS
    while True:
        try:
            return store.open(key)
        except NotFoundError:
            # Registered a moment ago and about to be published, or lost.
            if time.monotonic() > deadline:
                raise BackupError(
                    f"The blob {key} the registry references is not in the blob store."
                ) from None
            time.sleep(0.05)


def _copy_keys(directory: Path, target: Path) -> list[FileEntry]:
    entries: list[FileEntry] = []
    if not directory.is_dir():
        return entries
    for source in sorted(p for p in directory.iterdir() if p.is_file()):
        with source.open("rb") as f:
            entries.append(_copy_into(f, target, f"keys/{source.name}"))
    return entries
