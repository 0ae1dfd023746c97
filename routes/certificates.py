"""Certificate types, certificates (issue, list, read, status changes, supersede) and the
department's seals."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from econtract.auth import Principal
from econtract.certificates import (
    TRANSITIONS,
    CertificateQuery,
    change_status,
    get_certificate,
    list_certificates,
    supersede,
)
from econtract.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from econtract.issuance import (
    TEMPLATES,
    IdempotencyKey,
    IssueRequest,
    effective_status,
    issue_certificate,
    request_hash,
)
from econtract.models import Certificate, CertificateStatus, Seal
from econtract.seals import list_seals
from econtract.ses.seal_data import seal_data_of_department
from econtract.ses.sealing_record import kept_ses_signature
from econtract.sharing import national_metadata
from routes.deps import (
    LINK_HEADER_DOC,
    IssuerDep,
    PrincipalDep,
    ReaderDep,
    RevokerDep,
    ServicesDep,
    actor_of,
    next_link,
)
from routes.documents import ses_signature_response
from routes.downloads import pdf_response
from routes.errors import IdempotencyKeyRequiredError

seals_router = APIRouter(prefix="/v1", tags=["seals"])


class SealPublic(BaseModel):
    """One of the department's e-seals, as a client that seals with it needs to know it."""

    id: str
    kind: str
    algorithm: str
    status: str
    not_before: datetime
    not_after: datetime
    certificate_serial: str
    """The seal certificate's serial number, in hexadecimal (as OpenSSL prints it)."""
    certificate_sha256: str
    """The SHA-256 fingerprint of the seal certificate (DER), in hexadecimal."""
    replaces: str | None
    revoked_at: datetime | None
    revocation_reason: str | None


def seal_public(seal: Seal) -> SealPublic:
    """The public view of a seal."""
    return SealPublic(
        id=seal.id,
        kind=seal.kind,
        algorithm=seal.algorithm,
        status=seal.status,
        not_before=seal.not_before,
        not_after=seal.not_after,
        certificate_serial=f"{int(seal.serial_number):X}",
        certificate_sha256=hashlib.sha256(seal.certificate_der).hexdigest(),
        replaces=seal.replaces_id,
        revoked_at=seal.revoked_at,
        revocation_reason=seal.revocation_reason,
    )


def _require_seal_reader(principal: Principal, what: str) -> None:
    """403 unless the client holds ``read``, ``seal`` or ``sign``: a client that seals needs
    its seal ids, so either scope opens the seal routes (no single ``require_scope``)."""
    if not principal.scopes & {"read", "seal", "sign"}:
        raise PermissionDeniedError(
            f"{what} needs the 'read', 'seal' or (an enterprise's) 'sign' scope."
        )


@seals_router.get(
    "/seals",
    response_model=list[SealPublic],
    responses={200: {"headers": {"Link": LINK_HEADER_DOC}}},
)
def list_seals_route(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        str | None,
        Query(max_length=40, description="The cursor of the next page, from the Link header."),
    ] = None,
) -> JSONResponse:
    """The caller's department's seals, newest first, retired and revoked ones included
    (scope ``read``, or ``seal`` or an enterprise's ``sign``: a client that seals needs its
    seal ids). A full page carries
    ``Link: <…&after=…>; rel="next"`` when more follow."""
    _require_seal_reader(principal, "Listing seals")
    with services.sessions() as session:
        seals = list_seals(session, department_code=principal.department_code)
    # A department holds a handful of seals: the page is cut from its whole list.
    start = 0
    if after is not None:
        ids = [s.id for s in seals]
        if after not in ids:
            raise NotFoundError(f"No seal {after!r}.")
        start = ids.index(after) + 1
    page = seals[start : start + limit]
    more = start + limit < len(seals)
    headers = {"Link": next_link(request, page[-1].id)} if more and page else {}
    return JSONResponse([seal_public(s).model_dump(mode="json") for s in page], headers=headers)


@seals_router.get(
    "/seals/{seal_id}/ses",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def seal_ses_route(
    seal_id: Annotated[str, Path(max_length=40)],
    services: ServicesDep,
    principal: PrincipalDep,
) -> Response:
    """The GB/T 38540 seal data (SESeal v4, DER) of one of the caller's department's SM2 seals,
    signed by the service as seal maker (same scopes as the list). 404 for a seal of another
    department or one without seal data (RSA and ECDSA seals)."""
    _require_seal_reader(principal, "Reading seal data")
    with services.sessions() as session:
        der = seal_data_of_department(
            session, seal_id=seal_id, department_code=principal.department_code
        )
    # The seal id is checked by the lookup above before it is put in a header.
    disposition = f'attachment; filename="{seal_id}.esl"'
    return Response(
        der, media_type="application/octet-stream", headers={"Content-Disposition": disposition}
    )


router = APIRouter(prefix="/v1", tags=["certificates"])


class CertificateTypePublic(BaseModel):
    """A certificate type: its template's code, name and the JSON Schema of its fields."""

    code: str
    name: str
    name_en: str
    version: int
    fields_schema: dict[str, Any]


@router.get("/certificate-types", response_model=list[CertificateTypePublic])
def certificate_types() -> list[CertificateTypePublic]:
    """Every type a department can issue; each schema carries ``examples`` of valid fields."""
    return [
        CertificateTypePublic(
            code=t.code, name=t.name, name_en=t.name_en, version=t.version, fields_schema=t.schema
        )
        for t in TEMPLATES.values()
    ]


def _example_fields() -> dict[str, Any]:
    schema = TEMPLATES["business_licence"].schema
    examples = schema.get("examples") or [{}]
    return dict(examples[0])


class CertificateCreate(BaseModel):
    """A request to issue a licence."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"type": "business_licence", "fields": _example_fields()}]},
    )
    type: str = Field(max_length=60, description="A code from GET /v1/certificate-types.")
    fields: dict[str, Any] = Field(description="The licence's fields, per the type's schema.")
    valid_from: date | None = Field(default=None, description="First day; today by default.")
    valid_until: date | None = Field(
        default=None, description="Last day; the type's term by default."
    )


class StatusChange(BaseModel):
    """Why a certificate's status changes."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "经营者申请注销"}]}
    )
    reason: str = Field(min_length=1, max_length=500)


class SupersedeRequest(BaseModel):
    """Renew (new validity) or amend (new fields): a new certificate replaces this one."""

    model_config = ConfigDict(extra="forbid")
    fields: dict[str, Any] | None = Field(
        default=None, description="New fields; the old ones if unset."
    )
    valid_from: date | None = None
    valid_until: date | None = None


class CertificateRef(BaseModel):
    """Another certificate, by id and number."""

    id: str
    number: str


class CertificatePublic(BaseModel):
    """An issued certificate as its department sees it."""

    id: str
    type: str
    number: str
    holder_name: str
    status: str
    registry_status: str
    valid_from: date
    valid_until: date | None
    issued_at: datetime
    seal_id: str
    sha256: str
    signed_digest: str
    supersedes: str | None = Field(description="The id of the certificate this one replaced.")
    superseded_by: CertificateRef | None = Field(
        description="The certificate that replaced this one (its status is then superseded)."
    )
    fields: dict[str, Any]
    pdf_url: str
    identifier: str = Field(
        description="The licence identifier (证照标识, GB/T 36904): "
        "1.2.156.3005.2.{type code}.{issuer code}.{serial}.{version}.{check}."
    )
    national_metadata: dict[str, Any] = Field(
        description="The GB/T 36903 metadata, as the PDF's XMP carries it: name, number, "
        "identifier, type_code, issuer_name, issuer_code, issue_date, valid_from, valid_until, "
        "holder_name, holder_code, holder_type (001 credit code, 111 citizen id number), "
        "related_matter, status and status_code (the national status on today's date)."
    )


def certificate_public(c: Certificate, *, today: date) -> CertificatePublic:
    """The public view of a certificate on ``today`` (the services' clock's date)."""
    return CertificatePublic(
        id=c.id,
        type=c.type_code,
        number=c.number,
        holder_name=c.holder_name,
        status=effective_status(c, today),
        registry_status=c.status,
        valid_from=c.valid_from,
        valid_until=c.valid_until,
        issued_at=c.issued_at,
        seal_id=c.seal_id,
        sha256=c.pdf_sha256,
        signed_digest=c.signed_digest,
        supersedes=c.supersedes_id,
        superseded_by=(
            CertificateRef(id=c.superseded_by.id, number=c.superseded_by.number)
            if c.superseded_by is not None
            else None
        ),
        fields=c.fields,
        pdf_url=f"/v1/certificates/{c.id}/pdf",
        identifier=c.identifier,
        national_metadata=national_metadata(c, today=today).as_json(),
    )


_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "A key the client chooses for this issuance (e.g. its case number), 1 to "
    "255 visible ASCII characters. The same key and body give the same certificate, so a "
    "retried request never issues twice; the same key with another body is refused (422). "
    "Keys are per client. Without one the request is refused (428).",
    "schema": {"type": "string", "pattern": _IDEMPOTENCY_KEY.pattern, "maxLength": 255},
    "example": "case-2024-000123",
}


def check_idempotency_key(key: str | None, operation: str) -> None:
    """Refuse a request of ``operation`` without an ``Idempotency-Key`` (428) or with a
    malformed one (422)."""
    if key is None:
        raise IdempotencyKeyRequiredError(
            f"{operation} needs an Idempotency-Key header (e.g. the case number): with it a "
            "retried request returns what the first one made instead of making it again."
        )
    if not _IDEMPOTENCY_KEY.match(key):
        raise InvalidInputError(
            "An Idempotency-Key is 1 to 255 visible ASCII characters.",
            errors=[("/Idempotency-Key", "malformed")],
        )


@router.post(
    "/certificates",
    status_code=201,
    response_model=CertificatePublic,
    responses={
        200: {"description": "A replay of an earlier request with the same key."},
        409: {},
        413: {},
        422: {},
        428: {"description": "The Idempotency-Key header is missing."},
    },
    # The header is read below without FastAPI's own check (a missing header would be a 422
    # there, where it is a 428 here), so the operation declares it itself.
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER]},
)
def issue(
    body: CertificateCreate,
    request: Request,
    services: ServicesDep,
    principal: IssuerDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", include_in_schema=False)
    ] = None,
) -> JSONResponse:
    """Issue a sealed e-licence (scope ``issue``). The ``Idempotency-Key`` header is required:
    the same key and body give the same certificate (200); the same key with another body is
    refused (422), and a concurrent duplicate gets 409."""
    check_idempotency_key(idempotency_key, "POST /v1/certificates")
    assert idempotency_key is not None
    idempotency = IdempotencyKey(
        principal.client_id, idempotency_key, request_hash(body.model_dump(mode="json"))
    )
    issued = issue_certificate(
        services,
        department_code=principal.department_code,
        request=IssueRequest(
            type_code=body.type,
            fields=body.fields,
            valid_from=body.valid_from,
            valid_until=body.valid_until,
        ),
        actor=actor_of(request, principal),
        idempotency=idempotency,
    )
    public = certificate_public(issued.certificate, today=services.clock.today())
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=200 if issued.replayed else 201,
        headers={"Location": f"/v1/certificates/{public.id}"},
    )


@router.get(
    "/certificates",
    response_model=list[CertificatePublic],
    responses={200: {"headers": {"Link": LINK_HEADER_DOC}}},
)
def list_certificates_route(
    request: Request,
    services: ServicesDep,
    principal: ReaderDep,
    type: Annotated[str | None, Query(max_length=60)] = None,
    status: Annotated[
        CertificateStatus | None,
        Query(description="The registry status; expiry shows in each item's own status."),
    ] = None,
    number: Annotated[str | None, Query(max_length=64)] = None,
    holder: Annotated[
        str | None,
        Query(
            max_length=100,
            description="A part of the holder's name: three characters or more are looked for "
            "anywhere in the name, one or two at its start.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        str | None,
        Query(max_length=40, description="The cursor of the next page, from the Link header."),
    ] = None,
) -> JSONResponse:
    """The caller's department's certificates, newest first (scope ``read``). A full page
    carries ``Link: <…&after=…>; rel="next"`` when more follow."""
    query = CertificateQuery(
        department_id=principal.department_id,
        type_code=type,
        status=status.value if status is not None else None,
        number=number,
        holder=holder,
        limit=limit,
        after=after,
    )
    with services.sessions() as session:
        rows = list_certificates(session, query)
        more = len(rows) == limit and bool(
            list_certificates(session, dataclasses.replace(query, limit=1, after=rows[-1].id))
        )
        today = services.clock.today()
        body = [certificate_public(c, today=today).model_dump(mode="json") for c in rows]
    headers = {"Link": next_link(request, rows[-1].id)} if more else {}
    return JSONResponse(body, headers=headers)


@router.get("/certificates/{certificate_id}", response_model=CertificatePublic)
def get_certificate_route(
    certificate_id: str, services: ServicesDep, principal: ReaderDep
) -> CertificatePublic:
    """One of the caller's department's certificates."""
    with services.sessions() as session:
        return certificate_public(
            get_certificate(session, certificate_id, department_id=principal.department_id),
            today=services.clock.today(),
        )


@router.get("/certificates/{certificate_id}/pdf", response_class=StreamingResponse)
def get_certificate_pdf(
    certificate_id: str, services: ServicesDep, principal: ReaderDep
) -> StreamingResponse:
    """The sealed PDF of one of the caller's department's certificates."""
    with services.sessions() as session:
        certificate = get_certificate(
            session, certificate_id, department_id=principal.department_id
        )
    return pdf_response(
        services.blobs.open(certificate.blob_key), filename=f"{certificate.number}.pdf"
    )


@router.get(
    "/certificates/{certificate_id}/ses-signature",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
)
def get_certificate_ses_signature(
    certificate_id: str, services: ServicesDep, principal: ReaderDep
) -> Response:
    """The GB/T 38540 SES_Signature (DER) of the SM2 seal on one of the caller's department's
    certificates; 404 for another department's or one without an SM2 seal."""
    with services.sessions() as session:
        get_certificate(session, certificate_id, department_id=principal.department_id)
        der = kept_ses_signature(
            session, certificate_id=certificate_id, department_id=principal.department_id
        )
    return ses_signature_response(der, certificate_id)


def _status_route(action: str) -> Callable[..., CertificatePublic]:
    def change(
        certificate_id: str,
        body: StatusChange,
        request: Request,
        services: ServicesDep,
        principal: RevokerDep,
    ) -> CertificatePublic:
        certificate = change_status(
            services,
            certificate_id=certificate_id,
            action=action,
            reason=body.reason,
            actor=actor_of(request, principal),
        )
        return certificate_public(certificate, today=services.clock.today())

    change.__doc__ = {
        "revoke": "Revoke a certificate for good (scope ``revoke``).",
        "suspend": "Suspend a certificate until it is reinstated (scope ``revoke``).",
        "reinstate": "Reinstate a suspended certificate (scope ``revoke``).",
    }[action]
    return change


for _action in TRANSITIONS:
    router.add_api_route(
        f"/certificates/{{certificate_id}}/{_action}",
        _status_route(_action),
        methods=["POST"],
        response_model=CertificatePublic,
        name=f"certificate_{_action}",
        responses={404: {}, 409: {}},
    )


@router.post(
    "/certificates/{certificate_id}/supersede",
    status_code=201,
    response_model=CertificatePublic,
    responses={404: {}, 409: {}, 422: {}},
)
def supersede_route(
    certificate_id: str,
    body: SupersedeRequest,
    request: Request,
    services: ServicesDep,
    principal: IssuerDep,
) -> JSONResponse:
    """Renew or amend: a new certificate with its own number replaces this one, which then
    shows SUPERSEDED (scope ``issue``)."""
    issued = supersede(
        services,
        certificate_id=certificate_id,
        department_code=principal.department_code,
        fields=body.fields,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        actor=actor_of(request, principal),
    )
    public = certificate_public(issued.certificate, today=services.clock.today())
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/certificates/{public.id}"},
    )
