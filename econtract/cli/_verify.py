"""``econtract verify``: judge sealed PDFs and print the verdict."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from econtract.cli._app import (
    JsonOption,
    app,
    console,
    load_certificate,
    open_services,
    write_atomically,
)
from econtract.errors import EContractError

if TYPE_CHECKING:
    from verify.report import Appendix, Report

#: Exit statuses of ``econtract verify``.
EXIT_VALID, EXIT_NOT_VALID, EXIT_INDETERMINATE = 0, 1, 2


@app.command()
def verify(
    file: Annotated[Path, typer.Argument(help="The PDF to check.", dir_okay=False)],
    trust_root: Annotated[
        list[Path] | None,
        typer.Option(
            help="A trusted root certificate (PEM or DER); repeat for several. Without "
            "it, the local service's root and registry are used."
        ),
    ] = None,
    report_pdf_path: Annotated[
        Path | None, typer.Option("--report-pdf", help="Also write the report as a PDF to file.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Check a sealed PDF offline. Exit 0 when VALID, 1 when not, 2 when INDETERMINATE."""
    from econtract.verification import log_appendix, log_proofs, service_policy
    from verify.limits import verify_pdf_bounded
    from verify.pdf_report import report_pdf
    from verify.policy import VerificationPolicy

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise EContractError(f"Cannot read {file}: {exc.strerror}.") from None
    appendices: tuple[Appendix, ...] = ()
    if trust_root:
        policy = VerificationPolicy(trust_roots=tuple(load_certificate(p) for p in trust_root))
        report = verify_pdf_bounded(data, policy=policy)
    else:
        services = open_services()
        try:
            report = verify_pdf_bounded(data, policy=service_policy(services))
            if report.registry.record_id and report_pdf_path is not None:
                appendices = (log_appendix(log_proofs(services, report.registry.record_id)),)
        finally:
            services.dispose()
    if report_pdf_path is not None:
        write_atomically(report_pdf_path, lambda out: out.write(report_pdf(report, appendices)))
    _print_report(report, as_json)


def _print_report(report: Report, as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        console.print(f"[bold]{report.verdict.value}[/bold]")
        for reason in report.to_json()["reasons"]:
            console.print(f"  - {reason['en']} ({reason['zh']})")
    if report.verdict.value == "VALID":
        return
    raise typer.Exit(
        EXIT_INDETERMINATE if report.verdict.value == "INDETERMINATE" else EXIT_NOT_VALID
    )
