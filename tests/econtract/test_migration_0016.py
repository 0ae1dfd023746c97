"""Migration 0016: enterprises beside departments (the body's kind)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import inspect, select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.models import Department
from econtract.services import Services


def test_migration_0016_adds_the_kind_every_existing_body_is_a_department(
    initialised: Services,
) -> None:
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0015")
    with initialised.engine.connect() as connection:
        assert "kind" not in {c["name"] for c in inspect(connection).get_columns("departments")}
    command.upgrade(config, "0016")
    with initialised.sessions() as session:
        kinds = dict(session.execute(select(Department.code, Department.kind)).tuples().all())
    assert kinds[DEMO_DEPARTMENT_CODE] == "department"
    assert set(kinds.values()) == {"department"}
