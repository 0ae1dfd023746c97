"""Write transactions on SQLite queue, in the process and across processes, instead of polling
SQLite's lock."""

from __future__ import annotations

import multiprocessing
import stat
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text

from econtract.db import _write_queue, session_factory, transaction


def test_write_transactions_of_one_process_take_turns(tmp_path: Path) -> None:
    # A busy timeout far shorter than a transaction: polling SQLite's lock would fail.
    engine = create_engine(f"sqlite:///{tmp_path / 'q.db'}", connect_args={"timeout": 0.01})
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
    factory = session_factory(engine)
    active = 0
    most = 0
    guard = threading.Lock()

    def write(n: int) -> None:
        nonlocal active, most
        with transaction(factory) as session:
            with guard:
                active += 1
                most = max(most, active)
            session.execute(text("INSERT INTO t VALUES (:n)"), {"n": n})
            time.sleep(0.02)
            with guard:
                active -= 1

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(40)))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 40
        assert most == 1
    finally:
        engine.dispose()


def test_another_thread_waits_for_the_writer_and_then_goes(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'r.db'}")
    factory = session_factory(engine)
    try:
        with transaction(factory) as outer:
            outer.execute(text("SELECT 1"))
            done = threading.Event()

            def other() -> None:
                with transaction(factory) as session:
                    session.execute(text("SELECT 1"))
                done.set()

            waiting = threading.Thread(target=other)
            waiting.start()
            # Another thread waits its turn while this one writes ...
            assert not done.wait(0.2)
        # ... and goes as soon as it ends.
        waiting.join(timeout=10)
        assert done.is_set()
    finally:
        engine.dispose()


# -- across processes ------------------------------------------------------------------------

# A process that opens the database, takes a write transaction, says so on stdout and holds it
# until its standard input closes (or it is killed).
_HOLDER = """
import sys
from sqlalchemy import create_engine, text
from econtract.db import _write_queue, session_factory, transaction

engine = create_engine(sys.argv[1], connect_args={"timeout": 0.01})
with transaction(session_factory(engine)) as session:
    session.execute(text("INSERT INTO t VALUES (1)"))
    print("holding", flush=True)
    sys.stdin.read()
"""


def _table(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER NOT NULL)"))
    engine.dispose()


def _holder(url: str) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == "holding\n"
    return holder


def _write_in_thread(url: str) -> tuple[threading.Thread, list[BaseException | int]]:
    """A write transaction in a thread of this process, on a busy timeout far shorter than the
    other process's transaction: polling SQLite's lock would fail."""
    engine = create_engine(url, connect_args={"timeout": 0.01})
    outcome: list[BaseException | int] = []

    def write() -> None:
        try:
            with transaction(session_factory(engine)) as session:
                session.execute(text("INSERT INTO t VALUES (2)"))
            with engine.connect() as conn:
                outcome.append(conn.execute(text("SELECT count(*) FROM t")).scalar_one())
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)
        finally:
            engine.dispose()

    thread = threading.Thread(target=write)
    thread.start()
    return thread, outcome


def test_write_transactions_of_two_processes_take_turns(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    _table(url)
    holder = _holder(url)
    thread, outcome = _write_in_thread(url)
    # This process waits for the other one's transaction ...
    thread.join(timeout=0.3)
    assert thread.is_alive()
    holder.communicate("")
    # ... and writes when it has committed.
    thread.join(timeout=30)
    assert outcome == [2]
    assert stat.S_IMODE((tmp_path / "p.db-lock").stat().st_mode) == 0o600


def test_a_writer_killed_in_its_transaction_lets_the_next_one_in(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    _table(url)
    holder = _holder(url)
    thread, outcome = _write_in_thread(url)
    holder.kill()
    holder.wait()
    thread.join(timeout=30)
    # The killed process's row went with its transaction.
    assert outcome == [1]


def test_a_forked_child_queues_behind_its_parent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    _table(url)
    engine = create_engine(url, connect_args={"timeout": 0.01})
    fork = multiprocessing.get_context("fork")
    try:
        # Forked while this thread has the database's turn (and no connection open: SQLite's
        # own locks do not survive a fork): the child inherits neither the turn nor the file
        # lock, and waits for it like any other process.
        with _write_queue(engine):
            child = fork.Process(target=_write_and_exit, args=(url,))
            child.start()
            child.join(timeout=0.3)
            assert child.exitcode is None
        child.join(timeout=30)
        assert child.exitcode == 0
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    finally:
        engine.dispose()


def _write_and_exit(url: str) -> None:
    engine = create_engine(url, connect_args={"timeout": 0.01})
    with transaction(session_factory(engine)) as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    engine.dispose()
