"""``econtract identifier check``: read a licence identifier (证照标识, GB/T 36904) offline."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from econtract.cli._app import EXIT_ERROR, _group, app

identifier_app = _group("Licence identifiers (证照标识, GB/T 36904).")
app.add_typer(identifier_app, name="identifier")


@identifier_app.command("check")
def identifier_check(
    identifier: Annotated[
        str, typer.Argument(help="The identifier, 1.2.156.3005.2.{type}.{issuer}.{serial}.…")
    ],
) -> None:
    """Check an identifier's parts and check character; print its parts, or what is wrong."""
    from econtract.licence_identifier import InvalidIdentifierError, parse

    try:
        parsed = parse(identifier.strip())
    except InvalidIdentifierError as exc:
        sys.stderr.write(f"invalid identifier ({exc.part}): {exc}\n")
        raise typer.Exit(EXIT_ERROR) from None
    typer.echo(f"type code:   {parsed.type_code}")
    typer.echo(f"issuer code: {parsed.issuer_code}")
    typer.echo(f"serial:      {parsed.serial}")
    typer.echo(f"version:     {parsed.version_text}")
    typer.echo(f"check:       {parsed.check} (ISO 7064 MOD 37,36)")
