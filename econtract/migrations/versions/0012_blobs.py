"""blobs in the registry

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 20:30:00.000000

The database blob store (``ECONTRACT_BLOB_STORE=database``): sealed PDFs as rows, so that
every instance sharing the registry serves them. On PostgreSQL the content is stored out of
line and uncompressed (``STORAGE EXTERNAL``): a PDF is compressed already, and an
uncompressed TOAST value lets a download read it slice by slice with ``substr`` instead of
decompressing it from its start for every slice.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "blobs",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_blobs")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE blobs ALTER COLUMN content SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("blobs")
