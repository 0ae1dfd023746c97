"""Departments: the issuing authorities, known by their unified social credit code.

Enterprises (:mod:`econtract.enterprises`) are registered bodies of the same table, told apart
by their kind; where a department is asked for, an enterprise's code is not one."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit
from econtract.bodies import BodyKind
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.models import Department
from econtract.text import clean_text
from econtract.uscc import InvalidCreditCodeError, validate_credit_code

_REGION = re.compile(r"^\d{6}$")


def add_department(
    session: Session, *, code: str, name: str, region: str | None, actor: audit.Actor
) -> Department:
    """Register a department; refuse a malformed code, a bad region or a duplicate."""
    return register_body(
        session, code=code, name=name, region=region, kind=BodyKind.DEPARTMENT, actor=actor
    )


def register_body(
    session: Session,
    *,
    code: str,
    name: str,
    region: str | None,
    kind: BodyKind,
    actor: audit.Actor,
) -> Department:
    """Register a department or an enterprise; refuse a malformed code (GB 32100), a bad
    region or a code already registered (as either kind)."""
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
    existing = session.scalar(select(Department.kind).where(Department.code == code))
    if existing is not None:
        raise ConflictError(
            f"{_article(existing).capitalize()} {existing} with code {code} already exists."
        )
    body = Department(code=code, name=name, region=region, kind=kind.value)
    session.add(body)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"{kind.value}.create",
        department_id=body.id,
        target_type=kind.value,
        target_id=code,
        detail={"name": name, "region": region},
    )
    return body


def get_department(
    session: Session, code: str, *, kinds: tuple[BodyKind, ...] = (BodyKind.DEPARTMENT,)
) -> Department:
    """The registered body with ``code`` if it is of one of ``kinds`` (a department unless
    told otherwise); ``NotFoundError`` when there is none, naming what it is instead."""
    body = session.scalar(select(Department).where(Department.code == code.strip().upper()))
    wanted = " or ".join(k.value for k in kinds)
    if body is None:
        raise NotFoundError(f"No {wanted} with code {code!r}.")
    if body.kind not in kinds:
        raise NotFoundError(
            f"{body.code} is {_article(body.kind)} {body.kind}, not {_article(wanted)} {wanted}."
        )
    return body


def list_departments(session: Session) -> list[Department]:
    """Every department (not the enterprises), by code."""
    return list(
        session.scalars(
            select(Department)
            .where(Department.kind == BodyKind.DEPARTMENT.value)
            .order_by(Department.code)
        )
    )


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"
