"""licence identifier

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:30:00.000000

Every certificate gets its licence identifier (证照标识, GB/T 36904) and its version in the
chain of supersessions. Existing certificates get theirs here: the national type code of
their type, their department's credit code, their number, their version (one more than the
certificate they superseded) and the check character, computed by the same pure function
issuance uses.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from econtract.licence_identifier import LicenceIdentifier

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The national type codes as they were when this revision was written: a migration keeps
# the values of its day, whatever the catalogue later says.
_NATIONAL_TYPE_CODES = {
    "business_licence": "11100000000013338W032",
    "food_business_permit": "11100000000013338W046",
    "construction_permit": "11100000000019713D001",
}


def upgrade() -> None:
    # Added NOT NULL with a placeholder default and filled in place: SQLite adds such a column
    # natively, where making a column NOT NULL afterwards would copy the table, which other
    # tables' rows reference. The default is dropped where the database can drop it; on SQLite
    # it stays, unused: issuance always names the identifier, and the unique index refuses a
    # second placeholder.
    op.add_column(
        "certificates",
        sa.Column("identifier", sa.String(length=128), nullable=False, server_default=""),
    )
    op.add_column(
        "certificates", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    _fill(op.get_bind())
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("certificates", "identifier", server_default=None)
        op.alter_column("certificates", "version", server_default=None)
    op.create_index(op.f("ix_certificates_identifier"), "certificates", ["identifier"], unique=True)


def _fill(connection: sa.Connection) -> None:
    rows = connection.execute(
        sa.text(
            "SELECT c.id, c.type_code, c.number, c.supersedes_id, d.code "
            "FROM certificates c JOIN departments d ON d.id = c.department_id"
        )
    ).all()
    by_id = {row.id: row for row in rows}
    versions: dict[str, int] = {}

    def version_of(certificate_id: str) -> int:
        # Walked without recursion: a chain of supersessions can be long.
        chain: list[str] = []
        current: str | None = certificate_id
        while current is not None and current not in versions and current in by_id:
            chain.append(current)
            current = by_id[current].supersedes_id
        base = versions.get(current, 0) if current is not None else 0
        for offset, cid in enumerate(reversed(chain), start=1):
            versions[cid] = base + offset
        return versions[certificate_id]

    update = sa.text(
        "UPDATE certificates SET identifier = :identifier, version = :version WHERE id = :id"
    )
    for row in rows:
        version = version_of(row.id)
        identifier = LicenceIdentifier.create(
            type_code=_NATIONAL_TYPE_CODES[row.type_code],
            issuer_code=row.code,
            serial=row.number,
            version=version,
        )
        connection.execute(
            update, {"identifier": str(identifier), "version": version, "id": row.id}
        )


def downgrade() -> None:
    op.drop_index(op.f("ix_certificates_identifier"), table_name="certificates")
    op.drop_column("certificates", "version")
    op.drop_column("certificates", "identifier")
