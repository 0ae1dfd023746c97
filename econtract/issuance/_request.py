"""An issuing request, and the one step that validates it: fields, validity and holder.

:func:`validate_request` is the only place an :class:`IssueRequest` meets its template:
it returns a :class:`ValidatedRequest` that carries everything the later steps need (the
template, the cleaned fields, the validity, the holder), so numbering, rendering and
registration read the value object and never go back to the template's checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from econtract.errors import InvalidInputError, NotFoundError
from econtract.issuance._catalogue import get_template
from econtract.issuance._templates import LicenceTemplate, validate_fields


@dataclass(frozen=True, kw_only=True)
class IssueRequest:
    """What an approval system asks for."""

    type_code: str
    """The certificate type (template code)."""
    fields: dict[str, Any]
    """The licence's fields, per the type's JSON Schema."""
    valid_from: date | None = None
    """First day of validity; today when unset."""
    valid_until: date | None = None
    """Last day of validity; from the type's default term when unset."""
    supersedes: str | None = field(default=None, repr=False)
    """Set by :func:`econtract.certificates.supersede`: the certificate this one replaces."""


@dataclass(frozen=True, kw_only=True)
class ValidatedRequest:
    """An :class:`IssueRequest` that passed its template's checks; made by
    :func:`validate_request` only."""

    template: LicenceTemplate
    """The certificate type."""
    fields: dict[str, Any]
    """The fields, cleaned (NFC, stripped) and valid for the template."""
    valid_from: date
    """The first day of validity."""
    valid_until: date | None
    """The last day of validity; ``None`` for no end."""
    holder_name: str
    """The holder's name, from the template's holder name field."""
    holder_code: str | None
    """The holder's credit code, when the template has one and the fields give it."""
    supersedes: str | None
    """The certificate this one replaces, if any."""


def validate_request(request: IssueRequest, *, today: date) -> ValidatedRequest:
    """Check ``request`` against its type: the type exists, the fields are valid, and the
    validity neither ends before it starts nor lies in the past.

    Bad input raises :class:`~econtract.errors.InvalidInputError` naming each fault by a JSON
    pointer into the request: ``/type``, ``/fields/…``, ``/valid_until``.
    """
    try:
        template = get_template(request.type_code)
    except NotFoundError as exc:
        raise InvalidInputError(
            exc.message, errors=[("/type", "unknown certificate type")]
        ) from None
    fields = validate_fields(template, request.fields, at="/fields", today=today)
    valid_from, valid_until = template.validity(
        fields,
        valid_from=request.valid_from,
        valid_until=request.valid_until,
        today=today,
        at="/fields",
    )
    code_field = template.holder_code_field
    return ValidatedRequest(
        template=template,
        fields=fields,
        valid_from=valid_from,
        valid_until=valid_until,
        holder_name=str(fields[template.holder_name_field]),
        holder_code=str(fields[code_field]) if code_field and code_field in fields else None,
        supersedes=request.supersedes,
    )
