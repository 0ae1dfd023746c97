"""The HTTP layer's middleware and its problem+json answer: request ids, access logs and
metrics (:class:`Observe`), body limits (:class:`BodyLimit`) and the early refusal of uploads
while verification is full (:class:`RefuseBusyVerification`). Plain ASGI classes: Starlette's
``BaseHTTPMiddleware`` runs every request through extra tasks and streams, which costs more
than the QR page itself."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from econtract import metrics
from econtract.logs import log_request, request_id_var
from routes.errors import PayloadTooLargeError
from verify.limits import VerificationBusyError

PROBLEM_JSON = "application/problem+json"
"""The media type of every error answer (RFC 9457)."""


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


#: Paths that take a file upload; every other body is held to the JSON request limit.
UPLOAD_PATHS = ("/v1/documents/seal", "/v1/verify", "/v1/batches")


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
        declared = None
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
            elif name == b"transfer-encoding":
                chunked = True
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._refuse(
                scope, send, f"The body has {int(declared)} bytes; the limit is {limit}."
            )
            return
        if not chunked and scope.get("http_version") in ("1.0", "1.1"):
            # HTTP/1 without chunked framing: the server reads the declared length, checked
            # above, or no body at all. Nothing is left to count (the QR page and every other
            # GET pass here, without the wrappers below).
            await self.app(scope, receive, send)
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


class RefuseBusyVerification:
    """Refuse an upload to ``POST /v1/verify`` while the verification pool is full, before its
    body is parsed.

    The route's own check comes after FastAPI has read and parsed the whole multipart body;
    under a flood, that parsing of files that will be refused anyway is what takes the CPU
    from every other request. Here the body is only drained (read and dropped, up to
    ``drain_limit`` bytes, so that the client, still sending, receives the answer rather than
    a reset connection) and the same 503 problem with ``Retry-After`` is sent. The connection
    stays open when the whole body was read (a new connection for every retry costs the
    kernel more than the answer costs here); it is closed when the drain stopped early.
    """

    def __init__(self, app: ASGIApp, drain_limit: int) -> None:
        self.app = app
        self.drain_limit = drain_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == "/v1/verify"
            and scope["app"].state.verification_pool.full
        ):
            refusal: VerificationBusyError = scope["app"].state.verification_pool.busy_error()
            drained = 0
            complete = False
            while drained <= self.drain_limit:
                message = await receive()
                if message["type"] != "http.request":
                    break
                drained += len(message.get("body", b""))
                if not message.get("more_body", False):
                    complete = True
                    break
            response = problem(503, refusal.code, refusal.title, refusal.message)
            response.headers["Retry-After"] = str(refusal.retry_after)
            if not complete:
                response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class Observe:
    """Request ids, JSON access logs and metrics, as a plain ASGI middleware.

    Starlette's ``BaseHTTPMiddleware`` (``@app.middleware("http")``) runs every request through
    extra tasks and streams, which costs more than the QR page itself. The access line is
    written by :func:`econtract.logs.log_request`, the answer counted in memory by
    :data:`econtract.metrics.HTTP_REQUESTS` and added to the metrics at most a second later.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            if scope["type"] == "lifespan":
                # The service stops: the answers of its last moments are counted too.
                metrics.HTTP_REQUESTS.flush()
            return
        given = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                break
        # A request id names a request in the logs; it need not be secret, only unlikely to
        # repeat, so it comes from the (per-process, fork-safe) Mersenne Twister rather than
        # a system call.
        request_id = (
            given
            if 0 < len(given) <= 64 and given.isprintable()
            else f"{random.getrandbits(64):016x}"
        )
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
            if metrics.HTTP_REQUESTS.count(method, route, status, elapsed):
                asyncio.get_running_loop().call_later(
                    metrics.FLUSH_SECONDS, metrics.HTTP_REQUESTS.flush
                )
            log_request(method, scope["path"], status, round(elapsed * 1000, 2))
