"""GB/T 38540 seal data of SM2 seals

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03 10:15:00.000000

Every SM2 seal keeps its SESeal (v4, DER), made and signed by the service as seal maker when
the seal is created, in a table of its own beside the seals.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "seal_ses",
        sa.Column("seal_id", sa.String(40), sa.ForeignKey("seals.id"), primary_key=True),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("seal_ses")
