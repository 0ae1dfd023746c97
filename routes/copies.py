"""Annotated copies (加注件) over HTTP: POST /v1/use/copies."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from econtract.sharing import make_annotated_copy
from routes.deps import ServicesDep, UserDep
from routes.downloads import pdf_response
from routes.use import use_context

router = APIRouter(prefix="/v1", tags=["use"])


class CopyRequest(BaseModel):
    """What a using department asks a copy for."""

    model_config = ConfigDict(extra="forbid")

    identifier: str = Field(
        max_length=128, description="The licence's identifier (GB/T 36904, 1.2.156.3005.2.…)."
    )
    use_cause: str = Field(max_length=200, description="Why (用证事由).")
    matter: str = Field(max_length=200, description="The matter (事项); the grant must list it.")
    case_number: str | None = Field(default=None, max_length=64, description="The case number.")
    consent: str | None = Field(
        default=None, max_length=40, description="The holder's consent id, where one is needed."
    )
    valid_until: date | None = Field(
        default=None,
        description="The copy's last day; 30 days by default, at most copy_max_days and never "
        "after the licence's own last day.",
    )


@router.post(
    "/use/copies",
    status_code=201,
    response_class=StreamingResponse,
    responses={
        201: {"content": {"application/pdf": {}}, "description": "The sealed annotated copy."},
        403: {"description": "No grant, or the consent is missing or does not cover the use."},
    },
)
def make_copy(
    body: CopyRequest, request: Request, services: ServicesDep, principal: UserDep
) -> StreamingResponse:
    """An annotated copy (加注件) of a licence for the caller's department and matter: every
    page marked for whom, for what and until when, the original attached byte for byte, and
    sealed with the platform seal. The use is recorded, granted or refused."""
    context = use_context(request, principal, body)
    copy = make_annotated_copy(
        services,
        context,
        identifier=body.identifier,
        consent_id=body.consent,
        valid_until=body.valid_until,
    )
    return pdf_response(
        services.blobs.open(copy.document.blob_key),
        filename=copy.file_name,
        status_code=201,
        headers={
            "ETag": f'"{copy.document.pdf_sha256}"',
            "X-Document-Id": copy.document.id,
            "X-Usage-Id": copy.usage_id,
            "X-Copy-Valid-Until": copy.valid_until.isoformat(),
        },
    )
