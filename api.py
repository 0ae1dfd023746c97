"""The HTTP API: routes, schemas, authentication and the mapping of errors to problem+json.

Nothing below this module knows about HTTP; this module knows nothing about PDFs or keys
beyond calling the domain.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

import swagger_ui_bundle
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from econtract import db, metrics
from econtract.audit import (
    Actor,
    AuditQuery,
    event_json,
    query_events,
    to_csv,
    to_jsonl,
)
from econtract.audit import (
    record as record_event,
)
from econtract.auth import OAuthError, Principal, authenticate, issue_access_token
from econtract.blobs import DiskBlobStore
from econtract.certificates import (
    TRANSITIONS,
    CertificateQuery,
    change_status,
    effective_status,
    get_certificate,
    list_certificates,
    supersede,
)
from econtract.config import Settings, get_settings
from econtract.errors import (
    ConflictError,
    DatabaseUnavailableError,
    EContractError,
    InvalidInputError,
    KeyStoreError,
    MalformedRequestError,
    NotFoundError,
    PermissionDeniedError,
    PKIError,
)
from econtract.issuance import IdempotencyKey, IssueRequest, issue_certificate, request_hash
from econtract.logs import configure_logging, request_id_var
from econtract.models import Certificate, CertificateStatus, Seal, SealedDocument
from econtract.qrcheck import QRCheck, check_qr
from econtract.registry_status import find_public_status
from econtract.report_pdf import report_pdf
from econtract.sealing import seal_document
from econtract.seals import list_seals
from econtract.services import Services
from econtract.templates import TEMPLATES
from econtract.translog import (
    LogError,
    LogNotFoundError,
    LogRequestError,
    TreeHeadPublisher,
    consistency_json,
    entries_json,
    inclusion_json,
    log_key_json,
    log_key_pem,
    sth_json,
)
from econtract.verification import log_appendix, log_proofs, verify_upload
from signing.errors import (
    BrokenPDFError,
    DocumentCertifiedError,
    EncryptedPDFError,
    FieldReservedError,
    NotAPDFError,
    PlacementError,
    SealUnusableError,
    SigningError,
    TimestampError,
)
from signing.fonts import check_font
from signing.options import Certification, SealLevel, SealOptions
from verify.errors import NotAPDFError as VerifyNotAPDFError
from verify.errors import TooLargeError, VerificationError
from verify.html import render_html

log = logging.getLogger("econtract.api")

PROBLEM_JSON = "application/problem+json"


class PayloadTooLargeError(EContractError):
    """The request body is larger than the configured limit."""

    code = "payload-too-large"
    title = "The request body is too large."


class IdempotencyKeyRequiredError(EContractError):
    """A request that must never take effect twice came without an ``Idempotency-Key``."""

    code = "idempotency-key-required"
    title = "The request needs an Idempotency-Key header."


class UnsupportedMediaTypeError(EContractError):
    """The request body's media type is not the one the endpoint takes."""

    code = "unsupported-media-type"
    title = "The request body's media type is not the one this endpoint takes."


#: HTTP status of each error class. An error answers with the status of the first class of
#: its method resolution order found here, so a new subclass (a ``ConflictError`` of its own,
#: say) answers like its family without being listed, and the order of this table is free.
STATUS_OF: dict[type[EContractError], int] = {
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    IdempotencyKeyRequiredError: 428,
    LogRequestError: 400,
    LogNotFoundError: 404,
    LogError: 500,
    # "Not a PDF" is one problem (not-a-pdf, 415) wherever a file is uploaded.
    NotAPDFError: 415,
    VerifyNotAPDFError: 415,
    TooLargeError: 413,
    VerificationError: 422,
    EncryptedPDFError: 422,
    BrokenPDFError: 422,
    PlacementError: 422,
    SealUnusableError: 409,
    DocumentCertifiedError: 409,
    FieldReservedError: 403,
    TimestampError: 503,
    SigningError: 422,
    NotFoundError: 404,
    ConflictError: 409,
    InvalidInputError: 422,
    PermissionDeniedError: 403,
    MalformedRequestError: 400,
    PKIError: 400,
    DatabaseUnavailableError: 503,
    KeyStoreError: 503,
}


def problem(
    status: int, code: str, title: str, detail: str, *, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    """An RFC 9457 problem+json response."""
    body: dict[str, Any] = {
        "type": f"urn:econtract:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    request_id = request_id_var.get()
    if request_id:
        body["request_id"] = request_id
    if errors:
        body["errors"] = errors
    metrics.ERRORS.labels(code=code).inc()
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


#: RFC 6749 token-endpoint and RFC 6750 resource errors.
OAUTH_STATUS = {"invalid_client": 401, "invalid_token": 401}


def status_of(exc: EContractError) -> int:
    """The HTTP status an error answers with (see :data:`STATUS_OF`); 400 by default."""
    if isinstance(exc, OAuthError):
        return OAUTH_STATUS.get(exc.oauth_error, 400)
    for cls in type(exc).__mro__:
        status = STATUS_OF.get(cls)
        if status is not None:
            return status
    return 400


# --- dependencies -------------------------------------------------------------------------


async def get_services(request: Request) -> Services:
    """The process's services."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def read_body(request: Request, limit: int, media_type: str | None = None) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes (never read whole first)."""
    if media_type is not None:
        given = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if given != media_type:
            raise UnsupportedMediaTypeError(
                f"This endpoint takes {media_type}, not {given or 'a body without a type'}."
            )
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(f"The body has {declared} bytes; the limit is {limit}.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"The body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


LINK_HEADER_DOC = {
    "description": 'The next page, when there is one: `</v1/…?…&after=CURSOR>; rel="next"` '
    "(RFC 8288). Follow it as it is; the cursor is opaque.",
    "schema": {"type": "string"},
}


def next_link(request: Request, after: str) -> str:
    """A ``Link`` header value to the next page: this request with ``after`` moved on."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    query = urlencode([*params, ("after", after)])
    return f'<{request.url.path}?{query}>; rel="next"'


# --- operations ---------------------------------------------------------------------------

ops = APIRouter(tags=["operations"])


class Health(BaseModel):
    """Liveness or readiness."""

    model_config = ConfigDict(extra="forbid")
    status: str
    checks: dict[str, str] = {}


@ops.get("/healthz", response_model=Health)
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@ops.get("/readyz", response_model=Health, responses={503: {"model": Health}})
def readyz(services: ServicesDep) -> Response:
    """The database and the key store are reachable."""
    checks: dict[str, str] = {}
    try:
        db.check_database(services.engine)
        checks["database"] = "ok"
    except EContractError as exc:
        checks["database"] = exc.message
    try:
        services.key_store.check()
        checks["key_store"] = "ok"
    except EContractError as exc:
        checks["key_store"] = exc.message
    ready = all(v == "ok" for v in checks.values())
    body = Health(status="ok" if ready else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@ops.get("/metrics", response_class=Response)
def prometheus_metrics() -> Response:
    """Prometheus text exposition."""
    payload, content_type = metrics.render()
    return Response(payload, media_type=content_type)


# --- the public PKI -----------------------------------------------------------------------

pki_router = APIRouter(prefix="/pki", tags=["pki"])


class TrustListEntry(BaseModel):
    """One certificate of the trust list."""

    name: str
    subject: str
    sha256: str
    not_after: str
    pem: str


class TrustList(BaseModel):
    """The service's CA certificates; relying parties pin the root."""

    version: int = 1
    root: TrustListEntry
    intermediates: list[TrustListEntry]
    crl_urls: dict[str, str]
    ocsp_url: str
    tsa_url: str


def _entry(name: str, cert: Any) -> TrustListEntry:
    return TrustListEntry(
        name=name,
        subject=cert.subject.rfc4514_string(),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_after=cert.not_valid_after_utc.isoformat(),
        pem=cert.public_bytes(Encoding.PEM).decode(),
    )


@pki_router.get("/trust-list.json", response_model=TrustList)
def trust_list(services: ServicesDep) -> TrustList:
    """The root and intermediate CA certificates, with the revocation and timestamp URLs."""
    pki = services.pki
    cas = pki.ca_certificates
    return TrustList(
        root=_entry("root", cas["root"]),
        intermediates=[_entry(n, c) for n, c in cas.items() if n != "root"],
        crl_urls={n: pki.urls.crl_url(n) for n in cas},
        ocsp_url=pki.urls.ocsp_url(),
        tsa_url=pki.urls.tsa_url(),
    )


@pki_router.get("/chain.pem", response_class=Response)
def chain_pem(services: ServicesDep) -> Response:
    """The issuing CA then the root, PEM."""
    cas = services.pki.ca_certificates
    pem = b"".join(cas[n].public_bytes(Encoding.PEM) for n in ("issuing", "root"))
    return Response(pem, media_type="application/x-pem-file")


@pki_router.get("/ca/{name}.cer", response_class=Response)
def ca_der(name: str, services: ServicesDep) -> Response:
    """A CA certificate, DER (the AIA caIssuers URL)."""
    cert = services.pki.ca_certificates.get(name)
    if cert is None:
        raise NotFoundError(f"There is no CA named {name!r}.")
    return Response(cert.public_bytes(Encoding.DER), media_type="application/pkix-cert")


@pki_router.get("/ca/{name}.pem", response_class=Response)
def ca_pem(name: str, services: ServicesDep) -> Response:
    """A CA certificate, PEM."""
    cert = services.pki.ca_certificates.get(name)
    if cert is None:
        raise NotFoundError(f"There is no CA named {name!r}.")
    return Response(cert.public_bytes(Encoding.PEM), media_type="application/x-pem-file")


@pki_router.get("/crl/{name}.crl", response_class=Response)
def crl(name: str, services: ServicesDep) -> Response:
    """The current CRL of a CA (the CRL distribution point URL)."""
    if name not in services.pki.ca_certificates:
        raise NotFoundError(f"There is no CA named {name!r}.")
    return Response(services.pki.crl_der(name), media_type="application/pkix-crl")


OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"


def _ocsp_answer(services: Services, request_der: bytes) -> Response:
    reply = services.pki.answer_ocsp(request_der)
    metrics.OCSP_RESPONSES.labels(status="malformed" if reply.malformed else "answered").inc()
    if reply.malformed:
        raise MalformedRequestError(reply.detail or "The OCSP request is not a DER OCSPRequest.")
    return Response(reply.der, media_type=OCSP_RESPONSE, headers={"Cache-Control": "no-cache"})


@pki_router.post(
    "/ocsp",
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "content": {OCSP_REQUEST: {"schema": {"type": "string", "format": "binary"}}}
        }
    },
)
async def ocsp_post(request: Request, services: ServicesDep) -> Response:
    """RFC 6960 OCSP over POST (a DER OCSPRequest in, a DER OCSPResponse out)."""
    body = await read_body(request, 64 * 1024, OCSP_REQUEST)
    return _ocsp_answer(services, body)


@pki_router.get("/ocsp/{encoded:path}", response_class=Response)
def ocsp_get(encoded: str, services: ServicesDep) -> Response:
    """RFC 6960 OCSP over GET (the base64 request in the path)."""
    try:
        request_der = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequestError("The OCSP GET path is not base64.") from None
    return _ocsp_answer(services, request_der)


TSQ = "application/timestamp-query"
TSR = "application/timestamp-reply"


@pki_router.post(
    "/tsa",
    response_class=Response,
    openapi_extra={
        "requestBody": {"content": {TSQ: {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def tsa(request: Request, services: ServicesDep) -> Response:
    """RFC 3161 timestamping: a DER TimeStampReq in, a DER TimeStampResp out.

    A refused query (unsupported hash, unknown policy, not DER) still gets a TimeStampResp
    with status ``rejection`` and the failure reason, with HTTP 400, so both RFC 3161
    clients and people see why.
    """
    body = await read_body(request, 64 * 1024, TSQ)
    reply = services.pki.tsa.respond(body)
    if reply.granted:
        metrics.TIMESTAMPS_ISSUED.inc()
    headers = {} if reply.granted else {"X-Problem-Detail": reply.detail or "rejected"}
    return Response(
        reply.der, status_code=200 if reply.granted else 400, media_type=TSR, headers=headers
    )


# --- authentication -----------------------------------------------------------------------

auth_router = APIRouter(tags=["authentication"])
bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/token.")
basic = HTTPBasic(auto_error=False)


class TokenResponse(BaseModel):
    """An OAuth 2.0 access token (RFC 6749 section 5.1)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 token type, not a secret
    expires_in: int
    scope: str


FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def require_form(request: Request) -> None:
    """Refuse a token request that is not a form, saying so (RFC 6749 section 4.4.2)."""
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given not in FORM_TYPES:
        sent = given or "a body without a type"
        raise OAuthError(
            "invalid_request",
            "The token endpoint takes a form (application/x-www-form-urlencoded: "
            f"grant_type=client_credentials&client_id=…&client_secret=…), not {sent}.",
        )


@auth_router.post("/v1/token", response_model=TokenResponse, dependencies=[Depends(require_form)])
def token(
    services: ServicesDep,
    grant_type: Annotated[str, Form(examples=["client_credentials"])],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form(examples=["issue read"])] = None,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)] = None,
) -> JSONResponse:
    """OAuth 2.0 client credentials grant: a 15-minute ES256 JWT naming client, department
    and scopes. Credentials in the form or as HTTP Basic."""
    if grant_type != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type", "Only the client_credentials grant is supported."
        )
    if credentials is not None:
        client_id, client_secret = credentials.username, credentials.password
    if not client_id or not client_secret:
        raise OAuthError("invalid_request", "client_id and client_secret are required.")
    with services.sessions() as session:
        issued = issue_access_token(
            session,
            key=services.pki.token_signer,
            settings=services.settings,
            client_id=client_id,
            client_secret=client_secret,
            scope=scope,
        )
    body = TokenResponse(
        access_token=issued.token, expires_in=issued.expires_in, scope=" ".join(issued.scopes)
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


def get_principal(
    request: Request,
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller named by the bearer token (kept on the request for the audit trail)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise OAuthError("invalid_token", "A bearer access token is required.")
    with services.sessions() as session:
        principal = authenticate(
            session,
            key=services.pki.token_signer,
            settings=services.settings,
            token=credentials.credentials,
        )
    request.state.principal = principal
    return principal


def audit_refusal(request: Request, exc: EContractError, status: int) -> None:
    """Record a refused state-changing call of an authenticated client in the audit trail.

    Successful changes are recorded by their use case, in their own transaction; a refused
    one rolled back, so it is written here, in a transaction of its own.
    """
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    services: Services = request.app.state.services
    route = getattr(request.scope.get("route"), "path", request.url.path)
    try:
        with db.transaction(services.sessions) as session:
            record_event(
                session,
                actor=actor_of(request, principal),
                action=f"{request.method} {route}",
                target_type="request",
                target_id=request.path_params.get("certificate_id"),
                outcome=f"refused:{status}",
                detail={"problem": exc.code, "detail": exc.message},
            )
    except Exception:  # the refusal itself is answered whatever happens here
        log.exception("a refused call could not be written to the audit trail")


PrincipalDep = Annotated[Principal, Depends(get_principal)]


@auth_router.get("/.well-known/jwks.json")
def jwks(services: ServicesDep) -> dict[str, list[dict[str, str]]]:
    """The public key that signs access tokens and QR tokens (RFC 7517)."""
    return {"keys": [services.pki.token_signer.jwk()]}


# --- seals ---------------------------------------------------------------------------------

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
    (scope ``read``, or ``seal``: a client that seals needs its seal ids). A full page carries
    ``Link: <…&after=…>; rel="next"`` when more follow."""
    if not principal.scopes & {"read", "seal"}:
        raise PermissionDeniedError("Listing seals needs the 'read' or the 'seal' scope.")
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


# --- sealed documents ---------------------------------------------------------------------

documents = APIRouter(prefix="/v1/documents", tags=["documents"])


class DocumentPublic(BaseModel):
    """A sealed document as registered."""

    id: str
    seal_id: str
    level: str
    file_name: str | None
    sha256: str
    signed_digest: str
    created_at: str
    pdf_url: str


def document_public(document: SealedDocument) -> DocumentPublic:
    """The public view of a sealed document."""
    return DocumentPublic(
        id=document.id,
        seal_id=document.seal_id,
        level=document.level,
        file_name=document.file_name,
        sha256=document.pdf_sha256,
        signed_digest=document.signed_digest,
        created_at=document.created_at.isoformat(),
        pdf_url=f"/v1/documents/{document.id}/pdf",
    )


@documents.post(
    "/seal",
    status_code=201,
    response_model=DocumentPublic,
    responses={
        201: {"content": {"application/pdf": {}}},
        403: {},
        409: {},
        413: {},
        415: {},
        422: {},
    },
)
def seal_uploaded(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="The PDF to seal.")],
    seal: Annotated[str, Form(description="One of the caller's seal ids.")],
    level: Annotated[SealLevel, Form()] = SealLevel.B_LT,
    visible: Annotated[
        str | None, Form(description="PAGE:X,Y of the seal's centre.", examples=["1:450,150"])
    ] = None,
    cross_page: Annotated[bool, Form()] = False,
    certify: Annotated[Certification, Form()] = Certification.APPROVAL,
    field: Annotated[str | None, Form(description="Signature field to create or fill.")] = None,
    reserve: Annotated[
        list[str] | None,
        Form(
            description="Empty seal fields for the departments that seal later (with "
            "certify=form-filling): NAME[@PAGE:X,Y][=HOLDER], where HOLDER is the unified "
            "social credit code of the department that may fill the field, or one seal's id. "
            "Sealing a field bound to another department is refused (403 field-reserved); "
            "a field without HOLDER is open to any department.",
            examples=[["Dept2@1:280,150=9133100015J1YG617W"]],
        ),
    ] = None,
) -> Response:
    """Seal an uploaded PDF with one of the caller's department's seals, and register it.

    Answers the document's record as JSON, or the sealed PDF itself with
    ``Accept: application/pdf``.
    """
    principal.require("seal")
    options = SealOptions.from_text(
        level=level,
        certification=certify,
        visible=visible,
        cross_page=cross_page,
        field_name=field,
        reserve=reserve or (),
    )
    sealed = seal_document(
        services,
        source=file.file,
        seal_id=seal,
        options=options,
        actor=actor_of(request, principal),
        file_name=_safe_name(file.filename),
    )
    location = f"/v1/documents/{sealed.document.id}"
    if "application/pdf" in request.headers.get("accept", ""):
        path = DiskBlobStore(services.settings.blob_dir).path(sealed.document.blob_key)
        return FileResponse(
            path,
            status_code=201,
            media_type="application/pdf",
            headers={"Location": location, "X-Document-Id": sealed.document.id},
        )
    body = document_public(sealed.document).model_dump()
    return JSONResponse(body, status_code=201, headers={"Location": location})


def _get_document(services: Services, principal: Principal, document_id: str) -> SealedDocument:
    with services.sessions() as session:
        document = session.get(SealedDocument, document_id)
    if document is None or document.department_id != principal.department_id:
        raise NotFoundError(f"No document {document_id!r}.")
    return document


@documents.get("/{document_id}", response_model=DocumentPublic)
def get_document(
    document_id: str, services: ServicesDep, principal: PrincipalDep
) -> DocumentPublic:
    """A sealed document of the caller's department."""
    principal.require("read")
    return document_public(_get_document(services, principal, document_id))


@documents.get("/{document_id}/pdf", response_class=FileResponse)
def get_document_pdf(
    document_id: str, services: ServicesDep, principal: PrincipalDep
) -> FileResponse:
    """The sealed PDF of a document of the caller's department."""
    principal.require("read")
    document = _get_document(services, principal, document_id)
    path = DiskBlobStore(services.settings.blob_dir).path(document.blob_key)
    return FileResponse(path, media_type="application/pdf")


def actor_of(request: Request, principal: Principal) -> Actor:
    """The audit trail's actor for an authenticated request."""
    return Actor(
        name=principal.actor_name,
        department_id=principal.department_id,
        request_id=request_id_var.get(),
    )


def _safe_name(name: str | None) -> str | None:
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:255] or None


# --- certificate types and certificates ---------------------------------------------------

certificates = APIRouter(prefix="/v1", tags=["certificates"])


class CertificateTypePublic(BaseModel):
    """A certificate type: its template's code, name and the JSON Schema of its fields."""

    code: str
    name: str
    name_en: str
    version: int
    fields_schema: dict[str, Any]


@certificates.get("/certificate-types", response_model=list[CertificateTypePublic])
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


def certificate_public(c: Certificate) -> CertificatePublic:
    """The public view of a certificate."""
    return CertificatePublic(
        id=c.id,
        type=c.type_code,
        number=c.number,
        holder_name=c.holder_name,
        status=effective_status(c),
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


@certificates.post(
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
    principal: PrincipalDep,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", include_in_schema=False)
    ] = None,
) -> JSONResponse:
    """Issue a sealed e-licence (scope ``issue``). The ``Idempotency-Key`` header is required:
    the same key and body give the same certificate (200); the same key with another body is
    refused (422), and a concurrent duplicate gets 409."""
    principal.require("issue")
    if idempotency_key is None:
        raise IdempotencyKeyRequiredError(
            "POST /v1/certificates needs an Idempotency-Key header (e.g. the case number): "
            "with it a retried request returns the certificate already issued instead of "
            "issuing a second one."
        )
    if not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise InvalidInputError(
            "An Idempotency-Key is 1 to 255 visible ASCII characters.",
            errors=[("/Idempotency-Key", "malformed")],
        )
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
    public = certificate_public(issued.certificate)
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=200 if issued.replayed else 201,
        headers={"Location": f"/v1/certificates/{public.id}"},
    )


@certificates.get(
    "/certificates",
    response_model=list[CertificatePublic],
    responses={200: {"headers": {"Link": LINK_HEADER_DOC}}},
)
def list_certificates_route(
    request: Request,
    services: ServicesDep,
    principal: PrincipalDep,
    type: Annotated[str | None, Query(max_length=60)] = None,
    status: Annotated[
        CertificateStatus | None,
        Query(description="The registry status; expiry shows in each item's own status."),
    ] = None,
    number: Annotated[str | None, Query(max_length=64)] = None,
    holder: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        str | None,
        Query(max_length=40, description="The cursor of the next page, from the Link header."),
    ] = None,
) -> JSONResponse:
    """The caller's department's certificates, newest first (scope ``read``). A full page
    carries ``Link: <…&after=…>; rel="next"`` when more follow."""
    principal.require("read")
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
        body = [certificate_public(c).model_dump(mode="json") for c in rows]
    headers = {"Link": next_link(request, rows[-1].id)} if more else {}
    return JSONResponse(body, headers=headers)


@certificates.get("/certificates/{certificate_id}", response_model=CertificatePublic)
def get_certificate_route(
    certificate_id: str, services: ServicesDep, principal: PrincipalDep
) -> CertificatePublic:
    """One of the caller's department's certificates."""
    principal.require("read")
    with services.sessions() as session:
        return certificate_public(
            get_certificate(session, certificate_id, department_id=principal.department_id)
        )


@certificates.get("/certificates/{certificate_id}/pdf", response_class=FileResponse)
def get_certificate_pdf(
    certificate_id: str, services: ServicesDep, principal: PrincipalDep
) -> FileResponse:
    """The sealed PDF of one of the caller's department's certificates."""
    principal.require("read")
    with services.sessions() as session:
        certificate = get_certificate(
            session, certificate_id, department_id=principal.department_id
        )
    path = DiskBlobStore(services.settings.blob_dir).path(certificate.blob_key)
    return FileResponse(path, media_type="application/pdf", filename=f"{certificate.number}.pdf")


def _status_route(action: str) -> Callable[..., CertificatePublic]:
    def change(
        certificate_id: str,
        body: StatusChange,
        request: Request,
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> CertificatePublic:
        principal.require("revoke")
        certificate = change_status(
            services,
            certificate_id=certificate_id,
            action=action,
            reason=body.reason,
            actor=actor_of(request, principal),
        )
        return certificate_public(certificate)

    change.__doc__ = {
        "revoke": "Revoke a certificate for good (scope ``revoke``).",
        "suspend": "Suspend a certificate until it is reinstated (scope ``revoke``).",
        "reinstate": "Reinstate a suspended certificate (scope ``revoke``).",
    }[action]
    return change


for _action in TRANSITIONS:
    certificates.add_api_route(
        f"/certificates/{{certificate_id}}/{_action}",
        _status_route(_action),
        methods=["POST"],
        response_model=CertificatePublic,
        name=f"certificate_{_action}",
        responses={404: {}, 409: {}},
    )


@certificates.post(
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
    principal: PrincipalDep,
) -> JSONResponse:
    """Renew or amend: a new certificate with its own number replaces this one, which then
    shows SUPERSEDED (scope ``issue``)."""
    principal.require("issue")
    issued = supersede(
        services,
        certificate_id=certificate_id,
        department_code=principal.department_code,
        fields=body.fields,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        actor=actor_of(request, principal),
    )
    public = certificate_public(issued.certificate)
    return JSONResponse(
        public.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/v1/certificates/{public.id}"},
    )


# --- the citizen's pages -----------------------------------------------------------------

public_pages = APIRouter(tags=["public verification"])
pages = Jinja2Templates(directory=Path(__file__).parent / "econtract" / "web")
QR_TEMPLATE = pages.env.get_template("qr.html")


def wants_json(request: Request) -> bool:
    """Whether the client asked for JSON rather than a page."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


@public_pages.get(
    "/v/{token}",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}, "application/json": {}}}},
)
async def qr_page(token: str, request: Request) -> Response:
    """The page a licence's QR code opens: the verdict in Chinese and English, the licence's
    details to compare with the paper (personal id numbers masked). ``Accept:
    application/json`` gives the same verdict as JSON."""
    # The services are taken from the app directly: FastAPI's dependency resolution costs
    # more than this page's database read.
    services: Services = request.app.state.services
    check = None
    if db.is_embedded(services.engine):
        # The busiest page: a primary-key read of a local SQLite file (WAL: it does not wait
        # for writers) takes less time than handing the request to the thread pool and back.
        # It gives up at once if the file is locked (recovery, a checkpoint, a backup).
        with contextlib.suppress(db.ReadBusyError):
            check = check_qr(services, token)
    if check is None:
        # A networked database, or a locked file, is waited for in the thread pool, so that
        # the loop never stalls.
        check = await run_in_threadpool(check_qr, services, token, patient=True)
    headers = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
    if wants_json(request):
        body = check.to_json()
        if check.certificate_id is not None:
            body["transparency"] = await run_in_threadpool(
                log_proofs, services, check.certificate_id
            )
        return JSONResponse(body, headers=headers)
    return HTMLResponse(qr_html(check), headers=headers)


async def qr_page_route(request: Request) -> Response:
    """:func:`qr_page` as a plain Starlette endpoint (see :func:`create_app`)."""
    # FastAPI's router names only its own routes in the scope; the metrics label needs it.
    request.scope.setdefault("route", QR_ROUTE)
    return await qr_page(request.path_params["token"], request)


QR_ROUTE = Route("/v/{token}", qr_page_route, methods=["GET"])
"""The QR page's route, matched before every other."""


@lru_cache(maxsize=4096)
def qr_html(check: QRCheck) -> str:
    """The QR page for a verdict. The verdict holds everything the page shows (status,
    details, today's expiry decision), so equal verdicts give the same page and the last
    ones rendered are kept: rendering costs more than the page's database read."""
    return QR_TEMPLATE.render(check=check)


@public_pages.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request) -> Response:
    """A page to upload a PDF and read its verdict with the reasons in plain words."""
    services: Services = request.app.state.services
    return pages.TemplateResponse(
        request, "verify.html", {"service_name": services.settings.service_name}
    )


@public_pages.post(
    "/v1/verify",
    responses={200: {"content": {"application/json": {}, "text/html": {}}}, 413: {}, 422: {}},
)
def verify_upload_route(
    request: Request,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="The PDF to check.")],
) -> Response:
    """Verify an uploaded PDF: the report (versioned JSON schema), or the printable HTML report
    with ``Accept: text/html``, or as a PDF to file with ``Accept: application/pdf``. No
    token needed: anyone may check a document."""
    report = verify_upload(services, file.file.read())
    proofs = log_proofs(services, report.registry.record_id) if report.registry.record_id else None
    appendices = (log_appendix(proofs),) if proofs is not None else ()
    accept = request.headers.get("accept", "")
    if "application/pdf" in accept:
        return Response(report_pdf(report, appendices), media_type="application/pdf")
    if "text/html" in accept:
        # The page links the printable report itself, so the reader need not upload twice.
        return HTMLResponse(render_html(report, appendices, pdf=report_pdf(report, appendices)))
    body = report.to_json()
    if proofs is not None:
        body["transparency"] = proofs
    return JSONResponse(body)


@public_pages.get("/v1/status", responses={400: {}, 404: {}})
def registry_status_route(
    services: ServicesDep,
    sha256: Annotated[str | None, Query(description="The whole file's SHA-256 (hex).")] = None,
    signed_digest: Annotated[
        str | None, Query(description="SHA-256 (hex) of the bytes one of its seals signed.")
    ] = None,
    seal_sha256: Annotated[
        str | None, Query(description="SHA-256 (hex) of a seal certificate.")
    ] = None,
) -> JSONResponse:
    """The registry's status of one exact file, for a relying party that checked it offline:
    kind, number, status, when and why (the kind of reason only) it last changed, the seal
    recorded at issuance; nothing personal. With ``seal_sha256``: whether that certificate is
    one of the service's seals. No token needed. 404 when unknown, 400 for a bad digest."""
    found = find_public_status(
        services, sha256=sha256, signed_digest=signed_digest, seal_sha256=seal_sha256
    )
    return JSONResponse(found.to_json(), headers={"Cache-Control": "no-store"})


# --- the transparency log ----------------------------------------------------------------

log_router = APIRouter(prefix="/log", tags=["transparency log"])
LogNumber = Annotated[str | None, Query(max_length=40)]


@log_router.get("/sth")
def log_sth(services: ServicesDep) -> dict[str, Any]:
    """The latest signed tree head (RFC 6962 TreeHeadSignature, ECDSA P-256)."""
    with services.sessions() as session:
        return sth_json(session)


@log_router.get("/proof/inclusion")
def log_inclusion(
    services: ServicesDep,
    tree_size: LogNumber = None,
    leaf_index: LogNumber = None,
    entry_hash: Annotated[str | None, Query(max_length=100)] = None,
) -> dict[str, Any]:
    """An inclusion proof of a leaf (by index or entry hash) in a published tree size."""
    with services.sessions() as session:
        return inclusion_json(
            session, leaf_index=leaf_index, entry_hash=entry_hash, tree_size=tree_size
        )


@log_router.get("/proof/consistency")
def log_consistency(
    services: ServicesDep, first: LogNumber = None, second: LogNumber = None
) -> dict[str, Any]:
    """A consistency proof between two published tree sizes."""
    with services.sessions() as session:
        return consistency_json(session, first=first, second=second)


@log_router.get("/entries")
def log_entries(
    services: ServicesDep, start: LogNumber = None, end: LogNumber = None
) -> dict[str, Any]:
    """Entries ``[start, end)``, at most 1000, within the latest signed tree head."""
    with services.sessions() as session:
        return entries_json(session, start=start, end=end)


@log_router.get("/key", response_class=Response)
def log_key(request: Request, services: ServicesDep) -> Response:
    """The log's public key: PEM, or JSON with ``Accept: application/json``."""
    public_key = services.pki.log_key.public_key()
    if wants_json(request):
        return JSONResponse(log_key_json(public_key))
    return Response(log_key_pem(public_key), media_type="application/x-pem-file")


# --- the audit trail ----------------------------------------------------------------------

audit_router = APIRouter(prefix="/v1/audit", tags=["audit"])


@audit_router.get(
    "/events",
    responses={
        200: {"content": {"application/json": {}, "application/x-ndjson": {}, "text/csv": {}}}
    },
)
def audit_events(
    services: ServicesDep,
    principal: PrincipalDep,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    certificate: Annotated[str | None, Query(max_length=64)] = None,
    format: Annotated[str, Query(pattern="^(json|jsonl|csv)$")] = "json",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Response:
    """The department's audit trail (scope ``audit``): who did what, when, with which outcome;
    as JSON, JSON Lines or CSV."""
    principal.require("audit")
    with services.sessions() as session:
        events = query_events(
            session,
            AuditQuery(
                department_id=principal.department_id,
                since=since,
                until=until,
                actor=actor,
                target_id=certificate,
                limit=limit,
            ),
        )
    if format == "jsonl":
        return Response(to_jsonl(events), media_type="application/x-ndjson")
    if format == "csv":
        return Response(
            to_csv(events),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
    return JSONResponse([event_json(e) for e in events])


# --- the application ----------------------------------------------------------------------


def install_error_handlers(app: FastAPI) -> None:
    """Map every error to problem+json in this one place."""

    @app.exception_handler(EContractError)
    async def domain_error(request: Request, exc: EContractError) -> JSONResponse:
        status = status_of(exc)
        await run_in_threadpool(audit_refusal, request, exc, status)
        errors = None
        if isinstance(exc, InvalidInputError):
            errors = [{"pointer": p, "detail": d} for p, d in exc.errors]
        if status >= 500:
            log.error("service unavailable", extra={"problem": exc.code, "detail": exc.message})
        response = problem(status, exc.code, exc.title, exc.message, errors=errors)
        if isinstance(exc, ConflictError) and exc.data:
            # RFC 9457 extension members: what the caller needs to act (the licence to supersede).
            body = {**json.loads(bytes(response.body)), **exc.data}
            return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)
        if isinstance(exc, OAuthError):
            # RFC 6749 clients read "error"; RFC 6750 asks for a challenge on a 401.
            body = json.loads(bytes(response.body))
            body["error"] = exc.oauth_error
            body["error_description"] = exc.message
            headers = {"Cache-Control": "no-store"}
            if status == 401:
                realm = "token" if exc.oauth_error == "invalid_client" else "api"
                headers["WWW-Authenticate"] = f'Bearer realm="{realm}", error="{exc.oauth_error}"'
            return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [validation_entry(e, exc.body) for e in exc.errors()]
        return problem(
            422,
            InvalidInputError.code,
            InvalidInputError.title,
            "; ".join(f"{e['pointer'] or '(the body)'}: {e['detail']}" for e in errors),
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, title = HTTP_PROBLEMS.get(
            exc.status_code, ("http-error", "The request cannot be answered.")
        )
        detail = str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route that matched the path only;
            # the answer names every method the path takes (RFC 9110 section 15.5.6).
            allow = headers["Allow"] = ", ".join(allowed_methods(request))
            detail = f"{request.method} is not allowed here; this resource takes {allow}."
        response = problem(exc.status_code, code, title, detail)
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(
            500,
            "internal",
            "Internal error.",
            "The service failed unexpectedly; the request id identifies it in the logs.",
        )


#: The problem type and title of the errors the framework raises itself.
HTTP_PROBLEMS = {
    400: ("bad-request", "The request is malformed."),
    404: (NotFoundError.code, NotFoundError.title),
    405: ("method-not-allowed", "The method is not allowed on this resource."),
}


#: The methods a 405's ``Allow`` header may name.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method that some route takes at the request's path.

    Each method is tried against the routes as the router itself would match it, so routers
    included with a prefix count too, however the framework keeps them.
    """
    allowed = []
    for method in METHODS:
        scope = {**request.scope, "method": method}
        if any(
            not isinstance(route, Mount) and route.matches(scope)[0] is Match.FULL
            for route in request.app.router.routes
        ):
            allowed.append(method)
    return allowed


def validation_entry(error: Mapping[str, Any], body: Any) -> dict[str, Any]:
    """One entry of a 422's ``errors``: a JSON pointer into what the caller sent, and why.

    A body that is not JSON at all is named by line and column (1-based), as an editor shows
    them, rather than by the character offset the parser gives.
    """
    where, *path = error["loc"]
    if error["type"] == "json_invalid" and isinstance(body, str) and path:
        offset = int(path[0])
        line = body.count("\n", 0, offset) + 1
        column = offset - body.rfind("\n", 0, offset)
        reason = error.get("ctx", {}).get("error", "not JSON")
        return {
            "pointer": "",
            "detail": f"the body is not valid JSON: {reason} at line {line}, column {column}",
            "line": line,
            "column": column,
        }
    pointer = "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)
    entry: dict[str, Any] = {"pointer": pointer, "detail": error["msg"]}
    if where in ("query", "header", "path", "cookie") and path:
        entry["parameter"] = str(path[0])
    return entry


#: Paths that take a file upload; every other body is held to the JSON request limit.
UPLOAD_PATHS = ("/v1/documents/seal", "/v1/verify")


class BodyLimit:
    """Refuse a request body larger than the path's limit before reading it whole.

    A declared Content-Length over the limit is answered at once. A body without one
    (``Transfer-Encoding: chunked``) is counted as it arrives: past the limit the reader fails,
    and whatever the application answers then is replaced by the same 413. The replacement is
    needed because the framework reads multipart and JSON bodies itself, before the route
    runs, and would turn the reader's failure into a 400 of its own.
    """

    def __init__(self, app: ASGIApp, upload_limit: int, request_limit: int) -> None:
        self.app = app
        self.upload_limit = upload_limit
        self.request_limit = request_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.upload_limit if scope["path"] in UPLOAD_PATHS else self.request_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(
                scope, send, f"The body has {int(declared)} bytes; the limit is {limit}."
            )
            return
        received = 0
        too_large = False
        started = False

        async def limited() -> Message:
            nonlocal received, too_large
            if too_large:
                # The rest of the body is never read; a reader that asks again is told the
                # request is over.
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    too_large = True
                    raise PayloadTooLargeError(
                        f"The body is larger than the limit of {limit} bytes."
                    )
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return  # the application's answer to a cut-off body is replaced below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, guarded)
        except Exception:
            if not too_large or started:
                raise
        if too_large and not started:
            await self._refuse(scope, send, f"The body is larger than the limit of {limit} bytes.")

    @staticmethod
    async def _refuse(scope: Scope, send: Send, detail: str) -> None:
        response = problem(413, PayloadTooLargeError.code, PayloadTooLargeError.title, detail)

        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, nothing, send)


class Observe:
    """Request ids, JSON access logs and metrics, as a plain ASGI middleware.

    Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``) runs every request through
    extra tasks and streams, which costs more than the QR page itself.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        request_id = given if 0 < len(given) <= 64 and given.isprintable() else secrets.token_hex(8)
        # Left set for the rest of this request's task, so that the outermost error handler's
        # problem+json still names the request.
        request_id_var.set(request_id)
        header = (b"x-request-id", request_id.encode("latin-1"))
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.LATENCY.labels(method, route).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": scope["path"],
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )


#: Where the service serves its own copy of Swagger UI's files.
DOCS_ASSETS = "/docs/assets"


def install_docs(app: FastAPI) -> None:
    """Serve the OpenAPI document's Swagger UI at ``/docs`` with assets of the service's own
    (the ``swagger-ui-bundle-v2`` package's copy of swagger-ui-dist), nothing from a CDN."""
    app.mount(
        DOCS_ASSETS,
        StaticFiles(directory=str(swagger_ui_bundle.swagger_ui_path)),
        name="docs-assets",
    )
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title}: API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=None,
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI application (``uvicorn --factory api:create_app``)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    check_font()
    services = Services(settings=settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        publisher: TreeHeadPublisher | None = None
        try:
            publisher = TreeHeadPublisher(
                sessions=services.sessions,
                log_key=services.pki.log_key,
                every_seconds=settings.log_sth_seconds,
            )
            publisher.start()
        except (EContractError, SQLAlchemyError) as exc:
            # The process still serves /healthz and a /readyz that says what is wrong.
            log.error("tree heads are not published", extra={"reason": str(exc).splitlines()[0]})
        yield
        if publisher is not None:
            publisher.stop()
        services.dispose()

    app = FastAPI(
        title="eContract",
        version="1",
        summary="Electronic certificates and e-seals: issue, seal, verify.",
        lifespan=lifespan,
        # The default pages load Swagger UI and ReDoc from a CDN; /docs is served below from
        # the service's own copy, so that it works on a network without the internet.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    install_error_handlers(app)
    install_docs(app)
    # Multipart framing adds a little to the file itself.
    app.add_middleware(
        BodyLimit,
        upload_limit=settings.max_upload_bytes + 64 * 1024,
        request_limit=settings.max_request_bytes,
    )
    app.add_middleware(Observe)  # outermost: every answer is counted and logged
    # Routes are matched in order, one by one: the QR page, the busiest, comes first, as a
    # plain Starlette route. FastAPI's per-route machinery (dependency resolution, parameter
    # validation) costs more than the page itself; its FastAPI declaration in public_pages
    # stays for the OpenAPI document and is matched after this one, so never reached.
    app.router.routes.insert(0, QR_ROUTE)
    app.include_router(public_pages)
    app.include_router(ops)
    app.include_router(pki_router)
    app.include_router(auth_router)
    app.include_router(seals_router)
    app.include_router(documents)
    app.include_router(certificates)
    app.include_router(log_router)
    app.include_router(audit_router)
    return app
