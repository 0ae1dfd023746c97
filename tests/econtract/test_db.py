"""Write transactions on SQLite queue in the process instead of polling SQLite's lock."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import create_engine, text

from econtract.db import session_factory, transaction


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
