"""Enterprises: companies that seal their own contracts and applications with e-seals the
service holds for them (the "cloud seal" model: the keys stay in the service's key store).

An enterprise is a registered body like a department (a unified social credit code checked as
GB 32100 prescribes, a name for its round seal), with seals of the kinds
:data:`~econtract.seals.ENTERPRISE_SEAL_KINDS` and API clients of scope ``sign`` only: it
issues nothing and reads no one else's records.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit
from econtract.bodies import BodyKind
from econtract.departments import get_department, register_body
from econtract.models import Department


def add_enterprise(session: Session, *, code: str, name: str, actor: audit.Actor) -> Department:
    """Register an enterprise; refuse a malformed credit code, a bad name or a code already
    registered (as an enterprise or a department)."""
    return register_body(
        session, code=code, name=name, region=None, kind=BodyKind.ENTERPRISE, actor=actor
    )


def get_enterprise(session: Session, code: str) -> Department:
    """The enterprise with ``code``; ``NotFoundError`` when there is none (or it is a
    department)."""
    return get_department(session, code, kinds=(BodyKind.ENTERPRISE,))


def list_enterprises(session: Session) -> list[Department]:
    """Every enterprise, by code."""
    return list(
        session.scalars(
            select(Department)
            .where(Department.kind == BodyKind.ENTERPRISE.value)
            .order_by(Department.code)
        )
    )
