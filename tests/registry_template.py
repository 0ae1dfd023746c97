"""A registry after ``econtract init``, made once per test run and copied into each test that
asks for the ``initialised`` fixture.

``init`` runs every migration and makes the keys, CAs and seals of both hierarchies: most of a
second per test, on PostgreSQL more, and a test run asks for it about a thousand times. A copy
of the data directory and of the database (a file on SQLite; ``CREATE DATABASE … TEMPLATE`` on
PostgreSQL) is the same registry in a few hundredths of a second. A test whose settings differ
from the template's in anything but its paths (another key store, blob store, base URL, dual
seal types…) is initialised for itself, as before.
"""

from __future__ import annotations

import contextlib
import queue
import secrets
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from econtract.bootstrap import initialise
from econtract.config import Settings
from econtract.services import Services

SCHEMA = "registry"
"""The PostgreSQL schema of the template and of every copy (first on their search_path)."""

_PER_TEST = {"data_dir", "database_url"}


def _comparable(settings: Settings) -> dict[str, Any]:
    dumped = settings.model_dump()
    for name in _PER_TEST:
        dumped.pop(name)
    # Secrets compare by value (model_dump keeps SecretStr objects, which compare by identity).
    return {
        k: v.get_secret_value() if hasattr(v, "get_secret_value") else v for k, v in dumped.items()
    }


@dataclass(frozen=True)
class RegistryTemplate:
    """The initialised registry every copy starts from."""

    settings: Settings
    data_dir: Path
    sqlite_file: Path | None
    """The SQLite database file, or ``None`` on PostgreSQL."""
    database: str | None
    """The PostgreSQL template database, or ``None`` on SQLite."""

    def fits(self, settings: Settings) -> bool:
        """Whether a test with ``settings`` may start from a copy (only its paths differ)."""
        return _comparable(settings) == _comparable(self.settings)

    def copy_files(self, settings: Settings) -> None:
        """The template's data directory (keys, blobs, …) and SQLite file into ``settings``'s."""
        shutil.copytree(self.data_dir, settings.data_dir, dirs_exist_ok=True)
        if self.sqlite_file is not None:
            target = make_url(settings.effective_database_url).database
            assert target is not None
            # A journal left by an earlier connection would be replayed onto the copy.
            for suffix in ("-wal", "-shm", "-journal"):
                Path(target + suffix).unlink(missing_ok=True)
            shutil.copyfile(self.sqlite_file, target)


def make_template(settings: Settings) -> RegistryTemplate:
    """Initialise a registry with ``settings`` (SQLite file or PostgreSQL database) to copy."""
    services = Services(settings=settings)
    try:
        initialise(services)
    finally:
        # Closing every connection checkpoints SQLite's WAL into the file that is copied.
        services.dispose()
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        return RegistryTemplate(settings, settings.data_dir, Path(url.database), None)
    return RegistryTemplate(settings, settings.data_dir, None, url.database)


class DatabaseCopies:
    """Copies of the template database made ahead of the tests that take them, and dropped
    after them, by a thread of their own.

    On PostgreSQL 15 a copy costs a few tenths of a second and dropping it as much again (the
    drop waits for a checkpoint): most of it is the server's disk, not this process, so it
    runs while the tests do. One thread makes and drops them all, because the server refuses
    to copy a template that another copy is being made from.
    """

    def __init__(self, server_url: str, template: str, *, ahead: int = 2) -> None:
        self._server_url = server_url
        self._template = template
        self._ready: queue.Queue[str] = queue.Queue(maxsize=ahead)
        self._used: queue.Queue[str] = queue.Queue()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="database-copies", daemon=True)
        self._thread.start()

    def take(self) -> str:
        """The name of a fresh copy, for one test."""
        while True:
            try:
                return self._ready.get(timeout=1)
            except queue.Empty:
                if self._failure is not None:
                    raise RuntimeError("the template database could not be copied") from (
                        self._failure
                    )

    def give_back(self, name: str) -> None:
        """A copy a test has finished with: dropped by the thread."""
        self._used.put(name)

    def close(self) -> None:
        """Stop the thread and drop every copy left, used or not."""
        self._stop.set()
        self._thread.join()
        for waiting in (self._ready, self._used):
            while not waiting.empty():
                drop_postgresql_database(self._server_url, waiting.get())

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                # A test may be waiting for a copy; a drop can wait.
                if not self._ready.full():
                    self._ready.put(create_postgresql_database(self._server_url, self._template))
                    continue
                with contextlib.suppress(queue.Empty):
                    drop_postgresql_database(self._server_url, self._used.get(timeout=0.05))
        except BaseException as exc:  # reported by take(), in the test that waits
            self._failure = exc


def create_postgresql_database(server_url: str, template: str | None = None) -> str:
    """A new database on the server (a copy of ``template`` when given); its name."""
    name = f"t_{secrets.token_hex(6)}"
    copied = f' TEMPLATE "{template}"' if template else ""
    _run(server_url, f'CREATE DATABASE "{name}"{copied}')
    return name


def drop_postgresql_database(server_url: str, name: str) -> None:
    """Drop a database made by :func:`create_postgresql_database`, closing its sessions."""
    _run(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_url_of(server_url: str, database: str) -> str:
    """The URL of ``database`` on the server with :data:`SCHEMA` first on its search_path."""
    url = make_url(server_url).set(database=database)
    rendered = url.render_as_string(hide_password=False)
    sep = "&" if "?" in rendered else "?"
    return f"{rendered}{sep}options=-csearch_path%3D{SCHEMA}"


def _run(url: str, *statements: str) -> None:
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def create_schema(url: str) -> None:
    """Create :data:`SCHEMA` in the database of ``url`` (empty, for a registry of its own)."""
    _run(url, f'CREATE SCHEMA IF NOT EXISTS "{SCHEMA}"')


def empty_schema(url: str) -> None:
    """Drop and remake :data:`SCHEMA` in the database of ``url``: a copy that will not be used."""
    _run(url, f'DROP SCHEMA "{SCHEMA}" CASCADE', f'CREATE SCHEMA "{SCHEMA}"')
