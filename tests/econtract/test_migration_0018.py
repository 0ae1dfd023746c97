"""Migration 0018: an envelope's completion (timestamped revision, certificate, action,
licence)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from econtract import db
from econtract.envelopes import Envelope
from econtract.models import Base
from econtract.services import Services

_COLUMNS = {
    "completed_at",
    "completion_claimed_at",
    "timestamped_document_id",
    "completion_document_id",
    "on_complete",
    "licence_id",
}


def _columns(services: Services) -> set[str]:
    with services.engine.connect() as connection:
        return {c["name"] for c in inspect(connection).get_columns("envelopes")}


def test_migration_0018_adds_the_completion_columns_and_matches_the_models(
    initialised: Services,
) -> None:
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0017")
    assert not _COLUMNS & _columns(initialised)
    command.upgrade(config, "0018")
    assert _COLUMNS.issubset(_columns(initialised))
    command.upgrade(config, "head")

    def envelopes_only(obj: object, name: str | None, kind: str, *_: object) -> bool:
        table = getattr(obj, "table", obj)
        return getattr(table, "name", name) == Envelope.__tablename__ and db.exists_on(
            obj, initialised.engine.dialect.name
        )

    with initialised.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": envelopes_only}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
