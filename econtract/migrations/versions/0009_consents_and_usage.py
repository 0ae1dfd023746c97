"""consents and usage records

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 19:30:00.000000

Licence sharing on the using side: every certificate gets its holder's national code and
type (the credit code, or a person's identity number where the licence names no credit
code), indexed so that a using department finds a holder's licences across departments; the
holders' consents (授权用证) with their 亮证码; and the usage records (用证记录).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The identity-number fields of each type as they were when this revision was written: a
# migration keeps the values of its day, whatever the templates later say.
_ID_NUMBER_FIELDS = {"food_business_permit": ("id_number",)}


def upgrade() -> None:
    # Plain ALTERs, not a batch: on SQLite a batch may copy the certificates table, which
    # other tables' rows reference.
    op.add_column(
        "certificates", sa.Column("national_holder_code", sa.String(length=64), nullable=True)
    )
    op.add_column(
        "certificates", sa.Column("national_holder_type", sa.String(length=3), nullable=True)
    )
    _fill(op.get_bind())
    op.create_index(
        "ix_certificates_national_holder",
        "certificates",
        ["national_holder_code", "type_code"],
        unique=False,
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("holder_code", sa.String(length=64), nullable=False),
        sa.Column("holder_type", sa.String(length=3), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("type_code", sa.String(length=60), nullable=False),
        sa.Column("certificate_id", sa.String(length=40), nullable=True),
        sa.Column("matter", sa.String(length=200), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("show_code_sha256", sa.String(length=64), nullable=True),
        sa.Column("show_code_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("show_code_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_consents_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["type_code"],
            ["certificate_types.code"],
            name=op.f("fk_consents_type_code_certificate_types"),
        ),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_consents_certificate_id_certificates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consents")),
        sa.UniqueConstraint("show_code_sha256", name=op.f("uq_consents_show_code_sha256")),
    )
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.create_index("ix_consents_holder", ["holder_code", "created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_consents_department_id"), ["department_id"], unique=False
        )
    op.create_table(
        "usage_records",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=True,
        ),
        sa.Column("usage_id", sa.String(length=40), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("holder_code", sa.String(length=64), nullable=True),
        sa.Column("holder_type", sa.String(length=3), nullable=True),
        sa.Column("certificate_id", sa.String(length=40), nullable=True),
        sa.Column("identifier", sa.String(length=128), nullable=True),
        sa.Column("use_cause", sa.String(length=200), nullable=False),
        sa.Column("matter", sa.String(length=200), nullable=False),
        sa.Column("case_number", sa.String(length=64), nullable=True),
        sa.Column("consent_id", sa.String(length=40), nullable=True),
        sa.Column("result", sa.String(length=40), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("salt", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_usage_records_department_id_departments"),
        ),
        sa.ForeignKeyConstraint(
            ["certificate_id"],
            ["certificates.id"],
            name=op.f("fk_usage_records_certificate_id_certificates"),
        ),
        sa.ForeignKeyConstraint(
            ["consent_id"], ["consents.id"], name=op.f("fk_usage_records_consent_id_consents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_records")),
        sa.UniqueConstraint("usage_id", name=op.f("uq_usage_records_usage_id")),
    )
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.create_index("ix_usage_records_holder", ["holder_code", "id"], unique=False)
        batch_op.create_index(
            "ix_usage_records_certificate", ["certificate_id", "id"], unique=False
        )
        batch_op.create_index(
            "ix_usage_records_department",
            ["department_id", "certificate_id", "created_at"],
            unique=False,
        )


def _fill(connection: sa.Connection) -> None:
    rows = connection.execute(
        sa.text("SELECT id, type_code, holder_code, fields FROM certificates")
    ).all()
    update = sa.text(
        "UPDATE certificates SET national_holder_code = :code, national_holder_type = :type "
        "WHERE id = :id"
    )
    for row in rows:
        code, kind = row.holder_code, "001"
        if not code:
            fields = row.fields if isinstance(row.fields, dict) else json.loads(row.fields)
            numbers = [fields.get(n) for n in _ID_NUMBER_FIELDS.get(row.type_code, ())]
            code, kind = next((str(n) for n in numbers if n), None), "111"
        if code:
            connection.execute(update, {"code": code, "type": kind, "id": row.id})


def downgrade() -> None:
    with op.batch_alter_table("usage_records", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_records_department")
        batch_op.drop_index("ix_usage_records_certificate")
        batch_op.drop_index("ix_usage_records_holder")
    op.drop_table("usage_records")
    with op.batch_alter_table("consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_consents_department_id"))
        batch_op.drop_index("ix_consents_holder")
    op.drop_table("consents")
    op.drop_index("ix_certificates_national_holder", table_name="certificates")
    op.drop_column("certificates", "national_holder_type")
    op.drop_column("certificates", "national_holder_code")
