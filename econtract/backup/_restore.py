"""``econtract restore``: a snapshot back into an empty data directory and database.

Nothing is written before everything was checked: the manifest and every file against it
(:func:`econtract.backup._manifest.read_manifest`), that the snapshot is of the configured
kind of registry and key store, and that the target is empty (no file in the data
directory, no table in the PostgreSQL schema, no SQLite file). Then the registry, the blobs
and the key files are put in place, and the restored registry is held to the manifest: its
counts, every blob it references present, and its log's latest signed tree head the
manifest's (signed by the log key) or a consistent extension of it, so that an auditor's
heads kept before the backup still verify.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.engine import URL, make_url

from econtract.backup._manifest import BackupError, read_manifest
from econtract.backup._snapshot import (
    PGDUMP_FILE,
    SQLITE_FILE,
    RegistryFacts,
    read_facts,
    run_client,
)
from econtract.config import Settings
from econtract.db import make_engine
from econtract.errors import NotFoundError
from econtract.services import Services
from econtract.translog import (
    LogError,
    SignedTreeHead,
    consistency_proof,
    verify_consistency,
    verify_sth,
)

# A line of ``pg_restore --list`` that creates the schema itself (made here instead).
_SCHEMA_ENTRY = re.compile(r"^\d+; \d+ \d+ SCHEMA - ")
# Migration 0015's trigram index of the holder's name: its definition names the operator
# class with the schema pg_trgm lived in where the dump was taken, which the target database
# need not have, so it is left out of the dump's list and made again after the data.
_TRIGRAM_INDEX = "ix_certificates_holder_name_trgm"
_TRIGRAM_ENTRY = re.compile(rf"^\d+; \d+ \d+ INDEX \S+ {_TRIGRAM_INDEX} ")


@dataclass(frozen=True)
class RestoreReport:
    """What ``restore`` put back."""

    database: str
    """``sqlite`` or ``postgresql``."""
    facts: RegistryFacts
    """What the restored registry holds."""
    files: int
    """Blob and key files written."""

    def summary(self) -> str:
        """One line for the operator."""
        head = self.facts.tree_head
        size = "no tree head" if head is None else f"log tree size {head['tree_size']}"
        return (
            f"restored {self.database} registry: {self.facts.certificates} certificates, "
            f"{self.facts.sealed_documents} sealed documents, {len(self.facts.blobs)} blobs, "
            f"{size}, {self.files} blob and key files"
        )


def restore(settings: Settings, source: Path) -> RestoreReport:
    """Restore the snapshot in ``source`` into the empty data directory and database of
    ``settings``; ``BackupError`` (one line) when the snapshot or the target is refused."""
    manifest = read_manifest(source)
    database: dict[str, Any] = manifest.get("database") or {}
    url = make_url(settings.effective_database_url)
    kind = url.get_backend_name()
    if database.get("kind") != kind:
        raise BackupError(
            f"The snapshot holds a {database.get('kind')} registry; "
            f"ECONTRACT_DATABASE_URL points to {kind}."
        )
    key_store = (manifest.get("keys") or {}).get("store")
    if key_store != settings.key_store:
        raise BackupError(
            f"The snapshot's keys are in a {key_store} key store; "
            f"ECONTRACT_KEY_STORE is {settings.key_store}."
        )
    data_dir = settings.data_dir
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(
            f"The data directory {data_dir} is not empty; restore needs an empty one."
        )
    if kind == "sqlite":
        target = Path(url.database or "")
        if target.exists():
            raise BackupError(f"The SQLite registry {target} exists; restore needs none there.")
    else:
        _require_empty_schema(url, str(database.get("schema")))
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if kind == "sqlite":
        _copy_file(source / SQLITE_FILE, Path(url.database or ""))
    else:
        _restore_postgresql(url, source / PGDUMP_FILE, str(database["schema"]))
    written = 0
    for item in manifest["files"]:
        name: str = item["path"]
        for prefix, directory in (("blobs/", settings.blob_dir), ("keys/", data_dir / "keys")):
            if name.startswith(prefix):
                _copy_file(source / name, directory / name.removeprefix(prefix))
                written += 1
    facts = _check_restored(settings, manifest)
    return RestoreReport(database=kind, facts=facts, files=written)


def _copy_file(source: Path, destination: Path) -> None:
    """Copy into place through a temporary file: 0600 in 0700 directories."""
    destination.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temp = destination.with_name(destination.name + ".restoring")
    with source.open("rb") as f, temp.open("xb") as out:
        shutil.copyfileobj(f, out, 1024 * 1024)
        out.flush()
        os.fsync(out.fileno())
    temp.chmod(0o600)
    os.replace(temp, destination)


def _target_schema(conn: Connection) -> str:
    """The first schema of the target's search_path (where the tables go)."""
    path = str(conn.scalar(text("SHOW search_path")))
    for part in path.split(","):
        name = part.strip().strip('"')
        if name and name != "$user":
            return name
    raise BackupError("The target database's search_path names no schema.")


def _require_empty_schema(url: URL, schema: str) -> None:
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            target = _target_schema(conn)
            if target != schema:
                raise BackupError(
                    f"The snapshot is of schema {schema}; the target's search_path starts with "
                    f"{target}. Restore into schema {schema} (in an empty database or schema)."
                )
            tables = conn.scalar(
                text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                {"s": schema},
            )
    finally:
        engine.dispose()
    if tables:
        raise BackupError(
            f"The target schema {schema} of database {url.database} holds {tables} tables; "
            "restore needs an empty one."
        )


def _restore_postgresql(url: URL, dump: Path, schema: str) -> None:
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            trigram_schema = _trigram_schema(conn)
        listing = run_client("pg_restore", ["--list", str(dump)], url)
        lines = listing.splitlines()
        kept = [
            line for line in lines if not (_SCHEMA_ENTRY.match(line) or _TRIGRAM_ENTRY.match(line))
        ]
        with tempfile.TemporaryDirectory() as tmp:
            use_list = Path(tmp) / "restore.list"
            use_list.write_text("\n".join(kept) + "\n", encoding="utf-8")
            run_client(
                "pg_restore",
                [
                    f"--dbname={url.database}",
                    f"--use-list={use_list}",
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    str(dump),
                ],
                url,
            )
        if any(_TRIGRAM_ENTRY.match(line) for line in lines):
            with engine.begin() as conn:
                conn.execute(
                    text(
                        f'CREATE INDEX "{_TRIGRAM_INDEX}" ON "{schema}".certificates '
                        f'USING gin (holder_name "{trigram_schema}".gin_trgm_ops)'
                    )
                )
    finally:
        engine.dispose()


def _trigram_schema(conn: Connection) -> str:
    """The schema of the target database's pg_trgm, created in ``public`` when missing.

    Extensions are the database's, not the schema's, so the dump of the registry's schema
    does not carry them.
    """
    found = conn.scalar(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    )
    if found is None:
        conn.execute(text("CREATE EXTENSION pg_trgm SCHEMA public"))
        return "public"
    return str(found)


def _check_restored(settings: Settings, manifest: dict[str, Any]) -> RegistryFacts:
    services = Services(settings=settings)
    try:
        with services.sessions() as session:
            facts = read_facts(session)
            counts = manifest.get("counts") or {}
            found = {
                "certificates": facts.certificates,
                "sealed_documents": facts.sealed_documents,
                "blobs": len(facts.blobs),
            }
            if found != counts:
                raise BackupError(
                    f"The restored registry holds {found}; the manifest says {counts}."
                )
            for key, _sha in sorted(facts.blobs):
                try:
                    services.blobs.open(key).close()
                except NotFoundError:
                    raise BackupError(
                        f"The restored registry references blob {key}, not restored."
                    ) from None
            head = manifest.get("tree_head")
            if head is not None:
                _check_log(services, session, head, facts.tree_head)
    finally:
        services.dispose()
    return facts


def _check_log(
    services: Services, session: Any, kept: dict[str, Any], restored: dict[str, Any] | None
) -> None:
    """The restored log's latest head is the manifest's, or extends it consistently."""
    try:
        expected = SignedTreeHead.from_json(kept)
        verify_sth(expected, services.pki.log_key.public_key())
        if restored is None:
            raise BackupError("The restored log has no signed tree head; the manifest has one.")
        latest = SignedTreeHead.from_json(restored)
        if latest.tree_size < expected.tree_size or (
            latest.tree_size == expected.tree_size and latest.root_hash != expected.root_hash
        ):
            raise BackupError(
                f"The restored log (size {latest.tree_size}) does not extend the manifest's "
                f"tree head (size {expected.tree_size})."
            )
        if 0 < expected.tree_size < latest.tree_size:
            proof = consistency_proof(session, expected.tree_size, latest.tree_size)
            verify_consistency(
                expected.tree_size, latest.tree_size, expected.root_hash, latest.root_hash, proof
            )
    except LogError as exc:
        raise BackupError(
            f"The manifest's tree head does not hold in the restored log: {exc}"
        ) from None
