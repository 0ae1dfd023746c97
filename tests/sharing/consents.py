"""Set up a using department for the tests of the use calls: the department, its grants, and
holders' consents written straight into the registry (as the holder app would have them
recorded), each with a 亮证码 when asked."""

from __future__ import annotations

from datetime import timedelta

from econtract import db
from econtract.departments import add_department
from econtract.models import Certificate, Consent, Department, new_public_id
from econtract.services import Services
from econtract.sharing import add_grant, new_show_code, show_code_digest
from tests.factories import OPERATOR

USER = "9133100015J1YG617W"
"""The using department of these tests (a construction bureau)."""
OTHER_USER = "11330000123456788K"
"""A second using department."""
MATTER = "建筑工程施工许可"
"""The matter the grants list."""


def add_user(services: Services, code: str = USER, name: str = "台州市建设局") -> None:
    """Register a using department."""
    with db.transaction(services.sessions) as session:
        add_department(session, code=code, name=name, region=None, actor=OPERATOR)


def grant(
    services: Services,
    type_code: str = "business_licence",
    *,
    department: str = USER,
    requires_consent: bool = False,
    matters: tuple[str, ...] = (MATTER,),
) -> None:
    """Let ``department`` use ``type_code`` for ``matters``."""
    with db.transaction(services.sessions) as session:
        add_grant(
            session,
            department_code=department,
            type_code=type_code,
            matters=matters,
            requires_consent=requires_consent,
            actor=OPERATOR,
            clock=services.clock,
        )


def insert_consent(
    services: Services,
    certificate: Certificate,
    *,
    department: str = USER,
    one_licence: bool = True,
    matter: str = MATTER,
    valid_for: timedelta = timedelta(days=30),
    show_code_for: timedelta | None = None,
    withdrawn: bool = False,
) -> tuple[str, str | None]:
    """A consent of the certificate's holder for ``department``: ``(consent id, 亮证码)``.

    ``valid_for`` counts from now (negative for an expired consent); with ``show_code_for``
    the consent gets a 亮证码 that expires that long from now (negative: expired already).
    """
    assert certificate.national_holder_code is not None
    assert certificate.national_holder_type is not None
    now = services.clock.now()
    code = None if show_code_for is None else new_show_code()
    with db.transaction(services.sessions) as session:
        user = session.query(Department).filter_by(code=department).one()
        consent = Consent(
            id=new_public_id("cns"),
            holder_code=certificate.national_holder_code,
            holder_type=certificate.national_holder_type,
            department_id=user.id,
            type_code=certificate.type_code,
            certificate_id=certificate.id if one_licence else None,
            matter=matter,
            valid_until=now + valid_for,
            show_code_sha256=None if code is None else show_code_digest(code),
            show_code_expires_at=None if show_code_for is None else now + show_code_for,
            client_id="holder-app",
            created_at=now,
            withdrawn_at=now if withdrawn else None,
        )
        session.add(consent)
    return consent.id, code
