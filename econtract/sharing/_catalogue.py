"""The catalogue (证照目录): every licence type as a using department needs to know it.

For each type: its code and names, its national type code (GB/T 36904: the defining
authority's 18-character credit code and three digits) and so its defining authority, the
departments that issue it here, who may hold it (national holder types) and the JSON Schema
of its fields.

The issuing departments are those that have issued at least one licence of the type in this
registry: a fact the registry can show, not a guess. Any department with a licence seal
could issue any type, so the seals alone would list every department under every type and
tell a using department nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract.issuance import ID_NUMBER_PATTERN, TEMPLATES, LicenceTemplate
from econtract.licence_metadata import HolderType
from econtract.models import Certificate, Department


@dataclass(frozen=True, kw_only=True)
class IssuingDepartment:
    """A department that issues a type."""

    code: str
    """Its unified social credit code."""
    name: str
    """Its name."""


@dataclass(frozen=True, kw_only=True)
class CatalogueEntry:
    """One licence type of the catalogue."""

    code: str
    """The type's code here, e.g. ``business_licence``."""
    name: str
    """Its Chinese name, e.g. 营业执照."""
    name_en: str
    """Its English name."""
    version: int
    """The version of its schema."""
    national_type_code: str
    """The GB/T 36904 type code (21 characters)."""
    defining_authority: str
    """The credit code of the authority that defines the type: the national type code's
    first 18 characters."""
    issuing_departments: tuple[IssuingDepartment, ...]
    """The departments that have issued it here, by code."""
    holder_types: tuple[HolderType, ...]
    """Who may hold it: ``001`` (credit code), ``111`` (citizen identity number)."""
    fields_schema: dict[str, Any]
    """The JSON Schema of its fields (a copy: the caller may change it)."""


def holder_types(template: LicenceTemplate) -> tuple[HolderType, ...]:
    """The national holder types of a type, read from its holder fields.

    A type with an identity-number field may be held by a person (``111``); a type whose
    holder is named by a credit code, or that has no personal number at all (the builder
    of a construction permit is an organisation), is held by an organisation (``001``).
    """
    properties = template.properties
    personal = any(prop.get("pattern") == ID_NUMBER_PATTERN for prop in properties.values())
    organisational = template.holder_code_field is not None or not personal
    return tuple(
        kind
        for kind, present in (
            (HolderType.CREDIT_CODE, organisational),
            (HolderType.CITIZEN_ID, personal),
        )
        if present
    )


def read_catalogue(session: Session) -> list[CatalogueEntry]:
    """Every licence type, in the order of :data:`~econtract.issuance.TEMPLATES`."""
    issuers: dict[str, list[IssuingDepartment]] = {}
    rows = session.execute(
        select(Certificate.type_code, Department.code, Department.name)
        .join(Department, Department.id == Certificate.department_id)
        .distinct()
        .order_by(Certificate.type_code, Department.code)
    )
    for type_code, code, name in rows:
        issuers.setdefault(type_code, []).append(IssuingDepartment(code=code, name=name))
    entries = []
    for template in TEMPLATES.values():
        national = template.national_type_code
        entries.append(
            CatalogueEntry(
                code=template.code,
                name=template.name,
                name_en=template.name_en,
                version=template.version,
                national_type_code=national,
                defining_authority=national[:18],
                issuing_departments=tuple(issuers.get(template.code, ())),
                holder_types=holder_types(template),
                fields_schema=copy.deepcopy(template.schema),
            )
        )
    return entries
