"""``econtract webhooks run``: deliver the events owed to subscriptions from this process.

The service delivers them itself (``settings.webhook_poll_seconds``); an operator who runs
the service with that at 0, or who wants one round now, runs this instead. Several runners
and service workers may run together: their claims keep them from doing the same work.
"""

from __future__ import annotations

import time
from typing import Annotated

import typer

from econtract.cli._app import JsonOption, _group, app, emit, open_services

webhooks_app = _group("Signed events to the subscriptions of using departments.")
app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("run")
def webhooks_run(
    once: Annotated[
        bool, typer.Option("--once", help="One round, then exit.", show_default=False)
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Sweep for expired licences, fan new outbox rows out and send the due deliveries."""
    from econtract.webhooks import run_round

    services = open_services()
    try:
        while True:
            report = run_round(services)
            if once:
                break
            time.sleep(services.settings.webhook_poll_seconds or 1.0)
    finally:
        services.dispose()
    emit(
        as_json,
        [
            {
                "expired": report.expired,
                "owed": report.owed,
                "attempted": report.attempted,
                "delivered": report.delivered,
            }
        ],
        title="webhook round",
        single=True,
    )
