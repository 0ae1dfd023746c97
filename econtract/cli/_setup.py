"""Commands that set up and run the service: ``init``, ``serve``, ``db upgrade``."""

from __future__ import annotations

import os
import shutil
from typing import Annotated, Any

import typer

from econtract.cli._app import JsonOption, app, console, db_app, emit, open_services


@app.command()
def init(
    demo: Annotated[bool, typer.Option(help="Create the demo department and its seals.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Create the schema, the development PKI and a demo department; safe to run again."""
    from econtract.bootstrap import initialise

    services = open_services()
    try:
        report = initialise(services, demo=demo)
    finally:
        services.dispose()
    result = {
        "data_dir": str(services.settings.data_dir),
        "authorities_created": report.authorities_created,
        "department_created": report.department_created,
        "seals_created": report.seals_created,
    }
    emit(as_json, [result], title="initialised", single=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
) -> None:
    """Initialise if needed, then serve the HTTP API."""
    import uvicorn

    from econtract.bootstrap import initialise
    from econtract.serving import can_pass_connections, run_workers
    from signing.fonts import check_font

    check_font()
    services = open_services()
    try:
        initialise(services)
    finally:
        services.dispose()
    if workers > 1:
        # Each worker counts in files here; /metrics in any worker adds them all up.
        metrics_dir = services.settings.data_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "workers": workers,
        "log_config": None,
        "access_log": False,
        "server_header": False,
    }
    if workers > 1 and can_pass_connections():
        # Our supervisor hands each new connection to the least busy worker; uvicorn's lets
        # the workers race for them, and one often takes a whole burst (econtract.serving).
        status = run_workers(uvicorn.Config("api:create_app", **options), workers=workers)
        if status:
            raise typer.Exit(status)
        return
    uvicorn.run("api:create_app", **options)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[
        str, typer.Argument(metavar="REVISION", help="The revision to reach.")
    ] = "head",
) -> None:
    """Apply the registry's migrations."""
    from econtract import db

    services = open_services()
    try:
        db.upgrade(services.engine, revision)
    finally:
        services.dispose()
    console().print(f"database upgraded to {revision}")
