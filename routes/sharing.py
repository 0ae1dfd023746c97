"""Licence sharing over HTTP: the catalogue of licence types (证照目录)."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import Response
from pydantic import BaseModel, Field, TypeAdapter

from econtract.sharing import CatalogueEntry, read_catalogue
from routes.deps import ServicesDep

router = APIRouter(prefix="/v1", tags=["sharing"])

#: How long a client or a proxy may keep the catalogue without asking again: it changes
#: when a department issues a type for the first time, which a few minutes' delay does not hurt.
CATALOGUE_MAX_AGE = 300


class IssuingDepartmentPublic(BaseModel):
    """A department that issues a type here."""

    code: str = Field(description="Its unified social credit code.")
    name: str


class CatalogueTypePublic(BaseModel):
    """One licence type of the catalogue."""

    code: str = Field(description="The type's code here, as POST /v1/certificates takes it.")
    name: str = Field(description="The Chinese name, e.g. 营业执照.")
    name_en: str
    version: int = Field(description="The version of the field schema.")
    national_type_code: str = Field(
        description="The GB/T 36904 type code: the defining authority's credit code and three "
        "digits."
    )
    defining_authority: str = Field(
        description="The credit code of the authority that defines the type."
    )
    issuing_departments: list[IssuingDepartmentPublic] = Field(
        description="The departments that have issued a licence of this type here."
    )
    holder_types: list[str] = Field(
        description="Who may hold it (GB/T 36903): 001 a unified social credit code, "
        "111 a citizen's identity number."
    )
    fields_schema: dict[str, Any] = Field(description="The JSON Schema of the type's fields.")

    @classmethod
    def of(cls, entry: CatalogueEntry) -> CatalogueTypePublic:
        """The public form of a catalogue entry."""
        return cls(
            code=entry.code,
            name=entry.name,
            name_en=entry.name_en,
            version=entry.version,
            national_type_code=entry.national_type_code,
            defining_authority=entry.defining_authority,
            issuing_departments=[
                IssuingDepartmentPublic(code=d.code, name=d.name) for d in entry.issuing_departments
            ],
            holder_types=[str(kind) for kind in entry.holder_types],
            fields_schema=entry.fields_schema,
        )


_CATALOGUE = TypeAdapter(list[CatalogueTypePublic])


@router.get(
    "/catalogue",
    response_model=list[CatalogueTypePublic],
    responses={304: {"description": "The catalogue has not changed since the ETag given."}},
)
def catalogue(
    services: ServicesDep,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Every licence type with its national type code, defining authority, issuing
    departments, holder types and field schema. Public; answers with an ``ETag`` and
    ``Cache-Control``, and 304 to a matching ``If-None-Match``."""
    with services.sessions() as session:
        entries = read_catalogue(session)
    body = _CATALOGUE.dump_json([CatalogueTypePublic.of(e) for e in entries])
    # A strong validator over the exact bytes: equal bytes, equal tag, on every worker.
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={CATALOGUE_MAX_AGE}"}
    if if_none_match is not None and etag in {t.strip() for t in if_none_match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
