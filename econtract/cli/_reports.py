"""Reports the service issues: ``econtract report monthly``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from econtract.cli._app import CommandUsageError, _group, app, open_services, operator

report_app = _group("Reports of the service (电子监察月度通报).")
app.add_typer(report_app, name="report")


@report_app.command("monthly")
def report_monthly(
    month: Annotated[str, typer.Option(help="The month, YYYY-MM (China time).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the PDF.")],
    department: Annotated[
        str | None,
        typer.Option(help="One department's report (its credit code); the province's without."),
    ] = None,
) -> None:
    """Make the monthly supervision report (月度通报) as a PDF sealed by the platform seal and
    registered, so that it verifies; the output appears only when all went well."""
    from econtract.errors import InvalidInputError, NotFoundError
    from econtract.files import write_atomically
    from econtract.reports import Month, make_monthly_report

    try:
        parsed = Month.parse(month)
    except InvalidInputError as exc:
        raise CommandUsageError(exc.message) from None
    services = open_services()
    try:
        try:
            document = make_monthly_report(
                services, parsed, department_code=department, actor=operator()
            )
        except (InvalidInputError, NotFoundError) as exc:
            raise CommandUsageError(exc.message) from None
        blobs = services.blobs
        write_atomically(output, lambda out: blobs.copy_to(document.blob_key, out))
    finally:
        services.dispose()
    typer.echo(f"{output}: {document.id} ({document.pdf_sha256})")
