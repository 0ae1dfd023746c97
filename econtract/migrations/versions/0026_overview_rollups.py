"""The overview's daily roll-ups

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 10:10:00.000000

One row per China day and group of each counting figure of the overview (licences issued,
status changes, uses by other departments, QR answers), and the list of days rolled up, so
that a figure reads a few rows a day rather than every record of its period. Empty here:
the worker fills the days that are over, ``econtract supervision rollup`` back-fills.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "overview_rollup_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("rolled_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "overview_issued_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("department_id", sa.Integer(), primary_key=True),
        sa.Column("type_code", sa.String(60), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
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
    op.create_table(
        "overview_use_days",
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("user_department_id", sa.Integer(), primary_key=True),
        sa.Column("issuer_department_id", sa.Integer(), primary_key=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "overview_scan_days",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("verdict", sa.String(12), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_overview_scan_days_day", "overview_scan_days", ["day"])


def downgrade() -> None:
    op.drop_index("ix_overview_scan_days_day", "overview_scan_days")
    op.drop_table("overview_scan_days")
    op.drop_table("overview_use_days")
    op.drop_index("ix_overview_status_change_days_day", "overview_status_change_days")
    op.drop_table("overview_status_change_days")
    op.drop_table("overview_issued_days")
    op.drop_table("overview_rollup_days")
