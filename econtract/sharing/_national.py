"""The national metadata (GB/T 36903) of a registered certificate, as the API shows it."""

from __future__ import annotations

from datetime import date

from econtract.clock import CHINA
from econtract.issuance import effective_status, get_template
from econtract.licence_identifier import parse
from econtract.licence_metadata import NationalMetadata, holder_identity, national_status
from econtract.models import Certificate


def national_metadata(certificate: Certificate, *, today: date) -> NationalMetadata:
    """The GB/T 36903 metadata of ``certificate``, with its national status on ``today``."""
    template = get_template(certificate.type_code)
    identifier = parse(certificate.identifier)
    holder_code, holder_type = holder_identity(
        certificate.holder_code, certificate.fields, template.id_number_fields
    )
    status_code, status = national_status(effective_status(certificate, today).value)
    return NationalMetadata(
        name=template.name,
        number=certificate.number,
        identifier=certificate.identifier,
        type_code=identifier.type_code,
        issuer_name=certificate.issuer.name,
        issuer_code=identifier.issuer_code,
        issue_date=certificate.issued_at.astimezone(CHINA).date(),
        valid_from=certificate.valid_from,
        valid_until=certificate.valid_until,
        holder_name=certificate.holder_name,
        holder_code=holder_code,
        holder_type=holder_type,
        related_matter=None,
        status=status,
        status_code=status_code,
    )
