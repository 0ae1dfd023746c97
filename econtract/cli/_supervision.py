"""Supervision's upkeep: ``econtract supervision rollup``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from econtract.cli._app import CommandUsageError, _group, app, open_services

supervision_app = _group("Supervision (电子监察): the overview's daily roll-ups.")
app.add_typer(supervision_app, name="supervision")


@supervision_app.command("rollup")
def supervision_rollup(
    since: Annotated[
        str | None,
        typer.Option(
            help="Roll up (again) every day from this one, YYYY-MM-DD (China time); "
            "without it, the days after the last one rolled up."
        ),
    ] = None,
) -> None:
    """Roll up the overview's figures per day for the days that are over (an hour after
    midnight, China time), as the worker does: to back-fill a registry, or to count again
    days whose records came late (a process's clock behind)."""
    from econtract.supervision import last_complete_day, roll_up

    first: date | None = None
    if since is not None:
        try:
            first = date.fromisoformat(since)
        except ValueError:
            raise CommandUsageError(f"--since {since!r} is not a date YYYY-MM-DD.") from None
    services = open_services()
    try:
        last = last_complete_day(services.clock)
        if first is not None and first > last:
            raise CommandUsageError(
                f"--since {first} is not over yet: the last day to roll up is {last}."
            )
        days = roll_up(services, since=first)
    finally:
        services.dispose()
    typer.echo(f"{days} day(s) rolled up, up to {last}.")
