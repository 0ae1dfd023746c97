"""an envelope's completion

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 06:10:00.000000

When the last party has sealed, the service completes the envelope: a document timestamp on
the final revision, a completion certificate sealed by the platform, and the action named at
creation (a licence issued from named fields, or nothing for a contract). The envelope keeps
when it completed, the timestamped revision, the certificate, the action and the licence.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs, all nullable (every existing envelope has no completion yet), not a
    # batch copy of the table, which ``envelope_parties`` refers to.
    op.add_column("envelopes", sa.Column("completed_at", sa.DateTime(timezone=True)))
    op.add_column("envelopes", sa.Column("completion_claimed_at", sa.DateTime(timezone=True)))
    _add_reference("timestamped_document_id", "sealed_documents")
    _add_reference("completion_document_id", "sealed_documents")
    op.add_column("envelopes", sa.Column("on_complete", sa.JSON()))
    _add_reference("licence_id", "certificates")


def _add_reference(column: str, table: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column's reference only inline (it cannot ALTER a constraint in).
        op.execute(f"ALTER TABLE envelopes ADD COLUMN {column} VARCHAR(40) REFERENCES {table} (id)")
    else:
        op.add_column("envelopes", sa.Column(column, sa.String(40), sa.ForeignKey(f"{table}.id")))


def downgrade() -> None:
    for column in (
        "licence_id",
        "on_complete",
        "completion_document_id",
        "timestamped_document_id",
        "completion_claimed_at",
        "completed_at",
    ):
        op.drop_column("envelopes", column)
