"""``econtract worker``: issue batch rows taken from the broker's queue.

Start as many as the machines and their cores allow, each with the same
``ECONTRACT_BROKER_URL``, registry and key material as the service; a worker that dies hands
its unfinished rows back to the others (see :mod:`econtract.batches`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from econtract.cli._app import app, open_services


@app.command()
def worker(
    threads: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Rows issued at once (default: ECONTRACT_BATCH_THREADS)."),
    ] = None,
) -> None:
    """Issue batch rows from the broker (ECONTRACT_BROKER_URL) until stopped (SIGTERM)."""
    from econtract.batches import run_worker

    services = open_services()
    try:
        run_worker(services, threads=threads or services.settings.batch_threads)
    finally:
        services.dispose()
