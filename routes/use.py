"""The using department's calls over HTTP (用证): lookup, check, scan; and the issuing
department's list of the uses of its licences."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from econtract.auth import Principal
from econtract.logs import request_id_var
from econtract.sharing import (
    MAX_CASE_NUMBER_LENGTH,
    MAX_USE_CAUSE_LENGTH,
    CheckResult,
    LookupResult,
    UseContext,
    UsedLicence,
    certificate_usage,
    check_licence,
    lookup_licences,
    parse_holder,
    scan_show_code,
)
from routes.deps import LINK_HEADER_DOC, ReaderDep, ServicesDep, UserDep, next_link

router = APIRouter(prefix="/v1", tags=["use"])

_REFUSALS: dict[int | str, dict[str, Any]] = {
    403: {
        "description": "Refused, with the rule that refused it as the problem type: no-grant, "
        "consent-required, consent-mismatch, consent-withdrawn, consent-expired (and, for a "
        "scan, show-code-expired, show-code-used, show-code-other-department). Recorded."
    },
    422: {"description": "Bad input, each fault named by a JSON pointer."},
}


class _UseCall(BaseModel):
    """What every use names: why, for which matter, and the case."""

    model_config = ConfigDict(extra="forbid")

    use_cause: str = Field(max_length=MAX_USE_CAUSE_LENGTH, description="Why (用证事由).")
    matter: str = Field(max_length=200, description="The matter (事项); the grant must list it.")
    case_number: str | None = Field(
        default=None, max_length=MAX_CASE_NUMBER_LENGTH, description="The case (办件) number."
    )


class LookupRequest(_UseCall):
    """A lookup of a holder's licences."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "holder_code": "91330106MA2GL1RQ5X",
                    "holder_type": "001",
                    "type": "business_licence",
                    "use_cause": "核验申请人营业执照",
                    "matter": "建筑工程施工许可",
                }
            ]
        },
    )
    holder_code: str = Field(max_length=64, description="A credit code, or an identity number.")
    holder_type: str = Field(max_length=10, description="001 credit code, 111 identity number.")
    type: str | None = Field(
        default=None, max_length=60, description="One licence type; every granted type if unset."
    )
    consent: str | None = Field(
        default=None, max_length=40, description="The holder's consent id, where one is needed."
    )


class CheckRequest(BaseModel):
    """Declared licence data to check (证照核验)."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(max_length=60, description="The licence type's code.")
    fields: dict[str, Any] = Field(description="The fields as the applicant declared them.")
    number: str | None = Field(
        default=None,
        max_length=64,
        description="The licence number; needed for a type whose fields name no holder code.",
    )
    use_cause: str = Field(max_length=MAX_USE_CAUSE_LENGTH, description="Why (用证事由).")
    matter: str = Field(max_length=200, description="The matter (事项); the grant must list it.")


class ScanRequest(_UseCall):
    """A 亮证码 the clerk's app scanned or the clerk typed."""

    code: str = Field(max_length=40, description="The 亮证码, e.g. 7KQ2-M9XD-4RTA.")


class IssuerPublic(BaseModel):
    """The issuing department of a licence."""

    code: str
    name: str


class UsedLicencePublic(BaseModel):
    """A licence as the using department receives it: metadata and status, not the PDF."""

    id: str
    identifier: str
    type: str
    number: str
    issuer: IssuerPublic
    holder_code: str | None
    holder_type: str | None
    status: str = Field(description="The live status today (expiry derived from the dates).")
    national_metadata: dict[str, Any] = Field(description="The GB/T 36903 metadata.")

    @classmethod
    def of(cls, licence: UsedLicence) -> UsedLicencePublic:
        """The public form of a used licence."""
        return cls(
            id=licence.id,
            identifier=licence.identifier,
            type=licence.type_code,
            number=licence.number,
            issuer=IssuerPublic(
                code=licence.metadata.issuer_code, name=licence.metadata.issuer_name
            ),
            holder_code=licence.holder_code,
            holder_type=licence.holder_type,
            status=licence.status,
            national_metadata=licence.metadata.as_json(),
        )


class OmissionPublic(BaseModel):
    """A granted type left out of the answer."""

    type: str
    reason: str = Field(description="consent-required: name the holder's consent to see it.")


class LookupPublic(BaseModel):
    """The licences a lookup or a scan found."""

    licences: list[UsedLicencePublic]
    omitted: list[OmissionPublic]
    consent: str | None

    @classmethod
    def of(cls, result: LookupResult) -> LookupPublic:
        """The public form of a lookup's result."""
        return cls(
            licences=[UsedLicencePublic.of(item) for item in result.licences],
            omitted=[OmissionPublic(type=o.type_code, reason=o.reason) for o in result.omitted],
            consent=result.consent_id,
        )


class CheckPublic(BaseModel):
    """Whether the declared data match a licence here; nothing more when they do not."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"match": False}]})
    match: bool
    identifier: str | None = None
    status: str | None = None
    national_status: str | None = Field(default=None, description="GB/T 36903 status code.")
    valid_until: date | None = None

    @classmethod
    def of(cls, result: CheckResult) -> CheckPublic:
        """The public form of a check's result."""
        return cls(
            match=result.match,
            identifier=result.identifier,
            status=result.status,
            national_status=result.national_status,
            valid_until=result.valid_until,
        )


class UsagePublic(BaseModel):
    """One use of a licence, as its issuing department sees it."""

    usage_id: str
    time: datetime
    department: IssuerPublic = Field(description="The using department.")
    action: str
    use_cause: str
    matter: str
    case_number: str | None
    result: str
    holder: str | None = Field(description="The holder's code; an identity number masked.")


class UsePurpose(Protocol):
    """What every use call's body says: why, for which matter, and maybe the case."""

    @property
    def use_cause(self) -> str: ...
    @property
    def matter(self) -> str: ...


def use_context(request: Request, principal: Principal, call: UsePurpose) -> UseContext:
    """The context of a use call: the caller, its address, the request's id, why and what."""
    return UseContext.create(
        department_id=principal.department_id,
        department_code=principal.department_code,
        client_id=principal.client_id,
        use_cause=call.use_cause,
        matter=call.matter,
        case_number=getattr(call, "case_number", None),
        remote_addr=request.client.host if request.client else None,
        request_id=request_id_var.get(),
    )


@router.post("/use/lookup", response_model=LookupPublic, responses=_REFUSALS)
def lookup(
    body: LookupRequest, request: Request, services: ServicesDep, principal: UserDep
) -> LookupPublic:
    """The holder's licences the caller's department may use for the matter (scope ``use``):
    metadata and live status, the holder's code whole, never the document. Without ``type``,
    every type granted for the matter; those whose grant needs consent are listed under
    ``omitted`` unless ``consent`` is given. Recorded, granted or refused."""
    context = use_context(request, principal, body)
    holder = parse_holder(body.holder_code, body.holder_type)
    result = lookup_licences(
        services, context, holder=holder, type_code=body.type, consent_id=body.consent
    )
    return LookupPublic.of(result)


@router.post(
    "/use/check",
    response_model=CheckPublic,
    response_model_exclude_none=True,
    responses=_REFUSALS,
)
def check(
    body: CheckRequest, request: Request, services: ServicesDep, principal: UserDep
) -> CheckPublic:
    """Whether a licence of ``type`` with exactly these ``fields`` is registered here, and its
    status (证照核验, scope ``use``). Never the document nor any other field; which field
    differs is not said. The licence is found by the holder's code in the fields, else by
    ``number``. Needs a grant for the type and matter, not the holder's consent."""
    context = use_context(request, principal, body)
    result = check_licence(
        services, context, type_code=body.type, fields=body.fields, number=body.number
    )
    return CheckPublic.of(result)


@router.post("/use/scan", response_model=LookupPublic, responses=_REFUSALS)
def scan(
    body: ScanRequest, request: Request, services: ServicesDep, principal: UserDep
) -> LookupPublic:
    """The licences the holder shows by a 亮证码 (scope ``use``): the consent it stands for,
    which must be the caller's department's, unexpired and not scanned before (it serves
    once, also when two scans race); then a lookup under that consent. An unknown code is a
    404 (show-code-unknown)."""
    context = use_context(request, principal, body)
    return LookupPublic.of(scan_show_code(services, context, code=body.code))


@router.get(
    "/certificates/{certificate_id}/usage",
    response_model=list[UsagePublic],
    responses={200: {"headers": {"Link": LINK_HEADER_DOC}}, 404: {}},
    tags=["certificates"],
)
def certificate_usage_route(
    certificate_id: str,
    request: Request,
    services: ServicesDep,
    principal: ReaderDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        int | None,
        Query(ge=1, description="The cursor of the next page, from the Link header."),
    ] = None,
) -> JSONResponse:
    """Who used one of the caller's department's licences, newest first (scope ``read``): the
    using department, the action, why, for which matter and case, and the result; the
    holder masked. Another department's licence is 404."""
    with services.sessions() as session:
        # One more than the page: whether a next page exists without a second query.
        views = certificate_usage(
            session,
            certificate_id=certificate_id,
            department_id=principal.department_id,
            after=after,
            limit=limit + 1,
        )
    page = views[:limit]
    body = [
        UsagePublic(
            usage_id=v.usage_id,
            time=v.time,
            department=IssuerPublic(code=v.department_code, name=v.department_name),
            action=v.action,
            use_cause=v.use_cause,
            matter=v.matter,
            case_number=v.case_number,
            result=v.result,
            holder=v.holder,
        ).model_dump(mode="json")
        for v in page
    ]
    headers = {"Link": next_link(request, str(page[-1].cursor))} if len(views) > limit else {}
    return JSONResponse(body, headers=headers)
