"""The registry's schema after every migration is the one the code maps: every table, column,
type, index and constraint (on the database's dialect: an index made for PostgreSQL alone is
compared there only). A migration that forgets a column, or a model changed without its
migration, fails here."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from econtract import db
from econtract.services import Services
from econtract.tables import METADATA


def test_the_schema_after_the_migrations_is_the_models(initialised: Services) -> None:
    dialect = initialised.engine.dialect.name

    def mapped_here(item: object, name: str | None, kind: str, reflected: bool, *_: object) -> bool:
        return reflected or db.exists_on(item, dialect)

    with initialised.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": mapped_here}
        )
        differences = compare_metadata(context, METADATA)
    assert differences == []
    assert {"certificates", "api_clients", "envelopes", "console_users"} <= set(METADATA.tables)
