"""The overview's status changes of every department per day

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 13:30:00.000000

Revocations and suspensions of one China day summed over every department, by new status and
reason: a supervisor's year reads one row per point, not one per point and department summed
at every read.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overview_province_status_change_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "ix_overview_province_status_change_days_day",
        "overview_province_status_change_days",
        ["day"],
    )


def downgrade() -> None:
    op.drop_index(
        "ix_overview_province_status_change_days_day",
        table_name="overview_province_status_change_days",
    )
    op.drop_table("overview_province_status_change_days")
