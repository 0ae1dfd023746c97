"""The overview's completion-time roll-ups

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-03 13:20:00.000000

The envelopes completed on a rolled-up day, each with its initiator, its duration (start to
completion, in microseconds) and the duration's bin, and per initiator and day the cumulative
count of its completed envelopes in each bin: a period's percentile finds its bin from two
cumulative rows and reads the durations of that bin alone, not every duration of the period.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overview_completions",
        sa.Column("initiator_id", sa.Integer(), primary_key=True),
        sa.Column("bin", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("micros", sa.BigInteger(), primary_key=True),
        sa.Column("envelope_id", sa.String(40), primary_key=True),
    )
    op.create_index("ix_overview_completions_day", "overview_completions", ["day"])
    op.create_table(
        "overview_completion_totals",
        sa.Column("initiator_id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("counts", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("overview_completion_totals")
    op.drop_index("ix_overview_completions_day", table_name="overview_completions")
    op.drop_table("overview_completions")
