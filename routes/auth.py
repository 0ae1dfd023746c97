"""Authentication: the OAuth 2.0 token endpoint and the key that signs tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel

from econtract.auth import OAuthError, issue_access_token
from routes.deps import ServicesDep
from routes.ratelimit import client_address, limiter_of

router = APIRouter(tags=["authentication"])


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


@router.post(
    "/v1/token",
    response_model=TokenResponse,
    dependencies=[Depends(require_form)],
    responses={429: {}},
)
def token(
    request: Request,
    services: ServicesDep,
    grant_type: Annotated[str, Form(examples=["client_credentials"])],
    client_id: Annotated[str | None, Form()] = None,
    client_secret: Annotated[str | None, Form()] = None,
    scope: Annotated[str | None, Form(examples=["issue read"])] = None,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)] = None,
) -> JSONResponse:
    """OAuth 2.0 client credentials grant: a 15-minute ES256 JWT naming client, department
    and scopes. Credentials in the form or as HTTP Basic.

    Wrong credentials are counted per client id and per address; once either has used up
    ``ECONTRACT_RATE_TOKEN_FAILURES``, its requests are refused (429, ``Retry-After``) before
    any secret is checked, until the window moves on."""
    if grant_type != "client_credentials":
        raise OAuthError(
            "unsupported_grant_type", "Only the client_credentials grant is supported."
        )
    if credentials is not None:
        client_id, client_secret = credentials.username, credentials.password
    if not client_id or not client_secret:
        raise OAuthError("invalid_request", "client_id and client_secret are required.")
    # Refused before the secret's hash is computed: each check costs tens of milliseconds.
    limiter = limiter_of(request)
    keys = (f"client:{client_id}", client_address(request))
    limiter.check("token-failures", *keys)
    try:
        with services.sessions() as session:
            issued = issue_access_token(
                session,
                key=services.pki.token_signer,
                settings=services.settings,
                client_id=client_id,
                client_secret=client_secret,
                scope=scope,
                clock=services.clock,
            )
    except OAuthError as exc:
        if exc.oauth_error == "invalid_client":
            limiter.count("token-failures", *keys)
        raise
    body = TokenResponse(
        access_token=issued.token, expires_in=issued.expires_in, scope=" ".join(issued.scopes)
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


@router.get("/.well-known/jwks.json")
def jwks(services: ServicesDep) -> dict[str, list[dict[str, str]]]:
    """The public keys (RFC 7517): the one that signs access tokens and QR tokens, then the
    one that signs webhook events."""
    return {"keys": [services.pki.token_signer.jwk(), services.pki.event_signer.jwk()]}
