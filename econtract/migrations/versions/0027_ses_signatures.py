"""GB/T 38540 signatures of SM2 sealings

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-03 10:40:00.000000

Each sealing with an SM2 seal, of a document or of a licence, keeps its SES_Signature (v4,
DER) in a table of its own beside the document's or the licence's row.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ses_signatures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("document_id", sa.String(40), sa.ForeignKey("sealed_documents.id"), unique=True),
        sa.Column("certificate_id", sa.String(40), sa.ForeignKey("certificates.id"), unique=True),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("departments.id"), nullable=False),
        sa.Column("seal_id", sa.String(40), sa.ForeignKey("seals.id"), nullable=False),
        sa.Column("data_hash", sa.String(64), nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(document_id IS NULL) <> (certificate_id IS NULL)", name="ses_signature_of_one"
        ),
    )
    op.create_index("ix_ses_signatures_department_id", "ses_signatures", ["department_id"])


def downgrade() -> None:
    op.drop_index("ix_ses_signatures_department_id", table_name="ses_signatures")
    op.drop_table("ses_signatures")
