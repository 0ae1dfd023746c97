"""The command line's shared parts: the Typer apps, exit statuses and the helpers every command
uses.

Commands import what they need inside their bodies: ``econtract --help`` and a usage error must
answer before SQLAlchemy, pyHanko or the services are ever loaded. Only what Typer reads to
build the command tree (option types, enums of choices) is imported at module level, and it
is kept cheap.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from econtract.errors import EContractError

if TYPE_CHECKING:
    from cryptography import x509
    from rich.console import Console
    from rich.table import Table
    from sqlalchemy.orm import Session

    from econtract import audit
    from econtract.config import Settings
    from econtract.services import Services

#: Exit status of a usage error (BSD sysexits EX_USAGE), kept apart from verdict codes.
EXIT_USAGE = 64
EXIT_ERROR = 1


def _group(help_text: str, **extra: Any) -> typer.Typer:
    # Plain help, as click and argparse print it: a flag shows no value placeholder, and
    # help never loads Rich's formatting machinery.
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None, **extra)


app = _group(
    "eContract: electronic certificates and e-seals.",
    pretty_exceptions_enable=False,
    add_completion=False,
)
departments_app = _group("Issuing departments.")
seals_app = _group("The e-seals of a department or an enterprise.")
clients_app = _group("API clients of approval systems and of enterprises' systems.")
db_app = _group("The registry database.")
app.add_typer(departments_app, name="departments")
app.add_typer(seals_app, name="seals")
app.add_typer(clients_app, name="clients")
app.add_typer(db_app, name="db")
batch_app = _group("Batch runs.")
audit_app = _group("The auditor's tool: watch the transparency log.")
app.add_typer(audit_app, name="audit")
app.add_typer(batch_app, name="batch")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        sys.stdout.write(f"econtract {version('econtract')}\n")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            is_eager=True,
            callback=_print_version,
            help="Print the installed version and exit.",
        ),
    ] = False,
) -> None:
    """eContract: electronic certificates and e-seals."""


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@cache
def console() -> Console:
    """The console on stdout, made on first use: Rich loads only when something is printed."""
    from rich.console import Console

    return Console()


@cache
def err_console() -> Console:
    """The console on stderr (progress bars), made on first use."""
    from rich.console import Console

    return Console(stderr=True)


class CommandUsageError(EContractError):
    """The command was called in a way it cannot work: a missing file, options that do not go
    together. Printed as one line, exit status 64 (like Typer's own usage errors)."""

    code = "usage"
    title = "The command cannot be used this way."


def load_settings() -> Settings:
    """The settings, with a configuration problem turned into a one-line error."""
    from pydantic import ValidationError

    from econtract.config import ConfigurationError, get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        ctx_error = first.get("ctx", {}).get("error")
        if isinstance(ctx_error, ConfigurationError):
            raise EContractError(str(ctx_error), code="configuration") from None
        where = "ECONTRACT_" + "_".join(str(p) for p in first["loc"]).upper()
        raise EContractError(f"{where}: {first['msg']}", code="configuration") from None


def open_services() -> Services:
    """Services for this command, with the database checked first."""
    from econtract import db
    from econtract.services import Services

    services = Services(settings=load_settings())
    db.check_database(services.engine)
    return services


@contextmanager
def use_case() -> Iterator[tuple[Services, Session]]:
    """One command's unit of work: services and a session in a transaction."""
    from econtract import db

    services = open_services()
    try:
        with db.transaction(services.sessions) as session:
            yield services, session
    finally:
        services.dispose()


def emit(
    as_json: bool, rows: Sequence[dict[str, Any]], *, title: str, single: bool = False
) -> None:
    """Print rows as JSON (a list, or one object when ``single``) or as a table."""
    if as_json:
        payload: Any = rows[0] if single else list(rows)
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    from rich.table import Table

    table = Table(title=title)
    for column in rows[0].keys() if rows else ():
        if column in UNBROKEN_COLUMNS:
            longest = max((len(str(row.get(column) or "")) for row in rows), default=0)
            add_unbroken_column(table, column, longest)
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    # Never crop: a table wider than the terminal is better wrapped than missing a value.
    console().print(table, crop=False)


#: Columns whose values a person copies into the next command.
UNBROKEN_COLUMNS = frozenset(
    {
        "id",
        "client_id",
        "code",
        "department",
        "seal",
        "replaces",
        "number",
        "sha256",
        "signed_digest",
    }
)


def add_unbroken_column(table: Table, header: str, longest: int) -> None:
    """A column whose values are never cut: as wide as its longest value while the terminal
    allows, folded onto the next line (every character kept) only when it does not."""
    table.add_column(header, overflow="fold", min_width=longest)


def operator() -> audit.Actor:
    """The operator at the command line."""
    from econtract import audit

    return audit.Actor.operator()


def read_json_file(path: Path) -> Any:
    """A JSON document from a file, with a one-line error when it is not."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EContractError(f"Cannot read {path}: {exc.strerror}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EContractError(f"{path} is not JSON: {exc}.") from None


def load_certificate(path: Path) -> x509.Certificate:
    """A certificate from a PEM or DER file, with a one-line error otherwise."""
    from cryptography import x509

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EContractError(f"Cannot read {path}: {exc.strerror}.") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        raise EContractError(f"{path} is not an X.509 certificate.") from None
