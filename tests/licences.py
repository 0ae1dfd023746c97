"""Issue an example licence in tests, and make the QR token printed on it.

A holder holds one valid licence of a type per department: every licence issued here goes to
a holder of its own (the template's example with a fresh credit code).
"""

from __future__ import annotations

import itertools
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.issuance import (
    TEMPLATES,
    IssueRequest,
    QRClaims,
    fields_digest,
    issue_certificate,
    make_qr_token,
)
from econtract.models import Certificate, Department, Seal, SealKind
from econtract.sealing import seal_identity, sealing_context
from econtract.services import Services
from econtract.uscc import check_character, organisation_check_character
from signing.options import SealLevel, SealOptions
from signing.sealer import seal_pdf_bytes
from tests.factories import OPERATOR
from tests.signing.sealing import make_pdf

_serials = itertools.count(secrets.randbelow(10**7) * 10)


def fresh_credit_code() -> str:
    """A valid unified social credit code (GB 32100) not handed out before in this process."""
    body = f"{next(_serials) % 10**8:08d}"
    first17 = "91330100" + body + organisation_check_character(body)
    return first17 + check_character(first17)


def holder_fields(type_code: str = "business_licence") -> dict[str, Any]:
    """The template's example fields for a holder of its own (a fresh credit code)."""
    template = TEMPLATES[type_code]
    fields = dict(template.schema["examples"][0])
    if template.holder_code_field in fields:
        fields[template.holder_code_field] = fresh_credit_code()
    return fields


def issue_example(services: Services, type_code: str = "business_licence") -> Certificate:
    """A licence of the demo department with the template's example fields, for a new holder."""
    return issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code=type_code, fields=holder_fields(type_code)),
        actor=OPERATOR,
    ).certificate


def qr_token(services: Services, certificate: Certificate) -> str:
    """The token of the certificate's QR code (as issuance makes it)."""
    return make_qr_token(
        services.pki.token_signer,
        QRClaims(
            certificate_id=certificate.id,
            number=certificate.number,
            type_code=certificate.type_code,
            fields_digest=fields_digest(certificate.fields),
            valid_from=certificate.valid_from,
            valid_until=certificate.valid_until,
            issued_at=certificate.issued_at,
        ),
    )


def seal_outside_the_registry(services: Services, pdf: bytes | None = None) -> bytes:
    """``pdf`` (a plain page by default) sealed at B-LT with the demo department's licence
    seal by the signing layer directly: genuinely sealed by this service, never registered
    (what an issuance that died before its transaction committed would have left)."""
    with services.sessions() as session:
        seal = session.scalars(select(Seal).where(Seal.kind == SealKind.LICENCE.value)).one()
        department = session.get(Department, seal.department_id)
        assert department is not None
        session.expunge_all()
    who = seal_identity(services, seal, department)
    context = sealing_context(services, who.certificate, long_term=True)
    # pyHanko's synchronous API runs its own event loop: keep it off any running one.
    with ThreadPoolExecutor(1) as pool:
        sealed, _ = pool.submit(
            seal_pdf_bytes,
            pdf or make_pdf(text="sealed outside the registry"),
            identity=who,
            options=SealOptions(level=SealLevel.B_LT),
            context=context,
        ).result()
    return sealed
