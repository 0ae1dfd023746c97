"""Batches: submit many licences at once, follow them, read their results, cancel them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from econtract.batches import (
    CSV_TYPE,
    NDJSON_TYPE,
    BatchRunner,
    Progress,
    batch_progress,
    batch_results,
    cancel_batch,
    parse_upload,
    submit_batch,
)
from econtract.csvsafe import csv_text
from econtract.errors import InvalidInputError, PermissionDeniedError
from econtract.models import BatchRow
from routes.certificates import IDEMPOTENCY_KEY_PARAMETER, check_idempotency_key
from routes.deps import IssuerDep, PrincipalDep, ServicesDep, read_body
from routes.errors import UnsupportedMediaTypeError

router = APIRouter(prefix="/v1/batches", tags=["batches"])

#: The columns of a batch's results as CSV.
RESULT_COLUMNS = ("row", "state", "certificate_id", "number", "errors")

_MEDIA_BY_SUFFIX = {".csv": CSV_TYPE, ".jsonl": NDJSON_TYPE, ".ndjson": NDJSON_TYPE}


class BatchPublic(BaseModel):
    """A batch and how far it has come."""

    id: str
    type: str
    total: int
    counts: dict[str, int]
    """Rows per state: ``queued``, ``issued``, ``failed``, ``cancelled``."""
    done: bool
    """Whether no row is queued any more."""
    rows_per_second: float | None
    """Rows finished per second since the batch was submitted."""
    eta_seconds: float | None
    """The time the queued rows need at that rate."""
    created_at: datetime
    cancelled_at: datetime | None
    results_url: str


class BatchRowPublic(BaseModel):
    """What became of one row."""

    row: int
    """The row's number in the upload (a CSV's header is row 1)."""
    state: str
    certificate_id: str | None
    number: str | None
    errors: list[dict[str, str]]
    """A failed row's reasons, each a JSON ``pointer`` into the row and a ``message``; a row
    that failed for a reason of the service rather than of its fields also has a ``code``
    (``batch-row-error``: its issuance kept failing)."""


def batch_public(progress: Progress) -> BatchPublic:
    """The public view of a batch's progress."""
    return BatchPublic(
        id=progress.batch_id,
        type=progress.type_code,
        total=progress.total,
        counts=progress.counts,
        done=progress.done,
        rows_per_second=progress.rows_per_second,
        eta_seconds=progress.eta_seconds,
        created_at=progress.created_at,
        cancelled_at=progress.cancelled_at,
        results_url=f"/v1/batches/{progress.batch_id}/results",
    )


def row_public(row: BatchRow) -> BatchRowPublic:
    """The public view of a row."""
    return BatchRowPublic(
        row=row.row,
        state=row.state,
        certificate_id=row.certificate_id,
        number=row.certificate_number,
        errors=[_error_public(e) for e in row.errors or []],
    )


def _error_public(error: list[str]) -> dict[str, str]:
    # Stored as [pointer, message] or, for a reason of the service, [pointer, message, code].
    pointer, message, *code = error
    return {"pointer": pointer, "message": message} | ({"code": code[0]} if code else {})


def _require_reader(principal: PrincipalDep) -> None:
    if not principal.scopes & {"read", "issue"}:
        raise PermissionDeniedError("Reading batches needs the 'read' or the 'issue' scope.")


_UPLOAD_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "type"],
                "properties": {
                    "file": {
                        "type": "string",
                        "format": "binary",
                        "description": "CSV (a header of field names) or JSON lines "
                        "(one object of fields a line), by its type or its name's suffix.",
                    },
                    "type": {"type": "string", "description": "The certificate type."},
                },
            }
        },
        CSV_TYPE: {"schema": {"type": "string"}},
        NDJSON_TYPE: {"schema": {"type": "string"}},
    },
}


@router.post(
    "",
    status_code=202,
    response_model=BatchPublic,
    responses={
        200: {"description": "A replay of an earlier submission with the same key."},
        409: {},
        413: {},
        415: {},
        422: {},
        428: {"description": "The Idempotency-Key header is missing."},
    },
    openapi_extra={"parameters": [IDEMPOTENCY_KEY_PARAMETER], "requestBody": _UPLOAD_BODY},
)
async def submit(
    request: Request,
    background: BackgroundTasks,
    services: ServicesDep,
    principal: IssuerDep,
    type: Annotated[
        str | None,
        Query(max_length=60, description="The certificate type, for a CSV or JSON-lines body."),
    ] = None,
    idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", include_in_schema=False)
    ] = None,
) -> JSONResponse:
    """Submit a batch of licences of one type (scope ``issue``): a multipart upload (``file``
    and ``type``), or the rows as the body (``text/csv`` or ``application/x-ndjson``) with
    ``?type=``. Answers at once (202) with the batch; its rows are issued in the background,
    each exactly once. A row that is not a set of fields fails at once; the fields are checked
    as each row is issued. The ``Idempotency-Key`` header is required: the same key and body
    give the same batch (200)."""
    check_idempotency_key(idempotency_key, "POST /v1/batches")
    assert idempotency_key is not None
    raw, media_type, type_code = await _read_upload(request, services.settings.max_upload_bytes)
    type_code = type_code or type
    if not type_code:
        raise InvalidInputError(
            "A batch names its certificate type.", errors=[("/type", "missing")]
        )
    upload = parse_upload(raw, media_type)
    submitted = await run_in_threadpool(
        submit_batch,
        services,
        department_code=principal.department_code,
        client_id=principal.client_id,
        idempotency_key=idempotency_key,
        type_code=type_code,
        rows=upload.rows,
        body_digest=upload.digest,
    )
    runner: BatchRunner = request.app.state.batch_runner
    if submitted.queued_rows:
        # After the answer: handing 10,000 rows to a broker takes a moment.
        background.add_task(runner.submit, submitted.batch_id, submitted.queued_rows)
    progress = await run_in_threadpool(
        batch_progress,
        services,
        batch_id=submitted.batch_id,
        department_id=principal.department_id,
    )
    return JSONResponse(
        batch_public(progress).model_dump(mode="json"),
        status_code=200 if submitted.replayed else 202,
        headers={"Location": f"/v1/batches/{submitted.batch_id}"},
        background=background,
    )


async def _read_upload(request: Request, limit: int) -> tuple[bytes, str, str | None]:
    # The body's bytes, their media type, and the type named in a multipart form.
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given in (CSV_TYPE, NDJSON_TYPE):
        return await read_body(request, limit), given, None
    if given != "multipart/form-data":
        raise UnsupportedMediaTypeError(
            f"A batch is multipart/form-data, {CSV_TYPE} or {NDJSON_TYPE}, "
            f"not {given or 'a body without a type'}."
        )
    form = await request.form(max_files=1, max_fields=4)
    file, type_code = form.get("file"), form.get("type")
    if not isinstance(file, UploadFile):
        raise InvalidInputError("The form has no file.", errors=[("/file", "missing")])
    if type_code is not None and not isinstance(type_code, str):
        raise InvalidInputError("The type is a text field.", errors=[("/type", "not text")])
    media_type = (file.content_type or "").split(";")[0].strip().lower()
    if media_type not in (CSV_TYPE, NDJSON_TYPE):
        name = (file.filename or "").lower()
        media_type = next((t for s, t in _MEDIA_BY_SUFFIX.items() if name.endswith(s)), media_type)
    return await file.read(), media_type, type_code


@router.get("/{batch_id}", response_model=BatchPublic, responses={404: {}})
def get_batch_route(
    batch_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
) -> BatchPublic:
    """A batch of the caller's department: its counts per state, its rate and the time its
    queued rows still need (scope ``read`` or ``issue``)."""
    _require_reader(principal)
    progress = batch_progress(services, batch_id=batch_id, department_id=principal.department_id)
    return batch_public(progress)


@router.get(
    "/{batch_id}/results",
    response_model=list[BatchRowPublic],
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}, 404: {}},
)
def batch_results_route(
    batch_id: str,
    services: ServicesDep,
    principal: PrincipalDep,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Response:
    """Every row of the batch: its certificate's id and number, or the bad fields by JSON
    pointer (scope ``read`` or ``issue``); as JSON, or as CSV with ``format=csv``."""
    _require_reader(principal)
    rows = batch_results(services, batch_id=batch_id, department_id=principal.department_id)
    if format == "csv":
        return Response(
            results_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{batch_id}.csv"'},
        )
    return JSONResponse([row_public(r).model_dump(mode="json") for r in rows])


def results_csv(rows: list[BatchRow]) -> str:
    """The rows as CSV; a reason quotes the input, so every cell goes through csvsafe."""
    lines: list[list[Any]] = [
        [
            r.row,
            r.state,
            r.certificate_id or "",
            r.certificate_number or "",
            "; ".join(f"{e[0]}: {e[1]}" for e in r.errors or []),
        ]
        for r in rows
    ]
    return csv_text(RESULT_COLUMNS, lines)


@router.post("/{batch_id}/cancel", response_model=BatchPublic, responses={404: {}})
def cancel(batch_id: str, services: ServicesDep, principal: IssuerDep) -> BatchPublic:
    """Cancel the rows not yet issued (scope ``issue``); a row being issued at that moment
    ends issued. Answers the batch as it is then."""
    cancel_batch(services, batch_id=batch_id, department_id=principal.department_id)
    return batch_public(
        batch_progress(services, batch_id=batch_id, department_id=principal.department_id)
    )
