"""trigram index on the holder's name

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 02:00:00.000000

The certificate list filtered by a part of the holder's name (``?holder=``) asks for
``holder_name LIKE '%…%'``, which no b-tree can answer: on a registry of a million
certificates PostgreSQL read the department's certificates newest first until it had found a
page of matches, all of them when the part was rare. A GIN index of the name's trigrams
(``pg_trgm``) finds the matching rows directly, for any part of three characters or more and
for a prefix of any length.

PostgreSQL only: SQLite has no such index, and a registry on SQLite is the small one-machine
registry, where the scan stays short. The extension is created when missing and left in
place on downgrade, since other schemas of the same database may use it; its operator class
is named with the schema it lives in, which need not be on this registry's search path.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_certificates_holder_name_trgm"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema = bind.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'pg_trgm'"
        )
    ).scalar_one()
    op.create_index(
        INDEX,
        "certificates",
        ["holder_name"],
        postgresql_using="gin",
        postgresql_ops={"holder_name": f'"{schema}".gin_trgm_ops'},
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index(INDEX, table_name="certificates")
