"""A claim's number taken by one statement on SQLite

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-03 16:00:00.000000

An issuance's number is now taken after its claim committed, by one statement that runs as a
transaction of its own (:mod:`econtract.issuance._numbering`). On SQLite one statement
changes one table, so the counter is moved by this trigger: setting a numberless claim's
``number`` to its stem (type prefix, region, year) increments the counter of the claim's
department, type and year (the last four characters of the stem), creating it at one, and
appends the counter's value to the stem in six digits, all inside the statement. Past 999999
it aborts the statement, which then leaves the claim and the counter as they were.
PostgreSQL takes the number with a data-modifying CTE instead and needs no trigger.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COUNTER = (
    "department_id = NEW.department_id AND type_code = NEW.type_code "
    "AND year = CAST(substr(NEW.number, -4) AS INTEGER)"
)

_TRIGGER = f"""
CREATE TRIGGER issuance_claims_take_number
AFTER UPDATE OF number ON issuance_claims
WHEN OLD.number IS NULL AND NEW.number IS NOT NULL
BEGIN
    INSERT INTO number_counters (department_id, type_code, year, last_value)
    VALUES (NEW.department_id, NEW.type_code, CAST(substr(NEW.number, -4) AS INTEGER), 1)
    ON CONFLICT DO UPDATE SET last_value = last_value + 1;
    SELECT RAISE(ABORT, 'licence numbers used up')
    WHERE (SELECT last_value FROM number_counters WHERE {_COUNTER}) > 999999;
    UPDATE issuance_claims
    SET number = NEW.number
        || printf('%06d', (SELECT last_value FROM number_counters WHERE {_COUNTER}))
    WHERE id = NEW.id;
END
"""  # noqa: S608 -- constant text, no input in it


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS issuance_claims_take_number")
