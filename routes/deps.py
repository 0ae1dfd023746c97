"""Dependencies and helpers shared by the routers: the services, the caller and its scopes,
bounded bodies, pagination links."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from econtract.audit import Actor
from econtract.auth import OAuthError, Principal, authenticate
from econtract.logs import request_id_var
from econtract.services import Services
from routes.errors import PayloadTooLargeError, UnsupportedMediaTypeError


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


def wants_json(request: Request) -> bool:
    """Whether the client asked for JSON rather than a page."""
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


bearer = HTTPBearer(auto_error=False, description="An access token from POST /v1/token.")


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


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require_scope(scope: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the caller, refused (403) unless its token holds ``scope``.

    Declared with the route's parameters rather than checked on its first line, so that a
    route cannot forget it; it runs before the route's body is validated.
    """

    async def principal_with_scope(principal: PrincipalDep) -> Principal:
        principal.require(scope)
        return principal

    return principal_with_scope


ReaderDep = Annotated[Principal, Depends(require_scope("read"))]
"""A caller with the ``read`` scope."""
IssuerDep = Annotated[Principal, Depends(require_scope("issue"))]
"""A caller with the ``issue`` scope."""
SealerDep = Annotated[Principal, Depends(require_scope("seal"))]
"""A caller with the ``seal`` scope."""
RevokerDep = Annotated[Principal, Depends(require_scope("revoke"))]
"""A caller with the ``revoke`` scope (revoke, suspend, reinstate)."""
AuditorDep = Annotated[Principal, Depends(require_scope("audit"))]
"""A caller with the ``audit`` scope."""
UserDep = Annotated[Principal, Depends(require_scope("use"))]
"""A using department's system (用证部门), with the ``use`` scope."""
HolderAppDep = Annotated[Principal, Depends(require_scope("holder"))]
"""The holder app, acting for the holders it has authenticated (scope ``holder``)."""


def actor_of(request: Request, principal: Principal) -> Actor:
    """The audit trail's actor for an authenticated request."""
    return Actor(
        name=principal.actor_name,
        department_id=principal.department_id,
        request_id=request_id_var.get(),
    )
