"""The citizen's pages and public verification: the QR page, the upload page, POST
/v1/verify and the registry status of a file."""

from __future__ import annotations

import contextlib
import inspect
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from econtract import db
from econtract.issuance import QRCheck, check_qr
from econtract.registry_status import find_public_status
from econtract.report_pdf import report_pdf
from econtract.services import Services
from econtract.supervision import count_qr_answer, count_scan
from econtract.verification import log_appendix, log_proofs, verify_upload
from routes.deps import ServicesDep, wants_json
from routes.ratelimit import hit_per_address
from verify.html import render_html
from verify.limits import VerificationPool
from verify.report import Report

router = APIRouter(tags=["public verification"])
pages = Jinja2Templates(directory=Path(__file__).parent.parent / "econtract" / "web")
QR_TEMPLATE = pages.env.get_template("qr.html")


@router.get(
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
    await hit_per_address(request, "qr")
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
    count_qr_answer(services, token, check.verdict.value, check.certificate_id)
    if wants_json(request):
        body = check.to_json()
        if check.certificate_id is not None:
            body["transparency"] = await run_in_threadpool(
                log_proofs, services, check.certificate_id
            )
        return JSONResponse(body, headers=QR_HEADERS)
    return _RenderedPage(*_encoded_page(check))


async def qr_page_route(request: Request) -> Response:
    """:func:`qr_page` as a plain Starlette endpoint (see :func:`create_app`)."""
    # FastAPI's router names only its own routes in the scope; the metrics label needs it.
    request.scope.setdefault("route", QR_ROUTE)
    return await qr_page(request.path_params["token"], request)


QR_ROUTE = Route("/v/{token}", qr_page_route, methods=["GET"])
"""The QR page's route, matched before every other."""


class QRPage:
    """Answer the QR page (``GET /v/{token}``, and ``HEAD``) before the framework's own
    layers: an ASGI middleware, the innermost of the application's.

    The page is the busiest of the service and, answered from what each worker remembers,
    cheap: the layers between the application's middleware and the route (the exception
    middleware, the exit stack, the router, the route's request and response wrappers) cost
    as much as the page itself. Whatever the page raises is answered by the application's
    exception handlers, as the exception middleware would answer it; an error without one
    (the handler of ``Exception``) goes on to the outermost layer, as it would from the
    route. Every other request (and a wrong method on the page's path) goes on unchanged.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v/"):
            match, child = QR_ROUTE.matches(scope)
            if match is Match.FULL:
                scope.update(child)
                scope["route"] = QR_ROUTE
                request = Request(scope, receive)
                try:
                    response = await qr_page(scope["path_params"]["token"], request)
                except Exception as exc:
                    response = await _handled(request, exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _handled(request: Request, exc: Exception) -> Response:
    """The answer of the application's exception handler for ``exc``, found as Starlette's
    exception middleware finds it (by status code for an HTTP exception, then by class);
    ``exc`` is raised again when only the outermost layer handles it (``Exception``, 500)."""
    handlers = {
        key: handler
        for key, handler in request.app.exception_handlers.items()
        if key not in (500, Exception)
    }
    handler = handlers.get(exc.status_code) if isinstance(exc, HTTPException) else None
    if handler is None:
        handler = next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)
    if handler is None:
        raise exc
    answer = handler(request, exc)
    response: Response = await answer if inspect.isawaitable(answer) else answer
    return response


QR_HEADERS = {"Cache-Control": "no-store", "X-Robots-Tag": "noindex"}
"""What the QR page says about itself besides its type: never cached, never indexed."""


def qr_html(check: QRCheck) -> str:
    """The QR page for a verdict, rendered."""
    return QR_TEMPLATE.render(check=check)


@lru_cache(maxsize=4096)
def _encoded_page(check: QRCheck) -> tuple[bytes, tuple[tuple[bytes, bytes], ...]]:
    """The QR page for a verdict as it is sent: its bytes and encoded headers. The verdict
    holds everything the page shows (status, details, today's expiry decision), so equal
    verdicts give the same page and the last ones are kept: rendering, encoding the page and
    its headers cost more than the page's database read."""
    page = HTMLResponse(qr_html(check), headers=QR_HEADERS)
    return bytes(page.body), tuple(page.raw_headers)


class _RenderedPage(HTMLResponse):
    """A QR page answered from :func:`_encoded_page`, without encoding anything again."""

    def __init__(self, body: bytes, raw_headers: tuple[tuple[bytes, bytes], ...]) -> None:
        # Response.__init__ would encode the body and every header again.
        self.status_code = 200
        self.background = None
        self.body = body
        # A list of its own: a middleware may add to the headers of this answer.
        self.raw_headers = list(raw_headers)


@router.get("/verify", response_class=HTMLResponse)
def verify_page(request: Request) -> Response:
    """A page to upload a PDF and read its verdict with the reasons in plain words."""
    services: Services = request.app.state.services
    return pages.TemplateResponse(
        request, "verify.html", {"service_name": services.settings.service_name}
    )


@router.post(
    "/v1/verify",
    responses={
        200: {"content": {"application/json": {}, "text/html": {}}},
        413: {},
        422: {},
        429: {},
        503: {},
    },
)
async def verify_upload_route(
    request: Request,
    services: ServicesDep,
    file: Annotated[UploadFile, File(description="The PDF to check.")],
) -> Response:
    """Verify an uploaded PDF: the report (versioned JSON schema), or the printable HTML report
    with ``Accept: text/html``, or as a PDF to file with ``Accept: application/pdf``. No
    token needed: anyone may check a document. Uploads per address are rate-limited (429),
    and when every verification worker is busy and the queue is full the upload is refused
    at once (503); both say when to try again (``Retry-After``)."""
    await hit_per_address(request, "verify")
    pool: VerificationPool = request.app.state.verification_pool
    report = await pool.run(verify_upload, services, await file.read())
    count_scan(
        services.clock,
        channel="verify",
        subject=report.registry.record_id,
        verdict=report.verdict.value,
    )
    return await run_in_threadpool(_report_response, request, services, report)


def _report_response(request: Request, services: Services, report: Report) -> Response:
    """The report in the form asked for, with the log's proofs (database reads, rendering:
    run in the thread pool)."""
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


@router.get("/v1/status", responses={400: {}, 404: {}})
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
