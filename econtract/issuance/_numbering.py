"""Licence numbers: one counter per department, type and year, row-locked, never reused.

:func:`allocate_number` is the last statement but one of the claiming transaction
(:mod:`econtract.issuance._claims`), so that the counter's row lock is held only until that
short transaction commits. A number handed out in a transaction that rolls back was never
handed out; a committed one is issued or declared void, and never handed out again.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from econtract.errors import ConflictError
from econtract.issuance._templates import LicenceTemplate
from econtract.models import Department, NumberCounter


def format_number(template: LicenceTemplate, department: Department, year: int, value: int) -> str:
    """A licence number: type prefix, the department's region, the year, a 6-digit sequence.

    For example ``YZ3301002026000042``; unique per department and type, never reused.
    """
    region = department.region or department.code[2:8]
    return f"{template.number_prefix}{region}{year}{value:06d}"


def allocate_number(
    session: Session, department: Department, template: LicenceTemplate, year: int
) -> str:
    """The next number of the department's counter for this type and year (row-locked)."""
    bump = (
        update(NumberCounter)
        .where(
            NumberCounter.department_id == department.id,
            NumberCounter.type_code == template.code,
            NumberCounter.year == year,
        )
        .values(last_value=NumberCounter.last_value + 1)
        .returning(NumberCounter.last_value)
    )
    value = session.execute(bump).scalar_one_or_none()
    if value is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(
            insert(NumberCounter)
            .values(department_id=department.id, type_code=template.code, year=year, last_value=0)
            .on_conflict_do_nothing()
        )
        value = session.execute(bump).scalar_one()
    if value >= 1_000_000:
        raise ConflictError(
            f"The {template.name} numbers of {year} are used up for this department."
        )
    return format_number(template, department, year, value)
