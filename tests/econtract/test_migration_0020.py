"""Migration 0020: supervision's warnings and the daily scan counts."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from econtract import db
from econtract.models import Base
from econtract.services import Services
from econtract.supervision import ScanCount, SupervisionWarning

_TABLES = {SupervisionWarning.__tablename__, ScanCount.__tablename__}


def _tables(services: Services) -> set[str]:
    with services.engine.connect() as connection:
        return set(inspect(connection).get_table_names()) & _TABLES


def test_migration_0020_adds_the_warnings_and_scan_counts_and_matches_the_models(
    initialised: Services,
) -> None:
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0019")
    assert _tables(initialised) == set()
    command.upgrade(config, "0020")
    assert _tables(initialised) == _TABLES
    command.upgrade(config, "head")

    def supervision_only(obj: object, name: str | None, kind: str, *_: object) -> bool:
        table = getattr(obj, "table", obj)
        return getattr(table, "name", name) in _TABLES and db.exists_on(
            obj, initialised.engine.dialect.name
        )

    with initialised.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": supervision_only}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
