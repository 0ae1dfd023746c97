"""certificates of a department, newest first

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 21:05:00.000000

The certificate list (``GET /v1/certificates``) reads a department's certificates newest
first, a page at a time from a cursor. Without an index in that order, every page sorts all
the department's rows, which on a registry of a million certificates costs far more than the
page itself; with it, a page reads the index from its cursor onwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_certificates_department_issued",
        "certificates",
        ["department_id", "issued_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_certificates_department_issued", table_name="certificates")
