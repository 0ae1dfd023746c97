"""Migration 0015 and the holder filter of the certificate list: a part of three characters
or more is looked for anywhere in the holder's name, a shorter one at its start, and on
PostgreSQL a trigram index answers both."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import CertificateQuery, holder_matches, list_certificates
from econtract.issuance import IssueRequest, issue_certificate
from econtract.models import Certificate
from econtract.services import Services
from tests.factories import OPERATOR
from tests.licences import holder_fields

INDEX = "ix_certificates_holder_name_trgm"
NAMES = ("杭州远航建设工程有限公司", "湖州远航贸易有限公司", "远航100%_商行有限公司")


def _issue(services: Services, name: str) -> Certificate:
    return issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code="business_licence", fields=holder_fields() | {"name": name}),
        actor=OPERATOR,
    ).certificate


def _listed(services: Services, department_id: int, holder: str) -> set[str]:
    with services.sessions() as session:
        found = list_certificates(
            session, CertificateQuery(department_id=department_id, holder=holder)
        )
        return {c.holder_name for c in found}


def _indexes(services: Services) -> dict[str, dict[str, object]]:
    with services.engine.connect() as connection:
        found = inspect(connection).get_indexes("certificates")
    return {str(index["name"]): dict(index) for index in found}


@pytest.fixture
def department_id(initialised: Services) -> int:
    """The demo department, holding a licence for each of ``NAMES``."""
    issued = [_issue(initialised, name) for name in NAMES]
    return issued[0].department_id


def test_a_part_of_three_characters_is_found_anywhere_in_the_name(
    initialised: Services, department_id: int
) -> None:
    assert _listed(initialised, department_id, "远航建") == {NAMES[0]}
    assert _listed(initialised, department_id, "远航贸易") == {NAMES[1]}
    assert _listed(initialised, department_id, "有限公司") == set(NAMES)


def test_a_part_of_one_or_two_characters_is_found_at_the_start_of_the_name(
    initialised: Services, department_id: int
) -> None:
    assert _listed(initialised, department_id, "远航") == {NAMES[2]}
    assert _listed(initialised, department_id, "湖") == {NAMES[1]}
    assert _listed(initialised, department_id, "公司") == set()


def test_like_wildcards_in_the_part_are_matched_as_written(
    initialised: Services, department_id: int
) -> None:
    assert _listed(initialised, department_id, "100%_商") == {NAMES[2]}
    assert _listed(initialised, department_id, "远航%") == set()
    assert _listed(initialised, department_id, "远_") == set()
    assert _listed(initialised, department_id, "0%建设") == set()
    assert _listed(initialised, department_id, "远航' OR '1'='1") == set()


def test_migration_0015_adds_the_trigram_index_on_postgresql_and_removes_it_on_downgrade(
    initialised: Services,
) -> None:
    if initialised.engine.dialect.name != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's")
    assert _indexes(initialised)[INDEX]["column_names"] == ["holder_name"]
    options = _indexes(initialised)[INDEX]["dialect_options"]
    assert isinstance(options, dict)
    assert options["postgresql_using"] == "gin"
    assert options["postgresql_ops"] == {"holder_name": "gin_trgm_ops"}
    config = db.alembic_config(initialised.engine)
    command.downgrade(config, "0014")
    assert INDEX not in _indexes(initialised)
    command.upgrade(config, "head")
    assert _indexes(initialised)[INDEX]["column_names"] == ["holder_name"]


def test_migration_0015_leaves_sqlite_as_it_was(initialised: Services) -> None:
    if initialised.engine.dialect.name != "sqlite":
        pytest.skip("on PostgreSQL the migration adds the trigram index")
    config = db.alembic_config(initialised.engine)
    # Later migrations add indexes of their own: the schema is compared at 0015 itself.
    command.downgrade(config, "0015")
    before = _indexes(initialised)
    assert INDEX not in before
    command.downgrade(config, "0014")
    assert _indexes(initialised) == before
    command.upgrade(config, "0015")
    assert _indexes(initialised) == before
    command.upgrade(config, "head")


@pytest.mark.parametrize("part", ["远航建设", "远航%_", "湖州", "湖"])
def test_the_holder_filter_can_be_answered_by_the_trigram_index(
    initialised: Services, department_id: int, part: str
) -> None:
    if initialised.engine.dialect.name != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's")
    # A handful of rows would be read whole; forbidding that shows whether the condition as
    # the list writes it (escaped, with its parameter) can be looked up in the index at all.
    statement = select(Certificate.id).where(holder_matches(part))
    compiled = statement.compile(initialised.engine, compile_kwargs={"render_postcompile": True})
    with initialised.engine.connect() as connection:
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        plan = connection.exec_driver_sql(f"EXPLAIN {compiled.string}", compiled.params)
        assert INDEX in "\n".join(plan.scalars())
