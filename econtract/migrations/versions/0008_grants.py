"""grants

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 17:40:00.000000

The use list (用证清单): which department may use which licence type for which matters, and
whether a use needs the holder's consent. At most one live grant per department and type.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "grants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("type_code", sa.String(length=60), nullable=False),
        sa.Column("matters", sa.JSON(), nullable=False),
        sa.Column("requires_consent", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_grants_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["type_code"],
            ["certificate_types.code"],
            name=op.f("fk_grants_type_code_certificate_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grants")),
    )
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_grants_department_id"), ["department_id"], unique=False
        )
        batch_op.create_index(
            "ix_grants_live",
            ["department_id", "type_code"],
            unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"),
            postgresql_where=sa.text("revoked_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.drop_index("ix_grants_live")
        batch_op.drop_index(batch_op.f("ix_grants_department_id"))
    op.drop_table("grants")
