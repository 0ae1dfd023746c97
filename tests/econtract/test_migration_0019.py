"""Migration 0019: a delivery's licence is optional (an envelope's event names none)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from econtract import db
from econtract.models import Base, Delivery
from econtract.services import Services


def _nullable(services: Services) -> bool:
    with services.engine.connect() as connection:
        [column] = [
            c
            for c in inspect(connection).get_columns("deliveries")
            if c["name"] == "certificate_id"
        ]
        return bool(column["nullable"])


def test_migration_0019_makes_a_deliverys_licence_optional_and_matches_the_models(
    initialised: Services,
) -> None:
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0018")
    assert not _nullable(initialised)
    command.upgrade(config, "0019")
    assert _nullable(initialised)
    command.upgrade(config, "head")

    def deliveries_only(obj: object, name: str | None, kind: str, *_: object) -> bool:
        table = getattr(obj, "table", obj)
        return getattr(table, "name", name) == Delivery.__tablename__ and db.exists_on(
            obj, initialised.engine.dialect.name
        )

    with initialised.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": deliveries_only}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
