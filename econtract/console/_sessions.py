"""Console sessions: the cookie's token, what the registry keeps of it, and the forms' CSRF
tokens.

A session is a random 256-bit token in the cookie; the registry keeps its SHA-256 as the
session's id, so the token is never stored. A session ends at the first of: its lifetime
after sign-in, an idle time without requests, sign-out, its person's disablement. Every
sign-in makes a new session, so a token someone planted in a browser before the sign-in is
never the one that is signed in (session fixation).

Every form of a session carries the session's own CSRF token. The sign-in form has no session
yet: its token is a random value in a cookie of its own and, in the form, that value's HMAC
under the server secret (a signed double-submit cookie), so a page elsewhere can neither read
nor make a matching pair.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from econtract.console._models import ConsoleSession, ConsoleUser
from econtract.models import Department

#: Bytes of randomness in a session token (256 bits).
TOKEN_BYTES = 32
#: A session's last-seen time is written at most this often (a page view is a read).
_TOUCH_SECONDS = 60


@dataclass(frozen=True, kw_only=True)
class SessionPolicy:
    """How long a session lives."""

    lifetime: timedelta
    """From sign-in to the end, however busy the session is."""
    idle: timedelta
    """Without a request for this long, the session ends."""


@dataclass(frozen=True, kw_only=True)
class SignedInUser:
    """The person a live session names, as the console's pages need them."""

    user_id: int
    """The account's registry id."""
    name: str
    """The account's name."""
    role: str
    """``supervisor`` or ``department-admin``."""
    department_id: int | None
    """The department of a department admin."""
    department_code: str | None
    """That department's credit code."""
    department_name: str | None
    """That department's name."""
    session_id: str
    """The session's id (the token's SHA-256)."""
    csrf_token: str
    """The token every form of the session carries."""


def session_id_of(token: str) -> str:
    """The registry's id of the session whose cookie carries ``token``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    session: Session, *, user: ConsoleUser, policy: SessionPolicy, now: datetime
) -> tuple[str, ConsoleSession]:
    """A new session of ``user``: the cookie's token and the registry's row."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = ConsoleSession(
        id=session_id_of(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(TOKEN_BYTES),
        created_at=now,
        last_seen_at=now,
        expires_at=now + policy.lifetime,
    )
    session.add(row)
    return token, row


def live_session(
    session: Session, *, token: str, policy: SessionPolicy, now: datetime
) -> SignedInUser | None:
    """The person signed in by ``token``, or ``None`` when it names no live session.

    The session's last-seen time moves on (at most once a minute), in the caller's
    transaction.
    """
    if not token or len(token) > 100:
        return None
    row = session.get(ConsoleSession, session_id_of(token))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        return None
    if row.last_seen_at + policy.idle <= now:
        return None
    user = session.get(ConsoleUser, row.user_id)
    if user is None or user.disabled_at is not None:
        return None
    if (now - row.last_seen_at).total_seconds() >= _TOUCH_SECONDS:
        row.last_seen_at = now
    department = session.get(Department, user.department_id) if user.department_id else None
    return SignedInUser(
        user_id=user.id,
        name=user.name,
        role=user.role,
        department_id=user.department_id,
        department_code=department.code if department else None,
        department_name=department.name if department else None,
        session_id=row.id,
        csrf_token=row.csrf_token,
    )


def revoke_session(session: Session, *, session_id: str, now: datetime) -> bool:
    """End one session; whether it was live."""
    result = session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def revoke_sessions_of(session: Session, *, user_id: int, now: datetime) -> None:
    """End every session of one person (disablement)."""
    ids = session.scalars(
        select(ConsoleSession.id).where(
            ConsoleSession.user_id == user_id, ConsoleSession.revoked_at.is_(None)
        )
    ).all()
    for session_id in ids:
        revoke_session(session, session_id=session_id, now=now)


def tokens_match(given: str | None, expected: str) -> bool:
    """Whether a form's CSRF token is the session's (constant time)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def new_sign_in_nonce() -> str:
    """The random value of the sign-in form's cookie."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def sign_in_form_token(nonce: str, *, server_secret: bytes) -> str:
    """The sign-in form's hidden token for the cookie's ``nonce``."""
    mac = hmac.new(server_secret, b"console sign-in\x00" + nonce.encode(), hashlib.sha256)
    return mac.hexdigest()


def sign_in_token_matches(nonce: str | None, given: str | None, *, server_secret: bytes) -> bool:
    """Whether the sign-in form's token belongs to its cookie (constant time)."""
    if not nonce or not given or len(nonce) > 100:
        return False
    return tokens_match(given, sign_in_form_token(nonce, server_secret=server_secret))
