"""supervision's early warnings and daily scan counts

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 09:00:00.000000

An early warning (监察预警, GB/T 39046) is raised once per rule, subject and window and then
acknowledged and closed by a supervisor. The QR page and the verification of uploads count
their answers per day, subject and answer in one upserted row, so that supervision sees
repeated FORGED or UNKNOWN answers without a row per scan.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "supervision_warnings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("rule_id", sa.String(40), nullable=False),
        sa.Column("warning_type", sa.String(40), nullable=False),
        sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id"), nullable=True),
        sa.Column("subject_type", sa.String(20), nullable=False),
        sa.Column("subject_id", sa.String(128), nullable=False),
        sa.Column("window", sa.String(40), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("description_zh", sa.String(500), nullable=False),
        sa.Column("description_en", sa.String(500), nullable=False),
        sa.Column("status", sa.String(14), nullable=False),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(200), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.UniqueConstraint("rule_id", "subject_id", "window"),
    )
    op.create_index("ix_supervision_warnings_raised", "supervision_warnings", ["raised_at", "id"])
    op.create_index(
        "ix_supervision_warnings_department", "supervision_warnings", ["department_id", "raised_at"]
    )
    op.create_index(
        "ix_supervision_warnings_status", "supervision_warnings", ["status", "raised_at"]
    )
    op.create_table(
        "scan_counts",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("channel", sa.String(8), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("verdict", sa.String(12), primary_key=True),
        sa.Column("department_id", sa.Integer, nullable=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_scan_counts_department", "scan_counts", ["department_id", "day"])


def downgrade() -> None:
    op.drop_index("ix_scan_counts_department", table_name="scan_counts")
    op.drop_table("scan_counts")
    op.drop_index("ix_supervision_warnings_status", table_name="supervision_warnings")
    op.drop_index("ix_supervision_warnings_department", table_name="supervision_warnings")
    op.drop_index("ix_supervision_warnings_raised", table_name="supervision_warnings")
    op.drop_table("supervision_warnings")
