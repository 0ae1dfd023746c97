"""The auditor's commands: ``audit fetch`` and ``audit check`` against a service's public log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from econtract.cli._app import EXIT_ERROR, audit_app, console


@audit_app.command("fetch")
def audit_fetch(
    url: Annotated[str, typer.Option(help="The service's public base URL.")],
    store: Annotated[
        Path, typer.Option(help="Where the tree heads and leaf hashes seen are kept.")
    ],
) -> None:
    """Store the log's current signed tree head (and the leaf hashes it covers)."""
    from econtract import auditor

    result = auditor.fetch(url, store)
    console.print(result.summary())
    if not result.ok:
        raise typer.Exit(EXIT_ERROR)


@audit_app.command("check")
def audit_check(
    url: Annotated[str, typer.Option(help="The service's public base URL.")],
    store: Annotated[Path, typer.Option(help="The store written by `econtract audit fetch`.")],
) -> None:
    """Prove the log consistent with every stored head; name any entry rewritten, removed or
    reordered. Exit 0 when the log holds, 1 when it does not."""
    from econtract import auditor

    result = auditor.check(url, store)
    console.print(result.summary())
    for finding in result.findings:
        console.print(f"  {finding.line()}")
    if not result.ok:
        raise typer.Exit(EXIT_ERROR)
