"""The HTTP API: the application, its middleware, the mapping of errors to problem+json and
the assembly of the routers of ``routes`` (one module per capability).

Nothing below this module and ``routes`` knows about HTTP; they know nothing about PDFs or
keys beyond calling the domain.
"""

from __future__ import annotations

import gc
import json
import logging
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles

import routes.audit
import routes.auth
import routes.batches
import routes.certificates
import routes.console
import routes.console_certificates
import routes.console_department
import routes.console_overview
import routes.console_records
import routes.console_reports
import routes.console_warnings
import routes.copies
import routes.documents
import routes.envelopes
import routes.holders
import routes.log
import routes.ops
import routes.pki
import routes.sharing
import routes.subscriptions
import routes.use
import routes.verification
from econtract import db
from econtract.audit import record as record_event
from econtract.auth import OAuthError, Principal
from econtract.batches import open_runner
from econtract.config import Settings, get_settings
from econtract.errors import (
    BrokenPDFError,
    ConflictError,
    DatabaseUnavailableError,
    DocumentCertifiedError,
    EContractError,
    EncryptedPDFError,
    FieldReservedError,
    InsufficientStorageError,
    InvalidInputError,
    KeyStoreError,
    MalformedRequestError,
    NotAPDFError,
    NotFoundError,
    PermissionDeniedError,
    PKIError,
    PlacementError,
    SealUnusableError,
    SigningError,
    TimestampError,
)
from econtract.issuance import ClaimSweeper, check_font
from econtract.logs import configure_logging
from econtract.ratelimit import RateLimitedError, RateLimiter
from econtract.services import Services
from econtract.translog import (
    LogError,
    LogNotFoundError,
    LogRequestError,
    TreeHeadPublisher,
)
from econtract.webhooks import WebhookWorker
from routes.deps import actor_of
from routes.errors import (
    IdempotencyKeyRequiredError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from routes.middleware import (
    PROBLEM_JSON,
    BodyLimit,
    Observe,
    RefuseBusyVerification,
    problem,
)
from routes.openapi import install_openapi
from routes.security import STATIC_DIR, STATIC_PATH, SecurityHeaders
from verify.errors import NotAPDFError as VerifyNotAPDFError
from verify.errors import TooLargeError, VerificationError
from verify.limits import VerificationBusyError, VerificationPool, default_workers

log = logging.getLogger("econtract.api")

_SWITCH_INTERVAL_SECONDS = 0.001
"""How long a serving process's thread may keep the interpreter lock from one that waits."""


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
    VerificationBusyError: 503,
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
    RateLimitedError: 429,
    InsufficientStorageError: 507,
}

#: Seconds a caller is asked to wait (``Retry-After``) while the database is unreachable: the
#: pool reconnects by itself once it answers again.
RETRY_AFTER_SECONDS = 5


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
        # A full verification pool is the service keeping its bounds under a flood, not a
        # fault: it is counted in the metrics (errors by code), not logged once per upload.
        if status >= 500 and not isinstance(exc, VerificationBusyError):
            log.error("service unavailable", extra={"problem": exc.code, "detail": exc.message})
        response = problem(status, exc.code, exc.title, exc.message, errors=errors)
        if isinstance(exc, DatabaseUnavailableError):
            response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        if isinstance(exc, RateLimitedError | VerificationBusyError):
            response.headers["Retry-After"] = str(exc.retry_after)
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

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> JSONResponse:
        # A lost connection or a database that does not answer (stopped, restarting, failing
        # over) passes: the pool pings before lending a connection, so the first request after
        # it is back succeeds. The caller is told to retry, not that the service failed.
        if not (isinstance(exc, OperationalError) or exc.connection_invalidated):
            return await unexpected(request, exc)
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        log.error("database unavailable", extra={"reason": reason})
        response = problem(
            503,
            DatabaseUnavailableError.code,
            DatabaseUnavailableError.title,
            "The registry database cannot be reached; try again shortly (an issuance with the "
            "same Idempotency-Key).",
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response


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

    # FastAPI's own page starts Swagger UI with an inline script, which the pages'
    # Content-Security-Policy refuses; this one starts it from the service's static docs.js.
    page = routes.verification.pages.get_template("docs.html").render(
        title=f"{app.title}: API", openapi_url=openapi_url, assets=DOCS_ASSETS
    )

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(page)


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
                clock=services.clock,
            )
            publisher.start()
        except (EContractError, SQLAlchemyError) as exc:
            # The process still serves /healthz and a /readyz that says what is wrong.
            log.error("tree heads are not published", extra={"reason": str(exc).splitlines()[0]})
        # The outbox's consumer: signed events to the subscriptions (0 seconds: none here).
        worker: WebhookWorker | None = None
        if settings.webhook_poll_seconds > 0:
            worker = WebhookWorker(services=services, tick_seconds=settings.webhook_poll_seconds)
            worker.start()
        # Batch rows: issued by this process's threads, or sent to the broker's workers.
        app.state.batch_runner.start()
        # Licence numbers claimed by an issuance that died are declared void: at start-up (a
        # crashed predecessor's) and then periodically.
        sweeper = ClaimSweeper(services=services)
        sweeper.start()
        # Everything loaded at start-up lives as long as the process: kept out of the cyclic
        # collector's full passes, which otherwise stop every request for 100-200 ms.
        gc.collect()
        gc.freeze()
        # The event loop answers every request; the thread pool's Python work (reports,
        # sealing, registry reads) holds the interpreter lock meanwhile. A thread that wants
        # the lock back waits for the switch interval, 5 ms by default, each time it wakes:
        # 1 ms keeps a cheap page cheap while uploads are checked, at a cost of a few more
        # switches between busy threads (bench_flood: the QR page's p99 under the flood
        # 17-23 ms at 1 ms, 49-106 ms at 5 ms; 0.5 ms gained nothing more).
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL_SECONDS)
        yield
        sys.setswitchinterval(switch_interval)
        gc.unfreeze()
        sweeper.stop()
        app.state.batch_runner.stop()
        if worker is not None:
            worker.stop()
        if publisher is not None:
            publisher.stop()
        app.state.verification_pool.shutdown()
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
        # The service's metrics are its own (econtract.metrics); FastAPI's OpenTelemetry
        # bridge would otherwise ask for the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.services = services
    # Uploads are verified in a bounded pool and costly calls are rate-limited, per process
    # (the limits' counts in Redis when one is configured): see verify.limits, econtract.ratelimit.
    verify_workers = settings.verify_workers or default_workers()
    queue = settings.verify_queue if settings.verify_queue is not None else 2 * verify_workers
    app.state.verification_pool = VerificationPool(workers=verify_workers, queue=queue)
    app.state.rate_limiter = RateLimiter.from_settings(settings)
    app.state.batch_runner = open_runner(services)
    install_error_handlers(app)
    install_docs(app)
    install_openapi(app)
    app.mount(STATIC_PATH, StaticFiles(directory=str(STATIC_DIR)), name="static")
    # The innermost: the QR page is answered before the framework's exception middleware and
    # router (see routes.verification.QRPage), inside every middleware below.
    app.add_middleware(routes.verification.QRPage)
    # Multipart framing adds a little to the file itself.
    app.add_middleware(
        BodyLimit,
        upload_limit=settings.max_upload_bytes + 64 * 1024,
        request_limit=settings.max_request_bytes,
    )
    app.add_middleware(RefuseBusyVerification, drain_limit=settings.max_upload_bytes + 64 * 1024)
    app.add_middleware(SecurityHeaders, https=settings.public_base_url.startswith("https://"))
    app.add_middleware(Observe)  # outermost: every answer is counted and logged
    # The QR page's plain route, matched first, is what QRPage matches a request with; here
    # it answers what QRPage passes on (another method: 405 naming GET and HEAD). FastAPI's
    # declaration of the page in routes.verification stays for the OpenAPI document.
    app.router.routes.insert(0, routes.verification.QR_ROUTE)
    app.include_router(routes.verification.router)
    app.include_router(routes.ops.router)
    app.include_router(routes.pki.router)
    app.include_router(routes.auth.router)
    app.include_router(routes.certificates.seals_router)
    app.include_router(routes.documents.router)
    app.include_router(routes.certificates.router)
    app.include_router(routes.log.router)
    app.include_router(routes.audit.router)
    app.include_router(routes.sharing.router)
    app.include_router(routes.subscriptions.router)
    app.include_router(routes.use.router)
    app.include_router(routes.copies.router)
    app.include_router(routes.holders.router)
    app.include_router(routes.batches.router)
    app.include_router(routes.envelopes.router)
    # The console for people (sign-in, sessions, its pages): see routes.console.
    routes.console.install(
        app,
        settings,
        routes.console_overview.router,
        routes.console_records.router,
        routes.console_warnings.router,
        routes.console_department.router,
        routes.console_certificates.router,
        routes.console_reports.router,
    )
    return app
