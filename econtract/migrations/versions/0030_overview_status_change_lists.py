"""The overview's status changes as one list per day and department

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-03 13:30:00.000000

Revocations and suspensions of one China day, as one row per department (and one for every
department together) listing each new status and reason with its count, instead of a row
per department, status and reason: a year of a large registry holds every reason on every
day, and a supervisor's year read thousands of rows summed over the departments at each
read; it now reads one row a day.

The roll-ups are derived data: every roll-up table is emptied here, with the list of days
rolled up, and the worker's next round rolls every day up again (with the completion times'
roll-ups of migration 0029 too); until then the figures read the records.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ROLL_UPS = (
    "overview_rollup_days",
    "overview_issued_days",
    "overview_use_days",
    "overview_scan_days",
    "overview_envelope_days",
    "overview_open_envelopes",
    "overview_completions",
    "overview_completion_totals",
)


def upgrade() -> None:
    op.drop_index("ix_overview_status_change_days_day", table_name="overview_status_change_days")
    op.drop_table("overview_status_change_days")
    op.create_table(
        "overview_status_change_lists",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("changes", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_overview_status_change_lists_department",
        "overview_status_change_lists",
        ["department_id", "day"],
    )
    op.create_index("ix_overview_status_change_lists_day", "overview_status_change_lists", ["day"])
    for table in _ROLL_UPS:
        op.execute(sa.table(table).delete())


def downgrade() -> None:
    op.drop_index("ix_overview_status_change_lists_day", table_name="overview_status_change_lists")
    op.drop_index(
        "ix_overview_status_change_lists_department", table_name="overview_status_change_lists"
    )
    op.drop_table("overview_status_change_lists")
    op.create_table(
        "overview_status_change_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_overview_status_change_days_day", "overview_status_change_days", ["day"])
    for table in _ROLL_UPS:
        op.execute(sa.table(table).delete())
