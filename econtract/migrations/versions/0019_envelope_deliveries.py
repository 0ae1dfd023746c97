"""deliveries of envelope events

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 06:40:00.000000

A delivery names the licence of a licence's event; an envelope's event is owed to the
initiator's and the parties' subscriptions and names no licence (the outbox row it comes
from names the envelope), so a delivery's licence becomes optional.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On SQLite a batch copy of the table (it cannot ALTER a column's NOT NULL); nothing
    # refers to deliveries, so the copy leaves every other table as it was.
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("certificate_id", existing_type=sa.String(40), nullable=True)


def downgrade() -> None:
    # The deliveries of envelope events have no place in the older schema.
    op.execute("DELETE FROM deliveries WHERE certificate_id IS NULL")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.alter_column("certificate_id", existing_type=sa.String(40), nullable=False)
