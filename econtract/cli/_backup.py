"""The operator's backup commands: ``backup --to DIR`` and ``restore --from DIR``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from econtract.cli._app import app, load_settings


@app.command("backup")
def backup_command(
    to: Annotated[
        Path,
        typer.Option(
            "--to", file_okay=False, help="An empty (or new) directory to write the snapshot to."
        ),
    ],
) -> None:
    """Take a consistent snapshot of the registry, the blobs and the key files while the
    service runs, with a manifest of every file's SHA-256 and the log's latest tree head.

    Exit 0 with a one-line summary; 1 with a one-line error.
    """
    from econtract.backup import backup

    typer.echo(backup(load_settings(), to).summary())


@app.command("restore")
def restore_command(
    source: Annotated[
        Path,
        typer.Option(
            "--from", exists=True, file_okay=False, help="A directory written by `backup`."
        ),
    ],
) -> None:
    """Restore a snapshot into an empty data directory and database, after checking every
    file against the manifest; then check the restored log against the manifest's tree head.

    Exit 0 with a one-line summary; 1 with a one-line error naming what was refused.
    """
    from econtract.backup import restore

    typer.echo(restore(load_settings(), source).summary())
