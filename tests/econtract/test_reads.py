"""Per-thread read connections: always the latest committed state, remembered answers dropped
by any write, a dropped connection replaced (on SQLite and, with the registry marker, on
PostgreSQL)."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
from sqlalchemy import Connection, text

from econtract.db import ReadConnections, is_embedded
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
    seen: list[int] = []

    def which(conn: Connection) -> int:
        return id(conn.connection.driver_connection)

    try:
        seen.append(reads.run(which))
        thread = threading.Thread(target=lambda: seen.append(reads.run(which)))
        thread.start()
        thread.join()
        seen.append(reads.run(which))
        assert seen[0] == seen[2] != seen[1]
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
            with table.engine.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
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
