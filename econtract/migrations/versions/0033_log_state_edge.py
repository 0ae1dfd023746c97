"""The log's right edge kept beside its size

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-04 02:00:00.000000

Each append to the transparency log writes the hashes of the perfect subtrees of the new tree
into ``log_state`` (with the size they belong to), so that the next append starts from them
instead of looking them up in ``log_leaves`` and ``log_nodes`` while holding the log's lock.
Existing logs start with no edge: their next append looks the hashes up once and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("log_state") as batch:
        batch.add_column(sa.Column("edge_size", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("edge", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("log_state") as batch:
        batch.drop_column("edge")
        batch.drop_column("edge_size")
