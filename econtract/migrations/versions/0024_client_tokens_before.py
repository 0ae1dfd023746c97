"""a client's tokens issued before it was last disabled stay refused

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06 09:00:00.000000

Enabling a disabled client again must not revive the access tokens it held before it was
disabled: ``tokens_before`` keeps the time of the last disabling, and a token issued at or
before it is refused for good.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.add_column(sa.Column("tokens_before", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_clients") as batch:
        batch.drop_column("tokens_before")
