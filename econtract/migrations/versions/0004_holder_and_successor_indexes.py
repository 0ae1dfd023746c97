"""holder and successor indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 10:00:00.000000

Issuance refuses a second valid licence of a type for a holder, looking it up under the
number counter's lock: an index on (department, type, holder code) keeps that lookup short.
A certificate's record names what superseded it, found by ``supersedes_id``.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_certificates_holder", ["department_id", "type_code", "holder_code"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_certificates_supersedes_id"), ["supersedes_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("certificates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_certificates_supersedes_id"))
        batch_op.drop_index("ix_certificates_holder")
