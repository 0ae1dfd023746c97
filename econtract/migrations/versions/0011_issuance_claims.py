"""issuance claims

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 20:30:00.000000

A licence number handed out to one issuance, from the short transaction that claims it to
the one that registers its certificate, or until it is declared void. One pending claim per
department, type and holder (a partial unique index), so that parallel requests for one
holder cannot both pass the one-licence rule while neither is registered yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = sa.text("state = 'pending'")


def upgrade() -> None:
    op.create_table(
        "issuance_claims",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("type_code", sa.String(length=60), nullable=False),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("holder_code", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_issuance_claims_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["type_code"],
            ["certificate_types.code"],
            name=op.f("fk_issuance_claims_type_code_certificate_types"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issuance_claims")),
        sa.UniqueConstraint(
            "department_id",
            "type_code",
            "number",
            name=op.f("uq_issuance_claims_department_id"),
        ),
    )
    op.create_index(
        "uq_issuance_claims_pending_holder",
        "issuance_claims",
        ["department_id", "type_code", "holder_code"],
        unique=True,
        postgresql_where=_PENDING,
        sqlite_where=_PENDING,
    )
    op.create_index("ix_issuance_claims_state", "issuance_claims", ["state", "created_at"])
    op.create_index("ix_issuance_claims_key", "issuance_claims", ["client_id", "idempotency_key"])


def downgrade() -> None:
    op.drop_index("ix_issuance_claims_key", table_name="issuance_claims")
    op.drop_index("ix_issuance_claims_state", table_name="issuance_claims")
    op.drop_index("uq_issuance_claims_pending_holder", table_name="issuance_claims")
    op.drop_table("issuance_claims")
