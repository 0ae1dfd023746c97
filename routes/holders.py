"""The holder app's side of licence sharing (亮证, 授权用证): a holder's licences across
departments, the consents the holder gives and withdraws with their 亮证码, and who used the
holder's licences.

Every route takes scope ``holder``: the holder app has authenticated the person or enterprise
named in the path and acts for them, so it sees their data unmasked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

import segno
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from econtract.issuance import effective_status
from econtract.licence_metadata import HolderType
from econtract.sharing import (
    ConsentRequest,
    GivenConsent,
    get_consent,
    give_consent,
    holder_licences,
    holder_usage,
    list_consents,
    national_metadata,
    read_holder,
    renew_show_code,
    withdraw_consent,
)
from routes.deps import LINK_HEADER_DOC, HolderAppDep, ServicesDep, actor_of, next_link

router = APIRouter(prefix="/v1", tags=["holders"])

HolderCode = Annotated[
    str,
    Path(
        max_length=64,
        description="The holder's unified social credit code (GB 32100) or resident identity "
        "number (GB 11643).",
    ),
]
HolderTypeQuery = Annotated[
    str | None,
    Query(
        max_length=10,
        description="001 (credit code) or 111 (identity number); read from the code if unset.",
    ),
]
Limit = Annotated[int, Query(ge=1, le=200)]
ConsentId = Annotated[str, Path(max_length=60)]
_T = TypeVar("_T")


def get_holder(
    holder_code: HolderCode, holder_type: HolderTypeQuery = None
) -> tuple[str, HolderType]:
    """The holder the path names (its type read from the code unless the query says it);
    a specific 422 for an unknown type or a code of neither kind."""
    return read_holder(holder_code, holder_type)


# Declared after the scope check in every route: a client without scope ``holder`` hears
# 403 whatever the code it sent.
HolderDep = Annotated[tuple[str, HolderType], Depends(get_holder)]


def page_of(
    request: Request, rows: Sequence[_T], limit: int, cursor: Callable[[_T], str]
) -> tuple[Sequence[_T], dict[str, str]]:
    """The page of ``rows`` (asked for one more than ``limit``, to know whether more follow)
    and its ``Link`` header to the next page, when there is one."""
    page = rows[:limit]
    more = len(rows) > limit
    return page, ({"Link": next_link(request, cursor(page[-1]))} if more else {})


class HolderLicencePublic(BaseModel):
    """One of the holder's licences, from any department."""

    id: str
    identifier: str = Field(description="The licence identifier (证照标识, GB/T 36904).")
    type: str
    number: str
    issuer_code: str = Field(description="The issuing department's credit code.")
    issuer_name: str
    status: str = Field(description="The status today (valid, expired, revoked, …).")
    national_metadata: dict[str, Any] = Field(
        description="The GB/T 36903 metadata, with the national status of today."
    )


@router.get(
    "/holders/{holder_code}/certificates",
    response_model=list[HolderLicencePublic],
    responses={403: {}, 422: {}},
)
def holder_certificates(
    services: ServicesDep,
    principal: HolderAppDep,
    holder: HolderDep,
    type: Annotated[str | None, Query(max_length=60)] = None,
) -> list[HolderLicencePublic]:
    """The holder's licences from every department, newest first, optionally of one
    ``type`` (scope ``holder``)."""
    today = services.clock.today()
    with services.sessions() as session:
        return [
            HolderLicencePublic(
                id=c.id,
                identifier=c.identifier,
                type=c.type_code,
                number=c.number,
                issuer_code=c.issuer.code,
                issuer_name=c.issuer.name,
                status=effective_status(c, today).value,
                national_metadata=national_metadata(c, today=today).as_json(),
            )
            for c in holder_licences(session, holder, type_code=type)
        ]


class ConsentCreate(BaseModel):
    """What the holder consents to: one department, a licence type or one licence, one
    matter, until a time."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "department": "9133100015J1YG617W",
                    "type": "business_licence",
                    "matter": "建筑工程施工许可",
                    "valid_until": "2025-06-30T18:00:00+08:00",
                }
            ]
        },
    )
    department: str = Field(max_length=40, description="The using department's credit code.")
    type: str | None = Field(
        default=None, max_length=60, description="A licence type; or name one certificate."
    )
    certificate: str | None = Field(
        default=None,
        max_length=128,
        description="One of the holder's licences, by id or licence identifier; or a type.",
    )
    matter: str = Field(max_length=1000, description="The matter (事项), at most 200 characters.")
    case_number: str | None = Field(
        default=None, max_length=1000, description="The case (办件) number, at most 64."
    )
    valid_until: datetime = Field(description="When the consent ends, RFC 3339 with an offset.")
    show_code: bool = Field(default=True, description="Make a 亮证码 now.")


class ConsentPublic(BaseModel):
    """A holder's consent."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    holder: str = Field(description="The holder's code.")
    holder_type: str
    department_code: str
    department_name: str
    type: str
    certificate_id: str | None
    certificate_identifier: str | None
    matter: str
    case_number: str | None
    valid_until: datetime
    created_at: datetime
    withdrawn_at: datetime | None
    status: str = Field(description="active, withdrawn or expired.")


class ConsentWithShowCode(ConsentPublic):
    """A consent with the 亮证码 just made for it: the only answer that carries the code."""

    show_code: str | None = Field(description="The 亮证码, XXXX-XXXX-XXXX; shown this once.")
    show_code_expires_at: datetime | None
    show_code_qr: str | None = Field(
        description="A data: URL of a PNG QR code of the 亮证码, to show at a window."
    )


def with_show_code(given: GivenConsent) -> ConsentWithShowCode:
    """A consent with its new 亮证码 and the code's QR image."""
    code = given.show_code
    return ConsentWithShowCode(
        **ConsentPublic.model_validate(given.consent).model_dump(),
        show_code=None if code is None else code.code,
        show_code_expires_at=None if code is None else code.expires_at,
        # A full QR code, not a Micro QR: every clerk's scanner reads the former.
        show_code_qr=None
        if code is None
        else segno.make(code.code, error="m", micro=False).png_data_uri(scale=8, border=4),
    )


@router.post(
    "/holders/{holder_code}/consents",
    status_code=201,
    response_model=ConsentWithShowCode,
    responses={403: {}, 404: {}, 422: {}},
)
def create_consent(
    body: ConsentCreate,
    request: Request,
    services: ServicesDep,
    principal: HolderAppDep,
    holder: HolderDep,
) -> JSONResponse:
    """Record the holder's consent (scope ``holder``). The department must hold a live grant
    of the type listing the matter. The answer carries the 亮证码 (``show_code``, its expiry
    and a QR image) this once; only its digest is stored."""
    given = give_consent(
        services,
        holder=holder,
        request=ConsentRequest(
            department=body.department,
            type_code=body.type,
            certificate=body.certificate,
            matter=body.matter,
            case_number=body.case_number,
            valid_until=body.valid_until,
            show_code=body.show_code,
        ),
        client_id=principal.client_id,
        actor=actor_of(request, principal),
    )
    public = with_show_code(given)
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/holders/{holder[0]}/consents/{public.id}"},
    )


@router.get(
    "/holders/{holder_code}/consents",
    response_model=list[ConsentPublic],
    responses={200: {"headers": {"Link": LINK_HEADER_DOC}}, 403: {}, 422: {}},
)
def list_consents_route(
    request: Request,
    services: ServicesDep,
    principal: HolderAppDep,
    holder: HolderDep,
    limit: Limit = 50,
    after: Annotated[
        str | None,
        Query(max_length=60, description="The cursor of the next page, from the Link header."),
    ] = None,
) -> JSONResponse:
    """The holder's consents, newest first (scope ``holder``). A full page carries
    ``Link: <…&after=…>; rel="next"`` when more follow."""
    rows = list_consents(services, holder=holder, after=after, limit=limit + 1)
    page, headers = page_of(request, rows, limit, lambda view: view.id)
    return JSONResponse(
        [ConsentPublic.model_validate(v).model_dump(mode="json") for v in page], headers=headers
    )


@router.get(
    "/holders/{holder_code}/consents/{consent_id}",
    response_model=ConsentPublic,
    responses={403: {}, 404: {}, 422: {}},
)
def get_consent_route(
    consent_id: ConsentId, services: ServicesDep, principal: HolderAppDep, holder: HolderDep
) -> ConsentPublic:
    """One of the holder's consents (scope ``holder``); another holder's is 404."""
    return ConsentPublic.model_validate(get_consent(services, holder=holder, consent_id=consent_id))


@router.post(
    "/holders/{holder_code}/consents/{consent_id}/withdraw",
    response_model=ConsentPublic,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
def withdraw_consent_route(
    consent_id: ConsentId,
    request: Request,
    services: ServicesDep,
    principal: HolderAppDep,
    holder: HolderDep,
) -> ConsentPublic:
    """Withdraw one of the holder's consents (scope ``holder``): no use relies on it from now
    on and its 亮证码 stops serving. Withdrawn before: 409."""
    return ConsentPublic.model_validate(
        withdraw_consent(
            services, holder=holder, consent_id=consent_id, actor=actor_of(request, principal)
        )
    )


@router.post(
    "/holders/{holder_code}/consents/{consent_id}/show-code",
    response_model=ConsentWithShowCode,
    responses={403: {}, 404: {}, 409: {}, 422: {}},
)
def renew_show_code_route(
    consent_id: ConsentId,
    request: Request,
    services: ServicesDep,
    principal: HolderAppDep,
    holder: HolderDep,
) -> ConsentWithShowCode:
    """A fresh 亮证码 for an active consent (scope ``holder``); the old one stops serving.
    A withdrawn or expired consent: 409."""
    return with_show_code(
        renew_show_code(
            services, holder=holder, consent_id=consent_id, actor=actor_of(request, principal)
        )
    )


class UsagePublic(BaseModel):
    """One use of the holder's licences (用证记录)."""

    model_config = ConfigDict(from_attributes=True)

    usage_id: str
    time: datetime
    action: str = Field(description="lookup, check, copy or scan.")
    department_code: str = Field(description="The using department's credit code.")
    department_name: str
    identifier: str | None = Field(description="The licence identifier used, if one was.")
    use_cause: str
    matter: str
    case_number: str | None
    result: str = Field(description="granted, not-found, or the problem code of a refusal.")
    consent_id: str | None


@router.get(
    "/holders/{holder_code}/usage",
    response_model=list[UsagePublic],
    responses={200: {"headers": {"Link": LINK_HEADER_DOC}}, 403: {}, 422: {}},
)
def holder_usage_route(
    request: Request,
    services: ServicesDep,
    principal: HolderAppDep,
    holder: HolderDep,
    limit: Limit = 50,
    after: Annotated[
        int | None,
        Query(ge=1, description="The cursor of the next page, from the Link header."),
    ] = None,
) -> JSONResponse:
    """Who used the holder's licences, newest first (scope ``holder``), refused uses
    included. A full page carries ``Link: <…&after=…>; rel="next"`` when more follow."""
    with services.sessions() as session:
        rows = holder_usage(session, holder, after=after, limit=limit + 1)
    page, headers = page_of(request, rows, limit, lambda usage: str(usage.row))
    return JSONResponse(
        [UsagePublic.model_validate(u).model_dump(mode="json") for u in page], headers=headers
    )
