"""The operator's console accounts: ``econtract users add|list|disable``."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from econtract.cli._app import CommandUsageError, JsonOption, _group, app, emit, operator, use_case

if TYPE_CHECKING:
    from econtract.console import ConsoleUser

users_app = _group("People who sign in to the console (电子监察).")
app.add_typer(users_app, name="users")


class RoleChoice(StrEnum):
    """The roles of a console account (Typer shows the choices)."""

    SUPERVISOR = "supervisor"
    DEPARTMENT_ADMIN = "department-admin"


def user_row(user: ConsoleUser, department_code: str | None) -> dict[str, Any]:
    """An account as listings show it (never its hash or secret)."""
    return {
        "name": user.name,
        "role": user.role,
        "department": department_code,
        "totp": user.totp_secret is not None,
        "locked_until": user.locked_until.isoformat() if user.locked_until else None,
        "disabled_at": user.disabled_at.isoformat() if user.disabled_at else None,
        "created_at": user.created_at.isoformat(),
    }


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; its line ending is not part of the password.
        return sys.stdin.readline().rstrip("\r\n")
    # Asked on stderr, so that stdout holds the account alone (``--json`` stays parseable).
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True, err=True))


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Option(help="The account's name (how the person signs in).")],
    role: Annotated[RoleChoice, typer.Option(help="supervisor or department-admin.")],
    department: Annotated[
        str | None, typer.Option(help="A department admin's department (its credit code).")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option("--password-stdin", help="Read the password from the first line of stdin."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Add a console account. A supervisor's one-time-code secret is printed once."""
    from econtract.console import ConsoleRole, add_user
    from econtract.errors import ConflictError, InvalidInputError, NotFoundError

    password = _read_password(password_stdin)
    with use_case() as (services, session):
        try:
            account = add_user(
                session,
                name=name,
                role=ConsoleRole(role.value),
                department_code=department,
                password=password,
                settings=services.settings,
                actor=operator(),
            )
        except (InvalidInputError, NotFoundError, ConflictError) as exc:
            raise CommandUsageError(exc.message) from None
        row = user_row(account.user, account.department_code)
    if account.totp is not None:
        # Shown this once: the registry keeps the secret encrypted and never prints it again.
        row["totp_secret"] = account.totp.secret
        row["totp_uri"] = account.totp.uri
    emit(as_json, [row], title="console account added", single=True)


@users_app.command("list")
def users_list(as_json: JsonOption = False) -> None:
    """List console accounts."""
    from econtract.console import list_users

    with use_case() as (_, session):
        rows = [user_row(user, code) for user, code in list_users(session)]
    emit(as_json, rows, title="console accounts")


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The account's name.")],
    as_json: JsonOption = False,
) -> None:
    """Disable a console account and end its sessions."""
    from econtract.console import disable_user
    from econtract.errors import NotFoundError

    with use_case() as (services, session):
        try:
            user = disable_user(session, name=name, actor=operator(), now=services.clock.now())
        except NotFoundError as exc:
            raise CommandUsageError(exc.message) from None
        code = None
        if user.department_id is not None:
            from econtract.models import Department

            department = session.get(Department, user.department_id)
            code = department.code if department else None
        row = user_row(user, code)
    emit(as_json, [row], title="console account disabled", single=True)
