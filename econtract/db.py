"""The database: engine, sessions and migrations."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from econtract.errors import DatabaseUnavailableError
from econtract.filemodes import create_private_file, make_private_dir

_HAVE_FLOCK = sys.platform != "win32"
if _HAVE_FLOCK:
    import fcntl

MIGRATIONS = Path(__file__).parent / "migrations"
_T = TypeVar("_T")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets foreign keys, WAL and a busy timeout."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseUnavailableError(
            f"ECONTRACT_DATABASE_URL is not a database URL: {exc}"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            make_private_dir(Path(parsed.database).parent)
            # SQLite gives the WAL and shared-memory files the database file's mode, so a
            # database created 0600 keeps all three private.
            create_private_file(Path(parsed.database))
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn: Any, _record: Any) -> None:
            # SQLAlchemy emits BEGIN itself (below), so that a use case can take the write
            # lock when its transaction starts instead of failing to upgrade a read lock.
            conn.isolation_level = None
            cursor = conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def is_embedded(engine: Engine) -> bool:
    """Whether the registry is a local SQLite file (a read never waits on a network)."""
    return engine.dialect.name == "sqlite"


class ReadBusyError(Exception):
    """A quick read gave up because the SQLite file was locked for a moment; ask again with
    ``patient=True`` (off the event loop)."""


class _ThreadReader:
    """A thread's quick-read connection and what it remembers (see :class:`ReadConnections`)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.version: object = None
        self.remembered: OrderedDict[Hashable, Any] = OrderedDict()


class ReadConnections:
    """Reads for the busiest single-row lookups (the QR page).

    On SQLite, a quick read runs on a long-lived connection of the calling thread: taking a
    connection from the pool, beginning and rolling back a transaction cost more than a
    primary-key lookup. These connections come from an engine of their own (never returned
    to the shared pool), run every statement in its own transaction (so a read sees the
    latest commit and never holds a snapshot open), wait at most ``busy_timeout`` seconds
    for a lock (:class:`ReadBusyError` then), and close when their thread ends. A patient
    read, and every read of a networked database, takes a pooled connection for the call.
    """

    #: Answers remembered per thread by :meth:`run_remembered`.
    REMEMBERED = 4096

    def __init__(self, engine: Engine, *, busy_timeout: float = 0.05) -> None:
        self._engine = engine
        self._local = threading.local()
        self._readers: weakref.WeakSet[_ThreadReader] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._quick: Engine | None = None
        if is_embedded(engine):
            self._quick = create_engine(
                engine.url,
                poolclass=NullPool,
                connect_args={"timeout": busy_timeout, "check_same_thread": False},
            )
            event.listen(self._quick, "connect", _driver_autocommit)

    def run(self, read: Callable[[Connection], _T], *, patient: bool = False) -> _T:
        """``read(connection)``; for reads only."""
        if self._quick is None or patient:
            with self._engine.connect() as conn:
                return read(conn)
        return self._run(lambda reader: read(reader.conn))

    def run_remembered(
        self, key: Hashable, read: Callable[[Connection], _T], *, patient: bool = False
    ) -> _T:
        """``run(read)``, its answer remembered under ``key`` until the database changes.

        On SQLite, ``PRAGMA data_version`` changes whenever another connection (of any
        process) commits, so the first read after any write forgets every remembered answer:
        nothing stale is ever returned. Other databases have no such cheap signal; there
        (and for a patient read) this is :meth:`run`.
        """
        if self._quick is None or patient:
            return self.run(read, patient=patient)

        def remembered(reader: _ThreadReader) -> _T:
            raw = reader.conn.connection.driver_connection
            assert raw is not None
            version = raw.execute("PRAGMA data_version").fetchone()[0]
            if version != reader.version:
                reader.remembered.clear()
                reader.version = version
            elif key in reader.remembered:
                reader.remembered.move_to_end(key)
                return reader.remembered[key]  # type: ignore[no-any-return]
            answer = read(reader.conn)
            reader.remembered[key] = answer
            if len(reader.remembered) > self.REMEMBERED:
                reader.remembered.popitem(last=False)
            return answer

        return self._run(remembered)

    def _run(self, read: Callable[[_ThreadReader], _T]) -> _T:
        for attempt in (1, 2):
            reader = self._reader()
            try:
                return read(reader)
            except sqlite3.OperationalError as exc:
                # The driver's own error (PRAGMA data_version runs on the raw connection).
                if _is_busy(exc):
                    raise ReadBusyError(str(exc)) from None
                raise
            except DBAPIError as exc:
                if isinstance(exc.orig, sqlite3.OperationalError) and _is_busy(exc.orig):
                    raise ReadBusyError(str(exc.orig)) from None
                self._drop(reader)
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _reader(self) -> _ThreadReader:
        reader: _ThreadReader | None = getattr(self._local, "reader", None)
        if reader is None or reader.conn.closed:
            assert self._quick is not None
            conn = self._quick.connect().execution_options(isolation_level="AUTOCOMMIT")
            reader = _ThreadReader(conn)
            # When the thread ends, its thread-local reader goes, and its connection with it.
            weakref.finalize(reader, _close_quietly, conn)
            self._local.reader = reader
            with self._lock:
                self._readers.add(reader)
        return reader

    def _drop(self, reader: _ThreadReader) -> None:
        self._local.reader = None
        with self._lock:
            self._readers.discard(reader)
        _close_quietly(reader.conn)

    def close(self) -> None:
        """Close every thread's connection (when the process stops serving)."""
        with self._lock:
            readers = list(self._readers)
            self._readers.clear()
        for reader in readers:
            _close_quietly(reader.conn)
        if self._quick is not None:
            self._quick.dispose()


def _driver_autocommit(conn: Any, _record: Any) -> None:
    conn.isolation_level = None


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def _close_quietly(conn: Connection) -> None:
    with contextlib.suppress(DBAPIError, sqlite3.Error):  # already gone
        conn.close()


def check_database(engine: Engine) -> None:
    """Raise ``DatabaseUnavailableError`` (naming the setting) unless the database answers."""
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise DatabaseUnavailableError(
            f"The database at ECONTRACT_DATABASE_URL ({engine.url.render_as_string()}) "
            f"is unreachable: {reason}"
        ) from None


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration bound to ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def exists_on(item: object, dialect_name: str) -> bool:
    """Whether the migrated schema of a ``dialect_name`` database holds ``item``, an object of
    the models' metadata. An index kept to one database by ``ddl_if(dialect=...)`` (PostgreSQL's
    trigram index) exists there only; Alembic's comparison does not read ``ddl_if``, so its
    ``include_object`` hooks ask this instead, or they would report the index as missing
    everywhere else."""
    condition = getattr(item, "_ddl_if", None)
    if condition is None or condition.dialect is None:
        return True
    if isinstance(condition.dialect, str):
        return bool(condition.dialect == dialect_name)
    return dialect_name in condition.dialect


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    check_database(engine)
    command.upgrade(alembic_config(engine), revision)


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One use case's unit of work: commit when the block ends, roll back when it raises.

    On SQLite the transaction starts with ``BEGIN IMMEDIATE``: it holds the write lock from
    its first statement, so that no use case fails when it turns from reading to writing; the
    use cases of every process that opens the database queue for it (:class:`_WriteQueue`).
    """
    engine = factory.kw.get("bind")
    queue = _write_queue(engine) if isinstance(engine, Engine) else contextlib.nullcontext()
    with queue, factory() as session, session.begin():
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session


class _WriteQueue:
    """The queue of one SQLite database's write transactions, in this process and across the
    processes that open the database (the workers of ``econtract serve``).

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (1, 2,
    5, 10, ... 25 ms), so under load a waiting writer idles past the moment the lock is free,
    or misses turn after turn (seconds at the 99th percentile). Writers wait here instead, and
    each is woken as soon as the one before it ends: threads of a process on a lock of the
    process, and the one thread per process that holds it on an ``flock`` of a file beside
    the database (``<database>-lock``, 0600 like the database), which the kernel hands to
    the next process at once, and releases when its holder dies, even by ``kill -9``.

    Readers never wait here (WAL readers are not blocked by the writer). A writer that does not
    queue here (another program, or an engine of another library) still meets SQLite's own
    lock and busy timeout, which the queue's holder then waits out as before: the file lock is
    only ever taken before SQLite's, so the two cannot wait on each other in a cycle.
    """

    def __init__(self, lock_file: Path | None) -> None:
        self._lock_file = lock_file
        self._turn = threading.RLock()
        # Guarded by ``_turn``: how deep the holding thread has entered, and the lock file
        # as this process opened it (flock locks belong to an open file description).
        self._depth = 0
        self._fd: int | None = None

    def __enter__(self) -> None:
        self._turn.acquire()
        try:
            if self._depth == 0:
                fd = self._file()
                if fd is not None:
                    # Blocks without holding the GIL; Python retries it after a signal.
                    fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            self._turn.release()
            raise
        self._depth += 1

    def __exit__(self, *_exc: object) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._turn.release()

    def _file(self) -> int | None:
        if self._fd is None and self._lock_file is not None and _HAVE_FLOCK:
            try:
                create_private_file(self._lock_file)
                self._fd = os.open(self._lock_file, os.O_RDWR | os.O_CLOEXEC)
            except OSError:
                # A directory the process may not write to: the database cannot be written
                # either, and SQLite itself says so; nothing to queue for across processes.
                self._lock_file = None
        return self._fd

    def after_fork(self) -> None:
        """In a forked child: a queue of its own. The parent's threads do not exist here, and
        the inherited descriptor shares the parent's lock, so it is dropped (closing it leaves
        the parent's lock alone: the parent still has the file open)."""
        self._turn = threading.RLock()
        self._depth = 0
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)


# One queue per database file and process, whichever engine opened it (two engines on one
# file must exclude each other, and a thread that holds one's turn may take the other's);
# a queue lives as long as an engine that uses it.
_queues_by_engine: weakref.WeakKeyDictionary[Engine, _WriteQueue] = weakref.WeakKeyDictionary()
_queues_by_file: weakref.WeakValueDictionary[str, _WriteQueue] = weakref.WeakValueDictionary()
_queues_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _queues_lock  # noqa: PLW0603 - the parent's may have been held while it forked
    _queues_lock = threading.Lock()
    for queue in list(_queues_by_engine.values()):
        queue.after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _write_queue(engine: Engine) -> contextlib.AbstractContextManager[Any]:
    """On SQLite, the queue the write transactions of ``engine``'s database wait in (see
    :class:`_WriteQueue`); nothing on other databases, whose writers lock rows, not the file."""
    if not is_embedded(engine):
        return contextlib.nullcontext()
    with _queues_lock:
        queue = _queues_by_engine.get(engine)
        if queue is None:
            queue = _queues_by_engine[engine] = _queue_of_file(engine.url.database)
    return queue


def _queue_of_file(database: str | None) -> _WriteQueue:
    """The queue of a database file, shared by every engine on it (``_queues_lock`` held)."""
    if not database or database == ":memory:" or database.startswith("file:"):
        # An in-memory database is its connection's own (a URI is left to SQLite).
        return _WriteQueue(None)
    path = Path(database).resolve()
    queue = _queues_by_file.get(str(path))
    if queue is None:
        queue = _queues_by_file[str(path)] = _WriteQueue(path.with_name(path.name + "-lock"))
    return queue
