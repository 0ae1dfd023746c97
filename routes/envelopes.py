"""Envelopes over HTTP: departments (scope ``seal``) and enterprises (scope ``sign``) seal one
document in steps, each only its own field; non-parties see nothing (404)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from econtract import envelopes
from econtract.auth import Principal
from econtract.errors import InvalidInputError, PermissionDeniedError
from econtract.models import SealedDocument
from routes.certificates import IDEMPOTENCY_KEY_PARAMETER, check_idempotency_key
from routes.deps import LINK_HEADER_DOC, PrincipalDep, ServicesDep, actor_of, next_link
from routes.downloads import pdf_response

router = APIRouter(prefix="/v1/envelopes", tags=["envelopes"])


async def _party(principal: PrincipalDep) -> Principal:
    """A department's system with ``seal`` or an enterprise's with ``sign``."""
    if not principal.scopes & {"seal", "sign"}:
        raise PermissionDeniedError("Envelopes need the 'seal' scope (or 'sign' for enterprises).")
    return principal


PartyDep = Annotated[Principal, Depends(_party)]


class PartyIn(BaseModel):
    """A party of a step and where its field goes."""

    model_config = ConfigDict(extra="forbid")
    code: str = Field(description="The party's unified social credit code.")
    field: str = Field(description="Its field's name.", pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    page: int = Field(1, ge=1)
    x: float = 300.0
    y: float = 150.0


class StepIn(BaseModel):
    """Parties acting in parallel, and the step's deadline (办理时限)."""

    model_config = ConfigDict(extra="forbid")
    parties: list[PartyIn] = Field(min_length=1, max_length=20)
    deadline: datetime


class IssueIn(BaseModel):
    """A licence to issue on completion: its type and fields, checked at creation."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(description="The certificate type's code (GET /v1/certificate-types).")
    fields: dict[str, Any] = Field(description="The licence's fields, per the type's schema.")


class OnCompleteIn(BaseModel):
    """What completion does beyond the certificate (for a contract: leave it out)."""

    model_config = ConfigDict(extra="forbid")
    issue: IssueIn


class EnvelopeIn(BaseModel):
    """What a new envelope is: its title, the initiator's certifying seal, the steps, and
    what completion does."""

    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    seal: str = Field(description="One of the caller's seal ids: it certifies the document.")
    visible: str | None = Field(None, description="PAGE:X,Y of the initiator's own seal.")
    steps: list[StepIn] = Field(min_length=1, max_length=20)
    on_complete: OnCompleteIn | None = Field(
        None, description="For a case: the licence the initiator issues on completion."
    )


class SealIn(BaseModel):
    """The seal a party seals its field with."""

    model_config = ConfigDict(extra="forbid")
    seal: str


class ReasonIn(BaseModel):
    """Why a party declines or the initiator cancels."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=500)


def _public(view: envelopes.EnvelopeView) -> dict[str, Any]:
    return {
        "id": view.id,
        "title": view.title,
        "status": view.status,
        "step": view.step,
        "steps": view.steps,
        "progress": view.progress,
        "initiator": view.initiator,
        "document_id": view.document_id,
        "reason": view.reason,
        "created_at": view.created_at.isoformat(),
        "updated_at": view.updated_at.isoformat(),
        "pdf_url": f"/v1/envelopes/{view.id}/pdf",
        "completed_at": view.completed_at.isoformat() if view.completed_at else None,
        "completion_certificate": view.completion_certificate,
        "certificate_url": (
            f"/v1/envelopes/{view.id}/certificate" if view.completion_certificate else None
        ),
        "licence": view.licence,
        "parties": [
            {
                "code": p.code,
                "name": p.name,
                "kind": p.kind,
                "step": p.step,
                "field": p.field,
                "deadline": p.deadline.isoformat(),
                "status": p.status,
                "acted_at": p.acted_at.isoformat() if p.acted_at else None,
                "client_id": p.client_id,
                "document_id": p.document_id,
                "reason": p.reason,
            }
            for p in view.parties
        ],
    }


def _request(text: str) -> envelopes.EnvelopeRequest:
    try:
        given = EnvelopeIn.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        errors = (
            [("/envelope" + "".join(f"/{p}" for p in e["loc"]), e["msg"]) for e in exc.errors()]
            if isinstance(exc, ValidationError)
            else [("/envelope", "not JSON")]
        )
        raise InvalidInputError(
            "The envelope field is the envelope's JSON: title, seal, steps.", errors=errors
        ) from None
    return envelopes.EnvelopeRequest(
        title=given.title,
        seal_id=given.seal,
        placement=envelopes.Placement.parse(given.visible) if given.visible else None,
        steps=tuple(
            envelopes.StepSpec(
                deadline=step.deadline,
                parties=tuple(
                    envelopes.PartySpec(code=p.code, field=p.field, page=p.page, x=p.x, y=p.y)
                    for p in step.parties
                ),
            )
            for step in given.steps
        ),
        on_complete=(
            envelopes.IssueLicence(
                type_code=given.on_complete.issue.type, fields=given.on_complete.issue.fields
            )
            if given.on_complete
            else None
        ),
    )


@router.post(
    "",
    status_code=201,
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
    responses={403: {}, 404: {}, 409: {}, 413: {}, 422: {}, 428: {}},
)
def create(
    request: Request,
    services: ServicesDep,
    principal: PartyDep,
    file: Annotated[UploadFile, File(description="The PDF the parties seal.")],
    envelope: Annotated[str, Form(description="The envelope as JSON: title, seal, steps.")],
    idempotency_key: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> JSONResponse:
    """Start an envelope: the caller's seal certifies the PDF ("form filling and signing
    allowed") with a field reserved for every party and bound to it, and the first step opens.
    A retry with the same ``Idempotency-Key`` answers the same envelope."""
    check_idempotency_key(idempotency_key, "Starting an envelope")
    view = envelopes.create_envelope(
        services,
        source=file.file.read(),
        request=_request(envelope),
        actor=actor_of(request, principal),
        idempotency_key=idempotency_key,
    )
    return JSONResponse(
        _public(view), status_code=201, headers={"Location": f"/v1/envelopes/{view.id}"}
    )


@router.get("", responses={403: {}, 200: {"headers": {"Link": LINK_HEADER_DOC}}})
def list_mine(
    request: Request,
    services: ServicesDep,
    principal: PartyDep,
    status: Annotated[envelopes.EnvelopeStatus | None, Query()] = None,
    party: Annotated[
        str | None,
        Query(
            min_length=18,
            max_length=18,
            description="Only the envelopes this body (credit code) is a party to.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        str | None,
        Query(max_length=40, description="The cursor of the next page, from the Link header."),
    ] = None,
) -> JSONResponse:
    """The envelopes the caller started or is a party to, newest first; a full page carries
    ``Link: <…&after=…>; rel="next"`` when more follow."""
    views, more = envelopes.list_envelopes(
        services,
        actor=actor_of(request, principal),
        status=status,
        party=party.upper() if party else None,
        limit=limit,
        after=after,
    )
    headers = {"Link": next_link(request, views[-1].id)} if more and views else {}
    return JSONResponse({"envelopes": [_public(v) for v in views]}, headers=headers)


@router.get("/{envelope_id}", responses={403: {}, 404: {}})
def get_one(
    envelope_id: str, request: Request, services: ServicesDep, principal: PartyDep
) -> JSONResponse:
    """Every party's state and time; 404 for anyone who is no party."""
    view = envelopes.get_envelope(services, envelope_id, actor=actor_of(request, principal))
    return JSONResponse(_public(view))


@router.get("/{envelope_id}/pdf", response_class=StreamingResponse, responses={404: {}})
def get_pdf(
    envelope_id: str, request: Request, services: ServicesDep, principal: PartyDep
) -> StreamingResponse:
    """The document as it stands now."""
    view = envelopes.get_envelope(services, envelope_id, actor=actor_of(request, principal))
    with services.sessions() as session:
        document = session.get(SealedDocument, view.document_id)
        assert document is not None
        key = document.blob_key
    return pdf_response(services.blobs.open(key), filename=f"{view.id}.pdf")


@router.get("/{envelope_id}/certificate", response_class=StreamingResponse, responses={404: {}})
def get_certificate(
    envelope_id: str, request: Request, services: ServicesDep, principal: PartyDep
) -> StreamingResponse:
    """The completion certificate, sealed by the platform (404 before completion)."""
    view = envelopes.get_envelope(services, envelope_id, actor=actor_of(request, principal))
    document = envelopes.completion_certificate(services, envelope_id, view=view)
    return pdf_response(
        services.blobs.open(document.blob_key), filename=f"{view.id}-completion.pdf"
    )


@router.post("/{envelope_id}/seal", responses={403: {}, 404: {}, 409: {}, 422: {}})
def seal(
    envelope_id: str,
    body: SealIn,
    request: Request,
    services: ServicesDep,
    principal: PartyDep,
) -> JSONResponse:
    """Seal the caller's own field with one of its own seals, while its step is open and
    before the deadline (409 otherwise, naming why)."""
    view = envelopes.seal_step(
        services,
        envelope_id=envelope_id,
        seal_id=body.seal,
        actor=actor_of(request, principal),
        client_id=principal.client_id,
    )
    return JSONResponse(_public(view))


@router.post("/{envelope_id}/decline", responses={403: {}, 404: {}, 409: {}, 422: {}})
def decline(
    envelope_id: str,
    body: ReasonIn,
    request: Request,
    services: ServicesDep,
    principal: PartyDep,
) -> JSONResponse:
    """Decline, with a reason: the envelope stops."""
    view = envelopes.decline(
        services, envelope_id=envelope_id, reason=body.reason, actor=actor_of(request, principal)
    )
    return JSONResponse(_public(view))


@router.post("/{envelope_id}/cancel", responses={403: {}, 404: {}, 409: {}, 422: {}})
def cancel(
    envelope_id: str,
    body: ReasonIn,
    request: Request,
    services: ServicesDep,
    principal: PartyDep,
) -> JSONResponse:
    """The initiator cancels the envelope."""
    view = envelopes.cancel(
        services, envelope_id=envelope_id, reason=body.reason, actor=actor_of(request, principal)
    )
    return JSONResponse(_public(view))
