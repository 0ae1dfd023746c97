"""The operator's blob store commands: ``blobs migrate --to database|disk``."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from econtract.cli._app import _group, app, load_settings

blobs_app = _group("The store of sealed PDFs.")
app.add_typer(blobs_app, name="blobs")


@blobs_app.command("migrate")
def migrate_command(
    to: Annotated[
        Literal["database", "disk"],
        typer.Option("--to", help="The store to copy every registered blob into."),
    ],
) -> None:
    """Copy every blob the registry records into the other store (ECONTRACT_BLOB_STORE
    names the one in use), checking each against its registry row; a second run copies
    nothing, an interrupted one resumes. Switch ECONTRACT_BLOB_STORE afterwards.

    Exit 0 with a one-line summary; 1 naming a blob that is missing or changed.
    """
    from econtract.blobs._migrate import migrate_blobs

    typer.echo(migrate_blobs(load_settings(), to).summary())
