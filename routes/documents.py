"""Sealed documents: seal an uploaded PDF, read it back."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel

from econtract.documents import get_document as fetch_document
from econtract.models import SealedDocument
from econtract.sealing import Certification, SealLevel, SealOptions, seal_document
from econtract.ses.sealing_record import has_sealing_signature, kept_ses_signature
from routes.deps import ReaderDep, SealerDep, ServicesDep, actor_of
from routes.downloads import pdf_response

router = APIRouter(prefix="/v1/documents", tags=["documents"])


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
    ses_signature_url: str | None = None
    """Where the GB/T 38540 SES_Signature of its SM2 seal is, when an SM2 seal sealed it."""


def document_public(document: SealedDocument, *, has_ses_signature: bool) -> DocumentPublic:
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
        ses_signature_url=(
            f"/v1/documents/{document.id}/ses-signature" if has_ses_signature else None
        ),
    )


@router.post(
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
    principal: SealerDep,
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
    dual: Annotated[
        bool,
        Form(
            description="Dual seal: the department's ECDSA (or RSA) seal of the same kind "
            "certifies (form-filling) and its SM2 seal approves after it, so that readers of "
            "either family accept the file; 422 when the department has no seal of the "
            "other family."
        ),
    ] = False,
) -> Response:
    """Seal an uploaded PDF with one of the caller's department's seals, and register it.

    Answers the document's record as JSON, or the sealed PDF itself with
    ``Accept: application/pdf``.
    """
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
        dual=dual,
    )
    location = f"/v1/documents/{sealed.document.id}"
    if "application/pdf" in request.headers.get("accept", ""):
        return pdf_response(
            services.blobs.open(sealed.document.blob_key),
            status_code=201,
            headers={"Location": location, "X-Document-Id": sealed.document.id},
        )
    body = document_public(
        sealed.document, has_ses_signature=sealed.ses_signature is not None
    ).model_dump()
    return JSONResponse(body, status_code=201, headers={"Location": location})


@router.get("/{document_id}", response_model=DocumentPublic)
def get_document(document_id: str, services: ServicesDep, principal: ReaderDep) -> DocumentPublic:
    """A sealed document of the caller's department."""
    with services.sessions() as session:
        document = fetch_document(session, document_id, department_id=principal.department_id)
        has_ses_signature = has_sealing_signature(session, document_id=document.id)
    return document_public(document, has_ses_signature=has_ses_signature)


@router.get("/{document_id}/pdf", response_class=StreamingResponse)
def get_document_pdf(
    document_id: str, services: ServicesDep, principal: ReaderDep
) -> StreamingResponse:
    """The sealed PDF of a document of the caller's department."""
    with services.sessions() as session:
        document = fetch_document(session, document_id, department_id=principal.department_id)
    return pdf_response(services.blobs.open(document.blob_key))


@router.get(
    "/{document_id}/ses-signature",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, 404: {}},
)
def get_document_ses_signature(
    document_id: str, services: ServicesDep, principal: ReaderDep
) -> Response:
    """The GB/T 38540 SES_Signature (DER) of the SM2 seal on a document of the caller's
    department; 404 for another department's document or one without an SM2 seal."""
    with services.sessions() as session:
        fetch_document(session, document_id, department_id=principal.department_id)
        der = kept_ses_signature(
            session, document_id=document_id, department_id=principal.department_id
        )
    return ses_signature_response(der, document_id)


def ses_signature_response(der: bytes, record_id: str) -> Response:
    """An SES_Signature as a download named for its record, whose id the registry found (so
    no unchecked text goes into the header)."""
    return Response(
        der,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{record_id}.dat"'},
    )


def _safe_name(name: str | None) -> str | None:
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(ch for ch in base if ch.isprintable())[:255] or None
