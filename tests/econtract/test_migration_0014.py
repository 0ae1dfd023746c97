"""Migration 0014: the index the certificate list reads a department's certificates by."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from econtract import db
from econtract.certificates import CertificateQuery, list_certificates
from econtract.models import Base, Certificate
from econtract.services import Services
from tests.licences import issue_example

INDEX = "ix_certificates_department_issued"


def _indexes(services: Services) -> dict[str, list[str | None]]:
    with services.engine.connect() as connection:
        found = inspect(connection).get_indexes("certificates")
    return {index["name"]: index["column_names"] for index in found if index["name"]}


def test_migration_0014_adds_the_newest_first_index_and_removes_it_on_downgrade(
    initialised: Services,
) -> None:
    issued = [issue_example(initialised), issue_example(initialised, "food_business_permit")]
    assert _indexes(initialised)[INDEX] == ["department_id", "issued_at", "id"]
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0013")
    assert INDEX not in _indexes(initialised)
    command.upgrade(config, "0014")
    assert _indexes(initialised)[INDEX] == ["department_id", "issued_at", "id"]
    command.upgrade(config, "head")  # the model reads what later migrations add
    # The migrated registry answers the list as before: all of them, newest first.
    with initialised.sessions() as session:
        listed = list_certificates(session, CertificateQuery(department_id=issued[0].department_id))
        order = [(c.issued_at, c.id) for c in listed]
    assert {c.id for c in listed} == {c.id for c in issued}
    assert order == sorted(order, reverse=True)


def test_the_certificates_table_after_the_migrations_matches_the_model(
    initialised: Services,
) -> None:
    def certificates_only(obj: object, name: str | None, kind: str, *_: object) -> bool:
        table = getattr(obj, "table", obj)
        return getattr(table, "name", name) == Certificate.__tablename__ and db.exists_on(
            obj, initialised.engine.dialect.name
        )

    with initialised.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": certificates_only}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []
