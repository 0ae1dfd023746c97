"""Licence numbers: one counter per department, type and year, never reused.

A claim (:mod:`econtract.issuance._claims`) is committed without a number; :func:`take_number`
then gives it the next number of its counter in **one statement that is a transaction of its
own**, so that the counter's lock is held only while the database runs that statement and its
commit, never while the issuing thread waits for Python's GIL (the threads of a worker that
seal hold it for up to ``sys.getswitchinterval()`` at a time, 5 ms):

- on PostgreSQL, a data-modifying CTE locks the claim (still pending, still without a number),
  increments the counter (creating it at one) and writes the number to the claim; it is sent
  together with its ``BEGIN`` and ``COMMIT`` and a ``SELECT clock_timestamp()`` in one simple
  query, which the server runs without waiting for the client;
- on SQLite, one ``UPDATE`` in autocommit sets the claim's number to its stem, and the trigger
  of migration 0032 increments the counter and appends its value, inside one
  ``sqlite3_step`` that runs with the GIL released and commits before it returns. (An
  ``UPDATE … RETURNING`` would not do: SQLite commits when the statement is finished, and
  Python's ``sqlite3`` steps it to its end only when the row is fetched, with the GIL taken
  again in between; a script of several statements retakes the GIL between them.)

On PostgreSQL that transaction commits with ``synchronous_commit = off``: it does not wait for
the WAL to reach the disk, which under load (other transactions' sealed PDFs in the WAL) is
most of the time the lock would be held. A crash of the database can then lose the number,
with the claim's, as if it had never been taken; but whatever records a number for good (the
registration of its licence, its void) is a transaction that saw it and commits synchronously,
which flushes the WAL up to and past the number's commit. The one thing that may see a number
so lost is a request for the same holder refused meanwhile (409, naming the number in progress).

Either statement changes nothing unless the claim is pending and has no number, so it may be
sent twice (by the request and by a retry that completes the claim) and numbers the claim once;
a number is taken only together with the claim's row, so none is ever skipped silently. A
counter at 999999 stops: nothing changes, and the claim stays without a number.

The time the lock was held is ``econtract_number_lock_seconds``: on PostgreSQL as the server
sees it, from the counter's increment to the end of the commit; on SQLite the wall time of the
statement's call, an upper bound: it includes taking the GIL back after the commit. (Writers of
every process queue for SQLite's write lock before the statement, in ``db._write_queue``, so
the call waits for another process's transaction only if a writer that does not queue there
holds the lock.)
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, StatementError

from econtract import db
from econtract.errors import RegistryError
from econtract.issuance._templates import LicenceTemplate
from econtract.models import Department

#: The digits of a number's sequence, after its stem.
SEQUENCE_DIGITS = 6

# Parameters are bound by psycopg on the client side: a simple query with several statements
# takes no server-side parameters, and it is what lets the server run them in one go.
_TAKE_ON_POSTGRESQL = """
BEGIN;
SET LOCAL synchronous_commit = off;
WITH claim AS (
    SELECT id, department_id, type_code FROM issuance_claims
    WHERE id = %(claim_id)s AND state = 'pending' AND number IS NULL
    FOR UPDATE
), counter AS (
    INSERT INTO number_counters (department_id, type_code, year, last_value)
    SELECT department_id, type_code, %(year)s, 1 FROM claim
    ON CONFLICT (department_id, type_code, year)
    DO UPDATE SET last_value = number_counters.last_value + 1
    WHERE number_counters.last_value < 999999
    RETURNING last_value, clock_timestamp() AS locked_at
)
UPDATE issuance_claims SET number = %(stem)s || lpad(counter.last_value::text, 6, '0')
FROM counter WHERE issuance_claims.id = %(claim_id)s
RETURNING issuance_claims.number, counter.locked_at;
COMMIT;
SELECT clock_timestamp();
"""

_TAKE_ON_SQLITE = (
    "UPDATE issuance_claims SET number = ? WHERE id = ? AND state = 'pending' AND number IS NULL"
)


@dataclass(frozen=True)
class TakenNumber:
    """A number given to a claim by :func:`take_number`."""

    number: str
    """The licence number."""
    lock_seconds: float
    """How long the counter's lock was held (the module says how it is measured)."""


def number_stem(template: LicenceTemplate, department: Department, year: int) -> str:
    """What a licence number starts with: type prefix, the department's region, the year."""
    region = department.region or department.code[2:8]
    return f"{template.number_prefix}{region}{year}"


def format_number(template: LicenceTemplate, department: Department, year: int, value: int) -> str:
    """A licence number: type prefix, the department's region, the year, a 6-digit sequence.

    For example ``YZ3301002026000042``; unique per department and type, never reused.
    """
    return f"{number_stem(template, department, year)}{value:0{SEQUENCE_DIGITS}d}"


def take_number(engine: Engine, *, claim_id: str, stem: str) -> TakenNumber | None:
    """Give the pending claim ``claim_id`` the next number of its counter, in one statement
    of its own; ``None`` when it changed nothing (the claim has a number already, is pending
    no more, or the counter is used up). ``stem`` ends with the counter's year."""
    year = int(stem[-4:])
    if engine.dialect.name == "postgresql":
        return _take_on_postgresql(engine, claim_id=claim_id, stem=stem, year=year)
    return _take_on_sqlite(engine, claim_id=claim_id, stem=stem)


def _take_on_postgresql(
    engine: Engine, *, claim_id: str, stem: str, year: int
) -> TakenNumber | None:
    # Loaded here, as SQLAlchemy loads it: only a PostgreSQL registry needs it.
    import psycopg  # noqa: PLC0415

    with closing(engine.raw_connection()) as pooled:
        conn: Any = pooled.driver_connection
        try:
            conn.autocommit = True
            with psycopg.ClientCursor(conn) as cursor:
                cursor.execute(
                    _TAKE_ON_POSTGRESQL, {"claim_id": claim_id, "stem": stem, "year": year}
                )
                cursor.nextset()  # past BEGIN
                cursor.nextset()  # past SET
                taken = cursor.fetchone()
                cursor.nextset()  # past COMMIT
                cursor.nextset()
                released = cursor.fetchone()
            conn.autocommit = False
        except psycopg.Error as exc:
            raise _driver_error(engine, pooled, _TAKE_ON_POSTGRESQL, exc) from exc
    if taken is None:
        return None
    assert released is not None
    number, locked_at = taken
    return TakenNumber(number=number, lock_seconds=(released[0] - locked_at).total_seconds())


def _take_on_sqlite(engine: Engine, *, claim_id: str, stem: str) -> TakenNumber | None:
    # Writers queue for SQLite's write lock in the database module rather than poll for it;
    # the connection is in autocommit (the driver's isolation level is None).
    with db._write_queue(engine), closing(engine.raw_connection()) as pooled:
        conn: Any = pooled.driver_connection
        started = time.perf_counter()
        try:
            changed = conn.execute(_TAKE_ON_SQLITE, (stem, claim_id)).rowcount
        except sqlite3.IntegrityError as exc:
            if "licence numbers used up" in str(exc):
                return None
            raise _driver_error(engine, pooled, _TAKE_ON_SQLITE, exc) from exc
        except sqlite3.Error as exc:
            raise _driver_error(engine, pooled, _TAKE_ON_SQLITE, exc) from exc
        held = time.perf_counter() - started
        if changed != 1:
            return None
        (number,) = conn.execute(
            "SELECT number FROM issuance_claims WHERE id = ?", (claim_id,)
        ).fetchone()
    if len(number) != len(stem) + SEQUENCE_DIGITS:
        # Without migration 0032's trigger the stem would stay as the number.
        raise RegistryError("The registry lacks migration 0032; run `econtract init`.")
    return TakenNumber(number=number, lock_seconds=held)


def _driver_error(engine: Engine, pooled: Any, statement: str, exc: Exception) -> StatementError:
    """The driver's error as SQLAlchemy raises it for every other query (a lost or stopped
    database is an ``OperationalError``, which the service answers 503 with Retry-After),
    after closing the connection it came from: a statement that failed halfway, on a
    connection that may be lost or still inside its transaction, must not be lent again."""
    pooled.invalidate(exc)
    return DBAPIError.instance(
        statement,
        None,
        exc,
        engine.dialect.loaded_dbapi.Error,
        connection_invalidated=True,
        dialect=engine.dialect,
    )
