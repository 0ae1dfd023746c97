"""Departments: registered by a valid credit code, once; bad input changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from econtract import db
from econtract.departments import add_department, get_department, list_departments
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.models import AuditEvent, Department
from econtract.services import Services
from tests.factories import OPERATOR


def count(services: Services, model: type[Department] | type[AuditEvent]) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def add_yuanhang(services: Services) -> Department:
    with db.transaction(services.sessions) as session:
        return add_department(
            session,
            code="9133010052CL12THX9",
            name="杭州远航建设工程有限公司",
            region=None,
            actor=OPERATOR,
        )


def test_a_new_departments_region_is_read_from_its_credit_code(initialised: Services) -> None:
    assert add_yuanhang(initialised).region == "330100"


def test_adding_a_department_is_audited(initialised: Services) -> None:
    add_yuanhang(initialised)
    with initialised.sessions() as session:
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "department.create",
                AuditEvent.target_id == "9133010052CL12THX9",
            )
        ).one()
        assert event.actor == "cli:test"


def test_duplicate_department_is_a_conflict_and_changes_nothing(initialised: Services) -> None:
    before = count(initialised, Department), count(initialised, AuditEvent)
    with (
        pytest.raises(ConflictError, match="already exists"),
        db.transaction(initialised.sessions) as session,
    ):
        add_department(session, code="11330100002502899U", name="重复", region=None, actor=OPERATOR)
    assert (count(initialised, Department), count(initialised, AuditEvent)) == before


def test_malformed_credit_code_is_refused(initialised: Services) -> None:
    with initialised.sessions() as session:
        before = [d.code for d in list_departments(session)]
    with (
        pytest.raises(InvalidInputError, match="wrong check character"),
        db.transaction(initialised.sessions) as session,
    ):
        add_department(session, code="9133010052CL12THX0", name="x", region=None, actor=OPERATOR)
    with initialised.sessions() as session:
        assert [d.code for d in list_departments(session)] == before
    assert "9133010052CL12THX0" not in before


def test_bad_region_is_refused(initialised: Services) -> None:
    with (
        pytest.raises(InvalidInputError, match="6-digit"),
        db.transaction(initialised.sessions) as session,
    ):
        add_department(session, code="9133010052CL12THX9", name="x", region="33", actor=OPERATOR)


def test_unknown_department_is_not_found(initialised: Services) -> None:
    with (
        pytest.raises(NotFoundError, match="No department with code '9133100015J1YG617W'"),
        initialised.sessions() as session,
    ):
        get_department(session, "9133100015J1YG617W")


def test_name_longer_than_the_seal_can_carry_is_refused(initialised: Services) -> None:
    with (
        pytest.raises(InvalidInputError, match="31 characters; at most 30"),
        db.transaction(initialised.sessions) as session,
    ):
        add_department(
            session, code="9133010052CL12THX9", name="局" * 31, region=None, actor=OPERATOR
        )
