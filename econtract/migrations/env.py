"""Alembic environment: runs migrations on the engine the caller passes in."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from econtract.db import exists_on
from econtract.tables import METADATA

engine: Engine = context.config.attributes["engine"]
with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=METADATA,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=lambda item, name, kind, reflected, compare_to: (
            reflected or exists_on(item, connection.dialect.name)
        ),
    )
    with context.begin_transaction():
        context.run_migrations()
