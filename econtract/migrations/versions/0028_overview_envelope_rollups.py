"""The overview's envelope roll-ups and the completed envelopes' covering index

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-03 10:50:00.000000

The envelopes started on a rolled-up day, counted by initiator and final status once they are
closed (a closed envelope never changes again), and the list of those still open when their
day was rolled up (read live until the worker counts them in). The completion times read the
completed envelopes of a period from one index alone (status, completed_at, initiator_id,
created_at): the durations themselves, which exact percentiles need.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overview_envelope_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("initiator_id", sa.Integer(), primary_key=True),
        sa.Column("status", sa.String(12), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "overview_open_envelopes",
        sa.Column("envelope_id", sa.String(40), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
    )
    op.create_index("ix_overview_open_envelopes_day", "overview_open_envelopes", ["day"])
    op.create_index(
        "ix_envelopes_completion_times",
        "envelopes",
        ["status", "completed_at", "initiator_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_envelopes_completion_times", table_name="envelopes")
    op.drop_index("ix_overview_open_envelopes_day", table_name="overview_open_envelopes")
    op.drop_table("overview_open_envelopes")
    op.drop_table("overview_envelope_days")
