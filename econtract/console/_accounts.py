"""The console's accounts: the operator adds, lists and disables them; a person signs in and
out.

A sign-in is checked in two steps, so that argon2 (tens of milliseconds of CPU and memory, on
purpose) never runs while the registry's write lock is held:

1. read the account (outside any write transaction), check the password and the one-time
   code against what was read;
2. in one transaction: read the account again, refuse a disabled or locked one, count a
   failure (locking the account at the limit) or open a new session and remember the code's
   step (so it is good once), and write the audit event; then commit.

The answer to a refused sign-in is the same whatever was wrong (no such name, the password,
the code, a locked or disabled account); the audit trail says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from econtract import audit, db
from econtract.bodies import BodyKind
from econtract.config import Settings
from econtract.console._models import ConsoleRole, ConsoleUser
from econtract.console._passwords import check_password_rule, hash_password, password_matches
from econtract.console._sessions import (
    SessionPolicy,
    open_session,
    revoke_session,
    session_id_of,
)
from econtract.console._sessions import revoke_sessions_of as _revoke_sessions_of
from econtract.console._totp import (
    accepted_step,
    new_secret,
    open_secret,
    provisioning_uri,
    seal_secret,
    secret_text,
)
from econtract.errors import ConflictError, EContractError, InvalidInputError, NotFoundError
from econtract.models import Department
from econtract.services import Services

#: The longest account name.
MAX_NAME_LENGTH = 64
#: The issuer an authenticator app shows beside the account.
TOTP_ISSUER = "eContract"


class SignInRefusedError(EContractError):
    """A sign-in was refused; the message never says why (the audit trail does)."""

    code = "sign-in-refused"
    title = "The sign-in was refused."

    def __init__(self) -> None:
        super().__init__(
            "The name, the password or the one-time code is wrong, or the account is "
            "locked for a while."
        )


class ConsoleUserExistsError(ConflictError):
    """An account of that name exists already."""

    code = "console-user-exists"
    title = "A console account of that name exists."


@dataclass(frozen=True, kw_only=True)
class SignInPolicy:
    """When an account locks, and how long its sessions live."""

    max_failures: int
    """Failed sign-ins in a row that lock the account."""
    lock: timedelta
    """How long a locked account refuses every sign-in."""
    session: SessionPolicy
    """The sessions' lifetime and idle time."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SignInPolicy:
        """The policy of ``ECONTRACT_CONSOLE_*``."""
        return cls(
            max_failures=settings.console_max_failures,
            lock=timedelta(minutes=settings.console_lock_minutes),
            session=SessionPolicy(
                lifetime=timedelta(hours=settings.console_session_hours),
                idle=timedelta(minutes=settings.console_idle_minutes),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class TOTPEnrolment:
    """A new account's one-time-code secret, shown once, when the account is made."""

    secret: str
    """Base32, as a person types it into an authenticator app."""
    uri: str
    """The ``otpauth://`` URI (for a QR code)."""


@dataclass(frozen=True, kw_only=True)
class NewAccount:
    """An account just made."""

    user: ConsoleUser
    """The account."""
    department_code: str | None
    """Its department's code (a department admin's)."""
    totp: TOTPEnrolment | None
    """The second factor's secret, for a supervisor."""


@dataclass(frozen=True, kw_only=True)
class SignIn:
    """What a person gives to sign in."""

    name: str
    """The account's name."""
    password: str
    """The password (never stored, logged or audited)."""
    code: str = ""
    """The one-time code (a supervisor's)."""
    address: str = ""
    """Where the attempt came from, for the audit trail."""
    request_id: str | None = None
    """The HTTP request, for the audit trail."""
    previous_token: str | None = None
    """The session token the browser held before, if any: its session ends at sign-in."""


@dataclass(frozen=True, kw_only=True)
class SignedIn:
    """A successful sign-in: the new session's cookie token."""

    token: str
    """The session's token, for the cookie only."""
    user_id: int
    """The account's id."""


def _server_secret(settings: Settings) -> bytes:
    return settings.secret_key.get_secret_value().encode("utf-8")


def add_user(
    session: Session,
    *,
    name: str,
    role: ConsoleRole,
    department_code: str | None,
    password: str,
    settings: Settings,
    actor: audit.Actor,
) -> NewAccount:
    """Add a console account; a supervisor's comes with a one-time-code secret."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidInputError(
            f"A name is 1 to {MAX_NAME_LENGTH} printable characters.",
            errors=[("/name", "1 to 64 printable characters")],
        )
    department = None
    if role is ConsoleRole.DEPARTMENT_ADMIN:
        if not department_code:
            raise InvalidInputError(
                "A department admin needs --department (the department's code).",
                errors=[("/department", "required for a department admin")],
            )
        department = session.scalar(
            select(Department).where(Department.code == department_code.strip().upper())
        )
        if department is None or department.kind != BodyKind.DEPARTMENT.value:
            raise NotFoundError(f"No department with code {department_code!r}.")
    elif department_code:
        raise InvalidInputError(
            "A supervisor sees every department and takes no --department.",
            errors=[("/department", "not for a supervisor")],
        )
    check_password_rule(password)
    if session.scalar(select(ConsoleUser.id).where(ConsoleUser.name == name)) is not None:
        raise ConsoleUserExistsError(f"A console account named {name!r} exists already.")
    enrolment = None
    sealed = None
    if role is ConsoleRole.SUPERVISOR:
        secret = new_secret()
        sealed = seal_secret(secret, server_secret=_server_secret(settings), user_name=name)
        enrolment = TOTPEnrolment(
            secret=secret_text(secret),
            uri=provisioning_uri(secret, account=name, issuer=TOTP_ISSUER),
        )
    user = ConsoleUser(
        name=name,
        role=role.value,
        department_id=department.id if department else None,
        password_hash=hash_password(password),
        totp_secret=sealed,
    )
    session.add(user)
    session.flush()
    _audit(session, actor, "console-user.add", user, detail={"role": role.value})
    return NewAccount(
        user=user, department_code=department.code if department else None, totp=enrolment
    )


def list_users(session: Session) -> list[tuple[ConsoleUser, str | None]]:
    """Every account with its department's code, by name."""
    rows = session.execute(
        select(ConsoleUser, Department.code)
        .outerjoin(Department, Department.id == ConsoleUser.department_id)
        .order_by(ConsoleUser.name)
    )
    return [(user, code) for user, code in rows.tuples()]


def disable_user(session: Session, *, name: str, actor: audit.Actor, now: datetime) -> ConsoleUser:
    """Disable an account and end its sessions."""
    user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == name.strip()))
    if user is None:
        raise NotFoundError(f"No console account named {name!r}.")
    if user.disabled_at is None:
        user.disabled_at = now
        _revoke_sessions_of(session, user_id=user.id, now=now)
        _audit(session, actor, "console-user.disable", user)
    return user


@dataclass(frozen=True)
class _Checked:
    user_id: int | None
    password_hash: str | None
    password_ok: bool
    code_step: int | None
    needs_code: bool


def sign_in(services: Services, *, attempt: SignIn, policy: SignInPolicy) -> SignedIn:
    """Check ``attempt`` and open a new session; :class:`SignInRefusedError` otherwise (see
    the module for the steps)."""
    checked = _check(services, attempt)
    now = services.clock.now()
    actor = audit.Actor(
        name=f"console:{attempt.name.strip()[:MAX_NAME_LENGTH]}", request_id=attempt.request_id
    )
    detail: dict[str, Any] = {"address": attempt.address}
    signed_in = None
    with db.transaction(services.sessions) as session:
        user = session.get(ConsoleUser, checked.user_id) if checked.user_id else None
        reason = _refusal(user, checked, now)
        if user is None:
            audit.record(
                session,
                actor=actor,
                action="console.sign-in",
                target_type="console-user",
                outcome="refused",
                detail={**detail, "reason": reason},
            )
        elif reason is not None:
            _audit(session, actor, "console.sign-in", user, "refused", {**detail, "reason": reason})
            if reason in ("password", "code"):
                user.failed_sign_ins += 1
                if user.failed_sign_ins >= policy.max_failures:
                    user.locked_until = now + policy.lock
                    user.failed_sign_ins = 0
                    _audit(
                        session,
                        actor,
                        "console.lockout",
                        user,
                        detail={**detail, "until": user.locked_until.isoformat()},
                    )
        else:
            user.failed_sign_ins = 0
            user.locked_until = None
            if checked.code_step is not None:
                user.totp_last_step = checked.code_step
            if attempt.previous_token:
                # Whatever session the browser held ends; the new one never reuses its token.
                revoke_session(session, session_id=session_id_of(attempt.previous_token), now=now)
            token, _row = open_session(session, user=user, policy=policy.session, now=now)
            _audit(session, actor, "console.sign-in", user, detail=detail)
            signed_in = SignedIn(token=token, user_id=user.id)
    if signed_in is None:
        raise SignInRefusedError()
    return signed_in


def _check(services: Services, attempt: SignIn) -> _Checked:
    """Step 1: the password and the code, checked against the account as read."""
    with services.sessions() as session:
        user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == attempt.name.strip()))
    # An unknown name is checked against a dummy hash: it takes as long as a known one.
    password_ok = password_matches(attempt.password, user.password_hash if user else None)
    step = None
    if user is not None and user.totp_secret is not None and password_ok:
        secret = open_secret(
            user.totp_secret, server_secret=_server_secret(services.settings), user_name=user.name
        )
        step = accepted_step(
            secret, attempt.code, at=services.clock.now(), last_step=user.totp_last_step
        )
    return _Checked(
        user_id=user.id if user else None,
        password_hash=user.password_hash if user else None,
        password_ok=password_ok,
        code_step=step,
        needs_code=user is not None and user.totp_secret is not None,
    )


def _refusal(user: ConsoleUser | None, checked: _Checked, now: datetime) -> str | None:
    """Why the sign-in is refused (for the audit trail), or ``None``."""
    if user is None:
        return "unknown-name"
    if user.disabled_at is not None:
        return "disabled"
    if user.locked_until is not None and user.locked_until > now:
        return "locked"
    # The account changed between the two steps (a new password): the check is void.
    if not checked.password_ok or user.password_hash != checked.password_hash:
        return "password"
    if checked.needs_code and (
        checked.code_step is None
        or (user.totp_last_step is not None and checked.code_step <= user.totp_last_step)
    ):
        return "code"
    return None


def sign_out(
    services: Services, *, session_id: str, user_name: str, request_id: str | None
) -> None:
    """End a session, in the audit trail too."""
    now = services.clock.now()
    with db.transaction(services.sessions) as session:
        if revoke_session(session, session_id=session_id, now=now):
            user = session.scalar(select(ConsoleUser).where(ConsoleUser.name == user_name))
            if user is not None:
                actor = audit.Actor(name=f"console:{user_name}", request_id=request_id)
                _audit(session, actor, "console.sign-out", user)


def _audit(
    session: Session,
    actor: audit.Actor,
    action: str,
    user: ConsoleUser,
    outcome: str = "success",
    detail: dict[str, Any] | None = None,
) -> None:
    # Accounts and sign-ins administer who may act, like API clients: audited, not logged
    # in the transparency log and not told to subscribers.
    audit.record(
        session,
        actor=actor,
        action=action,
        department_id=user.department_id,
        target_type="console-user",
        target_id=user.name,
        outcome=outcome,
        detail=detail,
    )
