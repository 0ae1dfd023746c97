"""The data directory is private: the SQLite database, its WAL and shared memory, the blobs and
the key files are 0600, their directories 0700, whatever the umask; ``econtract init``
brings an older data directory into line, idempotently."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from econtract import db
from econtract.bootstrap import initialise
from econtract.services import Services
from tests.licences import issue_example


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The common umask 022, under which files are created world-readable unless made
    private on purpose."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _loose_paths(root: Path) -> list[tuple[str, str]]:
    loose = []
    for path in [root, *root.rglob("*")]:
        wanted = 0o700 if path.is_dir() else 0o600
        if _mode(path) != wanted:
            loose.append((str(path.relative_to(root.parent)), oct(_mode(path))))
    return loose


def _database_files(services: Services) -> list[Path]:
    database = Path(str(services.engine.url.database))
    return [database.with_name(database.name + suffix) for suffix in ("", "-wal", "-shm")]


def test_after_init_and_an_issuance_every_file_is_0600_in_0700_directories(
    services: Services,
) -> None:
    initialise(services)
    certificate = issue_example(services)
    data_dir = services.settings.data_dir
    blobs = [p for p in (data_dir / "blobs").rglob("*") if p.is_file()]
    assert (data_dir / "blobs" / certificate.blob_key).is_file(), blobs
    assert any((data_dir / "keys").glob("*.key.pem"))
    assert _loose_paths(data_dir) == []
    if db.is_embedded(services.engine):
        files = _database_files(services)
        assert all(path.exists() for path in files), files
        assert {path.name: oct(_mode(path)) for path in files} == {
            path.name: oct(0o600) for path in files
        }


def test_init_makes_an_older_data_directory_private_and_then_changes_nothing(
    services: Services,
) -> None:
    initialise(services)
    issue_example(services)
    data_dir = services.settings.data_dir
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    database_files = _database_files(services) if db.is_embedded(services.engine) else []
    for path in database_files:
        path.chmod(0o644)

    report = initialise(services)
    assert report.restricted
    assert _loose_paths(data_dir) == []
    assert [oct(_mode(path)) for path in database_files] == [oct(0o600)] * len(database_files)
    assert initialise(services).restricted == []
