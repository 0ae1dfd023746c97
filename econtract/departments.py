"""Departments: the issuing authorities, known by their unified social credit code."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.models import Department
from econtract.text import clean_text
from econtract.uscc import InvalidCreditCodeError, validate_credit_code

_REGION = re.compile(r"^\d{6}$")


def add_department(
    session: Session, *, code: str, name: str, region: str | None, actor: audit.Actor
) -> Department:
    """Register a department; refuse a malformed code, a bad region or a duplicate."""
    code = code.strip().upper()
    try:
        validate_credit_code(code)
    except InvalidCreditCodeError as exc:
        raise InvalidInputError(str(exc), errors=[("/code", str(exc))]) from None
    # Thirty characters is what the round seal can carry along its upper arc.
    name = clean_text(name, field="name", max_length=30)
    if region is None:
        # The administrative division is characters 3 to 8 of the credit code.
        region = code[2:8]
    elif not _REGION.match(region):
        raise InvalidInputError(
            f"A region is a 6-digit administrative division code, not {region!r}.",
            errors=[("/region", "not 6 digits")],
        )
    if session.scalar(select(Department.id).where(Department.code == code)) is not None:
        raise ConflictError(f"A department with code {code} already exists.")
    department = Department(code=code, name=name, region=region)
    session.add(department)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="department.create",
        department_id=department.id,
        target_type="department",
        target_id=code,
        detail={"name": name, "region": region},
    )
    return department


def get_department(session: Session, code: str) -> Department:
    """The department with ``code``; ``NotFoundError`` when there is none."""
    department = session.scalar(select(Department).where(Department.code == code.strip().upper()))
    if department is None:
        raise NotFoundError(f"No department with code {code!r}.")
    return department


def list_departments(session: Session) -> list[Department]:
    """Every department, by code."""
    return list(session.scalars(select(Department).order_by(Department.code)))
