"""The public PKI: trust list, CA certificates, CRLs, OCSP and the timestamp authority."""

from __future__ import annotations

import base64
import binascii
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from econtract import metrics
from econtract.errors import MalformedRequestError, NotFoundError
from econtract.pki import SM2_ROOT
from econtract.services import Services
from routes.deps import ServicesDep, read_body
from routes.security import header_text

router = APIRouter(prefix="/pki", tags=["pki"])


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
    """The CRL of each CA of both hierarchies, by the CA's name."""
    ocsp_url: str
    """The OCSP responder of both hierarchies."""
    tsa_url: str
    """The timestamp authority: an SM3 imprint is stamped by the SM2/SM3 authority."""
    sm2_root: TrustListEntry | None = None
    """The SM2 root (SM2-with-SM3), pinned by relying parties that verify SM2 seals."""
    sm2_intermediates: list[TrustListEntry] = []
    """The SM2 issuing CA."""


def _entry(name: str, cert: Any) -> TrustListEntry:
    return TrustListEntry(
        name=name,
        subject=cert.subject.rfc4514_string(),
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
        not_after=cert.not_valid_after_utc.isoformat(),
        pem=cert.public_bytes(Encoding.PEM).decode(),
    )


@router.get("/trust-list.json", response_model=TrustList)
def trust_list(services: ServicesDep) -> TrustList:
    """The root and intermediate CA certificates, with the revocation and timestamp URLs."""
    pki = services.pki
    cas = pki.ca_certificates
    sm2 = pki.sm2_ca_certificates
    return TrustList(
        root=_entry("root", cas["root"]),
        intermediates=[_entry(n, c) for n, c in cas.items() if n != "root"],
        crl_urls={n: pki.urls.crl_url(n) for n in pki.crl_issuers},
        ocsp_url=pki.urls.ocsp_url(),
        tsa_url=pki.urls.tsa_url(),
        sm2_root=_entry(SM2_ROOT, sm2[SM2_ROOT]) if sm2 else None,
        sm2_intermediates=[_entry(n, c) for n, c in sm2.items() if n != SM2_ROOT],
    )


def _ca_certificate(services: Services, name: str) -> x509.Certificate:
    """A CA certificate of either hierarchy by its URL name; 404 for an unknown name."""
    cert = services.pki.ca_certificates.get(name) or services.pki.sm2_ca_certificates.get(name)
    if cert is None:
        raise NotFoundError(f"There is no CA named {name!r}.")
    return cert


@router.get("/chain.pem", response_class=Response)
def chain_pem(services: ServicesDep) -> Response:
    """The issuing CA then the root, PEM."""
    cas = services.pki.ca_certificates
    pem = b"".join(cas[n].public_bytes(Encoding.PEM) for n in ("issuing", "root"))
    return Response(pem, media_type="application/x-pem-file")


@router.get("/ca/{name}.cer", response_class=Response)
def ca_der(name: str, services: ServicesDep) -> Response:
    """A CA certificate, DER (the AIA caIssuers URL)."""
    cert = _ca_certificate(services, name)
    return Response(cert.public_bytes(Encoding.DER), media_type="application/pkix-cert")


@router.get("/ca/{name}.pem", response_class=Response)
def ca_pem(name: str, services: ServicesDep) -> Response:
    """A CA certificate, PEM."""
    cert = _ca_certificate(services, name)
    return Response(cert.public_bytes(Encoding.PEM), media_type="application/x-pem-file")


@router.get("/crl/{name}.crl", response_class=Response)
def crl(name: str, services: ServicesDep) -> Response:
    """The current CRL of a CA (the CRL distribution point URL); an SM2 CA's is signed
    SM2-with-SM3."""
    if name not in services.pki.crl_issuers:
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


@router.post(
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


@router.get("/ocsp/{encoded:path}", response_class=Response)
def ocsp_get(encoded: str, services: ServicesDep) -> Response:
    """RFC 6960 OCSP over GET (the base64 request in the path)."""
    try:
        request_der = base64.b64decode(unquote(encoded), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedRequestError("The OCSP GET path is not base64.") from None
    return _ocsp_answer(services, request_der)


TSQ = "application/timestamp-query"
TSR = "application/timestamp-reply"


@router.post(
    "/tsa",
    response_class=Response,
    responses={
        200: {"content": {TSR: {}}, "description": "A TimeStampResp granting the timestamp."},
        400: {
            "content": {TSR: {}},
            "description": "A TimeStampResp refusing the query (status rejection); the "
            "X-Problem-Detail header says why.",
        },
    },
    openapi_extra={
        "requestBody": {"content": {TSQ: {"schema": {"type": "string", "format": "binary"}}}}
    },
)
async def tsa(request: Request, services: ServicesDep) -> Response:
    """RFC 3161 timestamping: a DER TimeStampReq in, a DER TimeStampResp out.

    A query whose imprint is SM3 is answered by the SM2/SM3 authority (a token signed
    SM2-with-SM3), any other by the first one, so that one URL serves both hierarchies.

    A refused query (unsupported hash, unknown policy, not DER) still gets a TimeStampResp
    with status ``rejection`` and the failure reason, with HTTP 400, so both RFC 3161
    clients and people see why.
    """
    body = await read_body(request, 64 * 1024, TSQ)
    reply = services.pki.timestamp(body)
    if reply.granted:
        metrics.TIMESTAMPS_ISSUED.inc()
    # The reason quotes the parser, whose messages hold newlines and anything the query held.
    headers = {} if reply.granted else {"X-Problem-Detail": header_text(reply.detail or "rejected")}
    return Response(
        reply.der, status_code=200 if reply.granted else 400, media_type=TSR, headers=headers
    )
