"""reserved seal fields

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 16:00:00.000000

A document certified for parallel approval reserves empty seal fields for later departments;
the registry keeps who may fill each one (a department, or one seal), so that sealing
another department's field is refused.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reserved_seal_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.String(length=40), nullable=False),
        sa.Column("field_name", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("seal_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_reserved_seal_fields_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["sealed_documents.id"],
            name=op.f("fk_reserved_seal_fields_document_id_sealed_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["seal_id"], ["seals.id"], name=op.f("fk_reserved_seal_fields_seal_id_seals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reserved_seal_fields")),
        sa.UniqueConstraint(
            "document_id", "field_name", name=op.f("uq_reserved_seal_fields_document_id")
        ),
    )
    with op.batch_alter_table("reserved_seal_fields", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reserved_seal_fields_document_id"), ["document_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reserved_seal_fields", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reserved_seal_fields_document_id"))
    op.drop_table("reserved_seal_fields")
