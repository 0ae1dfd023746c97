"""OAuth 2.0 client credentials: access tokens for approval systems, and who a token names."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from typing import ClassVar

from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from econtract.clients import (
    SCOPES,
    check_secret,
    hash_secret,
    needs_rehash,
    parse_scopes,
    pepper_of,
)
from econtract.clock import SYSTEM_CLOCK, Clock
from econtract.config import Settings
from econtract.errors import EContractError, InvalidInputError, PermissionDeniedError
from econtract.models import ApiClient, Department
from econtract.tokens import TokenError, TokenKey

#: Lifetime of an access token.
ACCESS_TOKEN_SECONDS = 15 * 60
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - the RFC 9068 token type

log = logging.getLogger(__name__)


class OAuthError(EContractError):
    """An RFC 6749 token-endpoint error; ``oauth_error`` is its ``error`` code."""

    code = "oauth"
    title = "The client or its access token was refused."

    #: The title of each RFC 6749 and RFC 6750 error code: each is a problem type of its own.
    TITLES: ClassVar[dict[str, str]] = {
        "invalid_token": "The access token is missing or invalid.",
        "invalid_client": "The client's credentials are wrong, or the client is disabled.",
        "invalid_request": "The token request is malformed.",
        "invalid_scope": "The client may not have the scope it asked for.",
        "unsupported_grant_type": "Only the client credentials grant is supported.",
    }

    def __init__(self, oauth_error: str, message: str) -> None:
        super().__init__(message, code=oauth_error.replace("_", "-"))
        self.oauth_error = oauth_error
        self.title = self.TITLES.get(oauth_error, type(self).title)


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The authenticated caller: an API client of one department, with its scopes."""

    client_id: str
    """The client's id (the token's ``sub``)."""
    department_id: int
    """The department's registry id."""
    department_code: str
    """The department's credit code."""
    scopes: frozenset[str]
    """What the client may do."""

    def require(self, scope: str) -> None:
        """Raise ``PermissionDeniedError`` unless the caller holds ``scope``."""
        if scope not in self.scopes:
            raise PermissionDeniedError(f"This action needs the {scope!r} scope.")

    @property
    def actor_name(self) -> str:
        """The audit trail's name for this caller."""
        return f"client:{self.client_id}"


@dataclass(frozen=True)
class AccessToken:
    """A token issued at the token endpoint."""

    token: str
    expires_in: int
    scopes: list[str]


def audience(settings: Settings) -> str:
    """The audience of access tokens: this service's API."""
    return settings.public_base_url.rstrip("/") + "/v1"


def issuer(settings: Settings) -> str:
    """The issuer of access tokens: this service."""
    return settings.public_base_url.rstrip("/")


def issue_access_token(
    session: Session,
    *,
    key: TokenKey,
    settings: Settings,
    client_id: str,
    client_secret: str,
    scope: str | None,
    clock: Clock = SYSTEM_CLOCK,
) -> AccessToken:
    """Check a client's credentials and sign an access token for the scopes it asks."""
    client = session.get(ApiClient, client_id) if client_id else None
    # The secret is checked even for an unknown client so that timing does not tell them apart.
    pepper = pepper_of(settings)
    stored = client.secret_hash if client else _DUMMY_HASH
    valid = check_secret(client_secret, stored, pepper=pepper)
    if client is None or not valid or client.disabled_at is not None:
        raise OAuthError("invalid_client", "Unknown client, wrong secret, or a disabled client.")
    granted = set(client.scopes.split())
    if scope:
        try:
            asked = set(parse_scopes(scope))
        except InvalidInputError:
            raise OAuthError("invalid_scope", f"Scopes are some of {', '.join(SCOPES)}.") from None
        if not asked <= granted:
            raise OAuthError(
                "invalid_scope", "The client may not have: " + ", ".join(sorted(asked - granted))
            )
        granted = asked
    department = session.get(Department, client.department_id)
    assert department is not None
    now = int(clock.now().timestamp())
    scopes = sorted(granted, key=SCOPES.index)
    claims = {
        "iss": issuer(settings),
        "aud": audience(settings),
        "sub": client.id,
        "client_id": client.id,
        "dept": department.code,
        "scope": " ".join(scopes),
        "iat": now,
        "nbf": now,
        "exp": now + ACCESS_TOKEN_SECONDS,
        "jti": secrets.token_urlsafe(12),
    }
    token = key.sign(claims, typ=ACCESS_TOKEN_TYPE)
    if needs_rehash(stored):
        _upgrade_secret_hash(session, client.id, stored, hash_secret(client_secret, pepper=pepper))
    return AccessToken(token, ACCESS_TOKEN_SECONDS, scopes)


def _upgrade_secret_hash(session: Session, client_id: str, old: str, new: str) -> None:
    """Replace a client's pre-pepper hash with a peppered one, now that the secret is known.

    The read transaction is ended first, so that the update starts a transaction of its own
    (on SQLite a read turned write could fail against a concurrent writer); the update names
    the old hash, so a concurrent upgrade or a new secret is never overwritten. A failure
    leaves the old hash, which still verifies, for the next request to upgrade.
    """
    session.rollback()
    try:
        session.execute(
            update(ApiClient)
            .where(ApiClient.id == client_id, ApiClient.secret_hash == old)
            .values(secret_hash=new)
        )
        session.commit()
    except OperationalError:
        session.rollback()
        log.warning("client secret hash upgrade deferred", extra={"client_id": client_id})


def authenticate(session: Session, *, key: TokenKey, settings: Settings, token: str) -> Principal:
    """The principal an access token names; the client must still exist and be enabled."""
    try:
        claims = key.verify(
            token,
            typ=ACCESS_TOKEN_TYPE,
            audience=audience(settings),
            issuer=issuer(settings),
            required=("exp", "iat", "iss", "aud", "sub"),
        )
    except TokenError as exc:
        raise OAuthError("invalid_token", exc.message) from None
    client = session.get(ApiClient, str(claims["sub"]))
    if client is None or client.disabled_at is not None:
        raise OAuthError("invalid_token", "The token's client no longer exists or is disabled.")
    # iat counts whole seconds: a token of the second the client was disabled is refused too.
    if client.tokens_before is not None and int(claims["iat"]) <= int(
        client.tokens_before.timestamp()
    ):
        raise OAuthError(
            "invalid_token", "The token was issued before its client was disabled; ask anew."
        )
    department = session.get(Department, client.department_id)
    assert department is not None
    if claims.get("dept") != department.code:
        raise OAuthError("invalid_token", "The token's department does not match its client.")
    scopes = frozenset(str(claims.get("scope", "")).split()) & frozenset(client.scopes.split())
    return Principal(
        client_id=client.id,
        department_id=department.id,
        department_code=department.code,
        scopes=scopes,
    )


# A hash of the peppered scheme (matching no secret), for constant-time rejection of unknown
# clients.
_DUMMY_HASH = "scrypt-hmac$" + "00" * 16 + "$" + "00" * 32
