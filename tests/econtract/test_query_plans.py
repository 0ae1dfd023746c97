"""What an issuance runs under the database's write lock, and what the worker's minute sweep
runs, finds its rows by an index that fits, however many certificates the registry holds.

The plans checked are SQLite's: it keeps no statistics by default, so the schema's indexes
and the statements' shapes alone lead its planner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from econtract import db
from econtract.services import Services
from econtract.webhooks._worker import run_round
from tests.licences import issue_example

Statement = tuple[str, Any]


@pytest.fixture
def registry(initialised: Services) -> Services:
    if not db.is_embedded(initialised.engine):
        pytest.skip("the plans checked are SQLite's")
    issue_example(initialised)
    return initialised


@contextmanager
def recorded() -> Iterator[list[Statement]]:
    """The statements every engine runs inside the block, with their parameters."""
    seen: list[Statement] = []

    def record(*args: Any) -> None:
        seen.append((args[2], args[3]))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def plans(services: Services, action: Callable[[], object]) -> list[tuple[str, list[str]]]:
    """Each query ``action`` runs, with SQLite's plan for it."""
    with recorded() as seen:
        action()
    queries = [
        # An executemany's parameters are a list of rows: one row shows the plan.
        (statement, parameters[0] if isinstance(parameters, list) else parameters)
        for statement, parameters in seen
        if statement.lstrip().split()[0].upper() in {"SELECT", "UPDATE", "DELETE", "WITH"}
    ]
    raw = services.engine.raw_connection()
    try:
        cursor = raw.cursor()
        return [
            (statement, [row[3] for row in cursor.execute("EXPLAIN QUERY PLAN " + statement, p)])
            for statement, p in queries
        ]
    finally:
        raw.close()


def reading_every_certificate(found: list[tuple[str, list[str]]]) -> list[str]:
    return [
        f"{' '.join(statement.split())[:200]} -> {plan}"
        for statement, plan in found
        if any(step.startswith("SCAN certificates") for step in plan)
    ]


def test_the_check_for_a_licence_already_held_reads_the_holders_rows_alone(
    registry: Services,
) -> None:
    found = plans(registry, lambda: issue_example(registry))
    held = [plan for statement, plan in found if "certificates.holder_code = ?" in statement]
    # Not ix_certificates_department_issued, which walks every certificate of the department
    # in the order of issue; and no sort of the holder's rows either.
    assert held == [
        [
            "SEARCH certificates USING INDEX ix_certificates_holder "
            "(department_id=? AND type_code=? AND holder_code=?)"
        ]
    ]
    assert reading_every_certificate(found) == []


def test_the_workers_sweep_reads_no_certificate_table_end_to_end(registry: Services) -> None:
    found = plans(registry, lambda: run_round(registry, sweep=True))
    statements = " ".join(statement for statement, _ in found)
    # The round did look for expired licences and for licences issued out of hours.
    assert "usage_records.result = ?" in statements
    assert "certificates.issued_at >= ?" in statements
    assert reading_every_certificate(found) == []
