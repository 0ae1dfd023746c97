"""Per-thread read connections: always the latest committed state, remembered answers dropped
by any write, a dropped connection replaced (on SQLite and, with the registry marker, on
PostgreSQL)."""

from __future__ import annotations

import contextlib
import gc
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.pool import NullPool

from econtract.db import ReadBusyError, ReadConnections, is_embedded, make_engine
from econtract.services import Services


@pytest.fixture
def table(services: Services) -> Services:
    with services.engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, value TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO probe VALUES (1, 'first')"))
    return services


def value(conn: Connection) -> str:
    return str(conn.execute(text("SELECT value FROM probe WHERE id = 1")).scalar_one())


def write(services: Services, new: str) -> None:
    """Commit through the engine's pool: another connection than the reader's."""
    with services.engine.begin() as conn:
        conn.execute(text("UPDATE probe SET value = :v WHERE id = 1"), {"v": new})


def test_a_read_sees_every_commit_made_after_the_connection_opened(table: Services) -> None:
    reads = ReadConnections(table.engine)
    try:
        assert reads.run(value) == "first"
        write(table, "second")
        assert reads.run(value) == "second"
        write(table, "third")
        assert reads.run(value) == "third"
    finally:
        reads.close()


def test_remembered_answers_last_until_the_database_changes(table: Services) -> None:
    reads = ReadConnections(table.engine)
    calls: list[str] = []

    def counted(conn: Connection) -> str:
        calls.append("read")
        return value(conn)

    try:
        assert reads.run_remembered("k", counted) == "first"
        assert reads.run_remembered("k", counted) == "first"
        # Only SQLite has a cheap change signal; elsewhere every call reads.
        assert len(calls) == (1 if is_embedded(table.engine) else 2)
        write(table, "second")
        assert reads.run_remembered("k", counted) == "second"
        assert reads.run_remembered("other", counted) == "second"
    finally:
        reads.close()


def test_a_write_by_another_process_is_seen(table: Services) -> None:
    reads = ReadConnections(table.engine)
    try:
        assert reads.run_remembered("k", value) == "first"
        url = table.engine.url.render_as_string(hide_password=False)
        code = (
            "import sys; from sqlalchemy import create_engine, text\n"
            "from econtract.db import make_engine\n"
            "with make_engine(sys.argv[1]).begin() as c:\n"
            "    c.execute(text(\"UPDATE probe SET value = 'elsewhere' WHERE id = 1\"))\n"
        )
        subprocess.run([sys.executable, "-c", code, url], check=True, timeout=60)
        assert reads.run_remembered("k", value) == "elsewhere"
    finally:
        reads.close()


def test_each_thread_has_its_own_connection(table: Services) -> None:
    reads = ReadConnections(table.engine)
    seen: list[Connection] = []
    try:
        reads.run(seen.append)
        thread = threading.Thread(target=lambda: reads.run(seen.append))
        thread.start()
        thread.join()
        reads.run(seen.append)
        if is_embedded(table.engine):
            # Quick reads keep one connection per thread.
            assert seen[0] is seen[2] is not seen[1]
            assert not seen[0].closed
        else:
            # Elsewhere every read takes a pooled connection for the call and gives it back.
            assert all(conn.closed for conn in seen)
    finally:
        reads.close()


def test_a_finished_thread_gives_its_connection_back(table: Services) -> None:
    reads = ReadConnections(table.engine)
    seen: list[Connection] = []
    try:
        thread = threading.Thread(target=lambda: reads.run(seen.append))
        thread.start()
        thread.join()
        del thread
        gc.collect()
        assert seen[0].closed
    finally:
        reads.close()


def test_many_threads_never_exhaust_the_shared_pool(table: Services) -> None:
    reads = ReadConnections(table.engine)
    try:
        with ThreadPoolExecutor(60) as pool:
            values = list(pool.map(lambda _: reads.run(value), range(600)))
        assert set(values) == {"first"}
        assert table.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        reads.close()


def test_a_dropped_connection_is_replaced(table: Services) -> None:
    reads = ReadConnections(table.engine)
    try:
        assert reads.run(value) == "first"
        if is_embedded(table.engine):
            # The driver connection closed under it, as after a lost file handle.
            reads.run(lambda conn: conn.connection.driver_connection.close())  # type: ignore[union-attr]
        else:
            pid = reads.run(lambda conn: conn.execute(text("SELECT pg_backend_pid()")).scalar())
            admin = create_engine(table.engine.url, poolclass=NullPool)
            with admin.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.dispose()
        write(table, "after")
        assert reads.run(value) == "after"
        assert reads.run_remembered("k", value) == "after"
    finally:
        reads.close()


def test_close_closes_every_thread_connection(table: Services) -> None:
    reads = ReadConnections(table.engine)
    conns: list[Connection] = []
    reads.run(conns.append)
    thread = threading.Thread(target=lambda: reads.run(conns.append))
    thread.start()
    thread.join()
    reads.close()
    assert len(conns) == 2
    assert all(conn.closed for conn in conns)


def test_a_locked_sqlite_file_makes_a_quick_read_give_up_and_a_patient_one_wait(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'locked.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE probe (id INTEGER PRIMARY KEY, value TEXT NOT NULL)"))
        conn.execute(text("INSERT INTO probe VALUES (1, 'first')"))
    engine.dispose()  # no connection open: the lock below shuts every new one out
    reads = ReadConnections(engine, busy_timeout=0.05)
    holder = sqlite3.connect(tmp_path / "locked.db", check_same_thread=False)
    try:
        # An exclusive lock in WAL mode shuts every other connection out, readers too.
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE probe SET value = 'locked' WHERE id = 1")
        started = time.monotonic()
        with pytest.raises(ReadBusyError):
            reads.run_remembered("k", value)
        with pytest.raises(ReadBusyError):
            reads.run(value)
        assert time.monotonic() - started < 2

        def unlock() -> None:
            holder.commit()
            holder.close()

        release = threading.Timer(0.5, unlock)
        release.start()
        assert reads.run_remembered("k", value, patient=True) == "locked"
        release.join()
        assert reads.run_remembered("k", value) == "locked"
    finally:
        reads.close()
        engine.dispose()
        with contextlib.suppress(sqlite3.ProgrammingError):
            holder.close()
