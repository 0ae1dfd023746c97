"""Issue an example licence in tests, and make the QR token printed on it."""

from __future__ import annotations

from econtract import audit
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.issuance import IssueRequest, issue_certificate
from econtract.models import Certificate
from econtract.qrtoken import QRClaims, fields_digest, make_qr_token
from econtract.services import Services
from econtract.templates import TEMPLATES

OPERATOR = audit.Actor.operator("test")
"""The actor tests act as."""


def issue_example(services: Services, type_code: str = "business_licence") -> Certificate:
    """A licence of the demo department with the template's example fields."""
    return issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(
            type_code=type_code, fields=dict(TEMPLATES[type_code].schema["examples"][0])
        ),
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
