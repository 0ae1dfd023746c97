"""Migration 0021: the console's accounts and sessions, as the models map them."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from econtract import db
from econtract.console import ConsoleSession, ConsoleUser
from econtract.models import Base
from econtract.services import Services

TABLES = {ConsoleUser.__tablename__, ConsoleSession.__tablename__}


def _tables(services: Services) -> set[str]:
    with services.engine.connect() as connection:
        return set(inspect(connection).get_table_names()) & TABLES


def test_migration_0021_adds_the_console_tables_and_matches_the_models(
    initialised: Services,
) -> None:
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0020")
    assert _tables(initialised) == set()
    command.upgrade(config, "0021")
    assert _tables(initialised) == TABLES
    command.upgrade(config, "head")

    def console_only(obj: object, name: str | None, kind: str, *_: object) -> bool:
        table = getattr(obj, "table", obj)
        return getattr(table, "name", name) in TABLES and db.exists_on(
            obj, initialised.engine.dialect.name
        )

    with initialised.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": console_only}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
