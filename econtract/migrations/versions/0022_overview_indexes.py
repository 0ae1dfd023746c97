"""indexes for the supervision overview's figures

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 09:00:00.000000

The overview counts revocations and suspensions, uses of licences and completed envelopes
per day of a period, for every department at once: each such range is read through an index
on its time, not by scanning the table.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_status_events_time", "status_events", ["created_at"])
    op.create_index("ix_usage_records_time", "usage_records", ["created_at"])
    op.create_index("ix_envelopes_completed", "envelopes", ["completed_at"])


def downgrade() -> None:
    op.drop_index("ix_envelopes_completed", table_name="envelopes")
    op.drop_index("ix_usage_records_time", table_name="usage_records")
    op.drop_index("ix_status_events_time", table_name="status_events")
