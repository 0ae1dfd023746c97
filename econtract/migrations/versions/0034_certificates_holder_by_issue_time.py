"""A holder's certificates indexed in the order of their issue

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-04 02:30:00.000000

Issuance refuses a second valid licence of a type to a holder, naming the oldest one held:
``WHERE department_id = ? AND type_code = ? AND holder_code = ? ... ORDER BY issued_at``.
With ``ix_certificates_holder`` on the first three columns only, SQLite chose the index that
gives the order (``ix_certificates_department_issued``) and read every certificate of the
department, inside the transaction that claims the number. The holder's index now ends with
``issued_at``: the query reads the holder's rows alone, already in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEX = "ix_certificates_holder"


def upgrade() -> None:
    op.drop_index(_INDEX, table_name="certificates")
    op.create_index(
        _INDEX, "certificates", ["department_id", "type_code", "holder_code", "issued_at"]
    )


def downgrade() -> None:
    op.drop_index(_INDEX, table_name="certificates")
    op.create_index(_INDEX, "certificates", ["department_id", "type_code", "holder_code"])
