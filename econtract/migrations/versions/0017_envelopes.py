"""envelopes and their parties

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 02:20:00.000000

An envelope is a document that departments and enterprises seal in steps (parallel approval,
e-contracts): the envelope (its current revision, its step, a version that every change
raises) and its parties (each with its field, step, deadline and what it did).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "envelopes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("initiator_id", sa.Integer, sa.ForeignKey("departments.id"), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "document_id", sa.String(40), sa.ForeignKey("sealed_documents.id"), nullable=False
        ),
        sa.Column(
            "certified_document_id",
            sa.String(40),
            sa.ForeignKey("sealed_documents.id"),
            nullable=False,
        ),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("initiator_id", "idempotency_key"),
    )
    op.create_index("ix_envelopes_initiator", "envelopes", ["initiator_id", "created_at"])
    op.create_table(
        "envelope_parties",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("envelope_id", sa.String(40), sa.ForeignKey("envelopes.id"), nullable=False),
        sa.Column("department_id", sa.Integer, sa.ForeignKey("departments.id"), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("field_name", sa.String(64), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("acted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_id", sa.String(64), nullable=True),
        sa.Column(
            "document_id", sa.String(40), sa.ForeignKey("sealed_documents.id"), nullable=True
        ),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.UniqueConstraint("envelope_id", "field_name"),
    )
    op.create_index(
        "ix_envelope_parties_envelope_id", "envelope_parties", ["envelope_id"], unique=False
    )
    op.create_index(
        "ix_envelope_parties_party", "envelope_parties", ["department_id", "envelope_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_envelope_parties_party", table_name="envelope_parties")
    op.drop_index("ix_envelope_parties_envelope_id", table_name="envelope_parties")
    op.drop_table("envelope_parties")
    op.drop_index("ix_envelopes_initiator", table_name="envelopes")
    op.drop_table("envelopes")
