"""The auditor's commands: ``audit fetch`` and ``audit check`` against a service's public log."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from econtract.cli._app import audit_app

LogKeyOption = Annotated[
    Path | None,
    typer.Option(
        "--log-key",
        exists=True,
        dir_okay=False,
        help="The log's public key (PEM), obtained out of band: heads are checked with it "
        "instead of the key the log served on the first fetch.",
    ),
]


def _usage_error(exc: Exception) -> typer.BadParameter:
    """An auditor's ``AuditUsageError`` as the usage error of the option at fault."""
    parameter = getattr(exc, "parameter", "")
    return typer.BadParameter(str(exc), param_hint=f"'--{parameter}'")


@audit_app.command("fetch")
def audit_fetch(
    url: Annotated[str, typer.Option(help="The service's public base URL.")],
    store: Annotated[
        Path, typer.Option(help="Where the tree heads and leaf hashes seen are kept.")
    ],
    log_key: LogKeyOption = None,
) -> None:
    """Store the log's current signed tree head (and the leaf hashes it covers).

    Exit 0 when stored, 1 on a finding, 3 when the log could not be read, 64 on a usage error.
    """
    from econtract import auditor

    try:
        key = auditor.load_log_key(log_key.read_bytes()) if log_key is not None else None
        result = auditor.fetch(url, store, log_key=key)
    except auditor.AuditUsageError as exc:
        raise _usage_error(exc) from None
    typer.echo(result.summary())
    raise typer.Exit(result.exit_code)


@audit_app.command("check")
def audit_check(
    url: Annotated[str, typer.Option(help="The service's public base URL.")],
    store: Annotated[
        Path, typer.Option(help="The store written by `econtract audit fetch` (must exist).")
    ],
    log_key: LogKeyOption = None,
) -> None:
    """Prove the log consistent with every stored head; name any entry rewritten, removed or
    reordered, each once, with hashes in base64 as GET /log/sth gives them.

    Exit 0 when the log holds, 1 when it does not, 3 when it could not be read (unreachable,
    or not answering as the log does), 64 on a usage error (a store that does not exist).
    """
    from econtract import auditor

    try:
        key = auditor.load_log_key(log_key.read_bytes()) if log_key is not None else None
        result = auditor.check(url, store, log_key=key)
    except auditor.AuditUsageError as exc:
        raise _usage_error(exc) from None
    typer.echo(result.summary())
    raise typer.Exit(result.exit_code)
