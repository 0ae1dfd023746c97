"""enterprises beside departments

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 02:10:00.000000

Enterprises seal contracts and applications with e-seals of their own, which the service holds
for them. They are registered bodies like departments (a unified social credit code, a name,
seals, API clients), so they share the table; ``kind`` tells them apart. Every existing row is
a department.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD/DROP COLUMN, not a batch copy of the table: SQLite would otherwise rebuild
    # ``departments``, which every seal, client and certificate refers to.
    op.add_column(
        "departments",
        sa.Column("kind", sa.String(12), nullable=False, server_default="department"),
    )
    op.create_index("ix_departments_kind_code", "departments", ["kind", "code"])


def downgrade() -> None:
    op.drop_index("ix_departments_kind_code", table_name="departments")
    op.drop_column("departments", "kind")
