"""batches and batch rows

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 20:30:00.000000

Batches submitted through the API and their rows: each row's fields and what became of it
(queued, issued with its certificate, failed with its reasons, or cancelled), so that any
worker can take a row and a batch's counts are read from one indexed table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("type_code", sa.String(length=60), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"], name=op.f("fk_batches_department_id_departments")
        ),
        sa.ForeignKeyConstraint(
            ["type_code"],
            ["certificate_types.code"],
            name=op.f("fk_batches_type_code_certificate_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint("client_id", "idempotency_key", name=op.f("uq_batches_client_id")),
    )
    op.create_index("ix_batches_department", "batches", ["department_id", "created_at"])
    op.create_table(
        "batch_rows",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("row", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("certificate_id", sa.String(length=40), nullable=True),
        sa.Column("certificate_number", sa.String(length=64), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_rows_batch_id_batches")
        ),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_batch_rows_certificate_id_certificates"),
        ),
        sa.PrimaryKeyConstraint("batch_id", "row", name=op.f("pk_batch_rows")),
    )
    op.create_index("ix_batch_rows_state", "batch_rows", ["batch_id", "state"])


def downgrade() -> None:
    op.drop_index("ix_batch_rows_state", table_name="batch_rows")
    op.drop_table("batch_rows")
    op.drop_index("ix_batches_department", table_name="batches")
    op.drop_table("batches")
