"""Backup and restore (容灾备份): a consistent snapshot of a running service, and its restore
into an empty data directory and database.

``backup`` writes the registry (SQLite's online backup, or ``pg_dump``), the blobs its rows
reference, the encrypted key files (or a note that the keys live in the HSM) and
``manifest.json`` (every file's size and SHA-256, the counts, the log's latest signed tree
head). ``restore`` checks the snapshot against its manifest and the target for emptiness
before writing anything, and the restored log against the manifest's tree head after.

The modules: ``_manifest`` (the manifest, its check, the errors), ``_snapshot`` (backup)
and ``_restore``.
"""

from __future__ import annotations

from econtract.backup._manifest import MANIFEST, BackupError, SnapshotRejectedError
from econtract.backup._restore import RestoreReport, restore
from econtract.backup._snapshot import BackupReport, backup

__all__ = [
    "MANIFEST",
    "BackupError",
    "BackupReport",
    "RestoreReport",
    "SnapshotRejectedError",
    "backup",
    "restore",
]
