"""Commands that make and change documents: ``seal``, ``issue``, status changes and batches."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from econtract.cli._app import (
    EXIT_ERROR,
    CommandUsageError,
    JsonOption,
    app,
    batch_app,
    emit,
    err_console,
    open_services,
    operator,
    read_json_file,
)
from econtract.errors import EContractError
from econtract.files import write_atomically
from signing.options import Certification, SealLevel

if TYPE_CHECKING:
    from econtract.models import Certificate

#: The status changes of a certificate, as :data:`econtract.certificates.TRANSITIONS` names
#: them; spelt here so that help never loads the models.
STATUS_ACTIONS = ("revoke", "suspend", "reinstate")


@app.command()
def seal(
    source: Annotated[
        Path, typer.Argument(metavar="IN.pdf", help="The PDF to seal.", dir_okay=False)
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the sealed PDF.")],
    seal_id: Annotated[str, typer.Option("--seal", help="The seal's id (econtract seals list).")],
    level: Annotated[SealLevel, typer.Option(help="PAdES level.")] = SealLevel.B_LT,
    visible: Annotated[
        str | None,
        typer.Option(help="PAGE:X,Y of the seal's centre, in points; invisible if unset."),
    ] = None,
    cross_page: Annotated[
        bool, typer.Option("--cross-page", help="Add a cross-page seal along the right edge.")
    ] = False,
    certify: Annotated[
        Certification, typer.Option(help="approval, or certify with no-changes / form-filling.")
    ] = Certification.APPROVAL,
    field: Annotated[str | None, typer.Option(help="Signature field to create or fill.")] = None,
    reserve: Annotated[
        list[str] | None,
        typer.Option(
            help="Empty field for a later department, with --certify form-filling: "
            "NAME[@PAGE:X,Y][=HOLDER], HOLDER the department's credit code or a seal id "
            "that alone may fill it (repeat)."
        ),
    ] = None,
    dual: Annotated[
        bool,
        typer.Option(
            "--dual",
            help="Dual seal: the department's ECDSA (or RSA) seal of the same kind certifies "
            "(form-filling) and the SM2 seal approves after it, so both stay valid.",
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Seal a PDF with a seal and register it; the output appears only when all went well."""
    from econtract import audit
    from econtract.sealing import seal_document
    from signing.options import SealOptions

    options = SealOptions.from_text(
        level=level,
        certification=certify,
        visible=visible,
        cross_page=cross_page,
        field_name=field,
        reserve=reserve or (),
    )
    services = open_services()
    try:
        try:
            source_file = source.open("rb")
        except OSError as exc:
            raise EContractError(f"Cannot read {source}: {exc.strerror}.") from None
        with source_file:
            sealed = seal_document(
                services,
                source=source_file,
                seal_id=seal_id,
                options=options,
                actor=audit.Actor.operator(),
                file_name=source.name,
                dual=dual,
            )
        blobs = services.blobs
        write_atomically(output, lambda out: blobs.copy_to(sealed.document.blob_key, out))
    finally:
        services.dispose()
    row = {
        "id": sealed.document.id,
        "seal": sealed.document.seal_id,
        "level": sealed.document.level,
        "field": sealed.result.field_name,
        "sha256": sealed.document.pdf_sha256,
        "signed_digest": sealed.document.signed_digest,
        "dual_seal": sealed.dual_seal_id,
        "ses_signature": sealed.ses_signature is not None,
        "output": str(output),
    }
    emit(as_json, [row], title="sealed", single=True)


def certificate_row(c: Certificate, *, today: date) -> dict[str, Any]:
    """A certificate as printed on ``today`` (the services' clock's date)."""
    from econtract.issuance import effective_status

    return {
        "id": c.id,
        "type": c.type_code,
        "number": c.number,
        "holder": c.holder_name,
        "status": effective_status(c, today),
        "valid_from": c.valid_from.isoformat(),
        "valid_until": c.valid_until.isoformat() if c.valid_until else None,
        "sha256": c.pdf_sha256,
    }


@app.command()
def issue(
    type_code: Annotated[
        str, typer.Option("--type", help="Certificate type, e.g. business_licence.")
    ],
    data: Annotated[Path, typer.Option(help="The licence's fields, a JSON object.")],
    department: Annotated[str, typer.Option(help="The issuing department's code.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the sealed PDF.")],
    as_json: JsonOption = False,
) -> None:
    """Issue a sealed licence without HTTP."""
    from econtract.issuance import IssueRequest, issue_certificate

    fields = read_json_file(data)
    if not isinstance(fields, dict):
        raise EContractError(f"{data} must hold a JSON object of fields.")
    services = open_services()
    try:
        issued = issue_certificate(
            services,
            department_code=department,
            request=IssueRequest(type_code=type_code, fields=fields),
            actor=operator(),
        )
        blobs = services.blobs
        write_atomically(output, lambda out: blobs.copy_to(issued.certificate.blob_key, out))
    finally:
        services.dispose()
    today = services.clock.today()
    emit(
        as_json,
        [certificate_row(issued.certificate, today=today) | {"output": str(output)}],
        title="issued",
        single=True,
    )


def _status_command(action: str) -> None:
    @app.command(name=action, help=f"{action.capitalize()} a certificate.")
    def command(
        certificate: Annotated[
            str, typer.Argument(metavar="CERTIFICATE", help="The certificate's id.")
        ],
        reason: Annotated[str, typer.Option(help="Why, recorded in the status history.")],
        as_json: JsonOption = False,
    ) -> None:
        from econtract.certificates import change_status

        services = open_services()
        try:
            changed = change_status(
                services, certificate_id=certificate, action=action, reason=reason, actor=operator()
            )
        finally:
            services.dispose()
        today = services.clock.today()
        emit(as_json, [certificate_row(changed, today=today)], title=action, single=True)


for _action in STATUS_ACTIONS:
    _status_command(_action)


@app.command()
def supersede(
    certificate: Annotated[
        str, typer.Argument(metavar="CERTIFICATE", help="The id of the certificate to replace.")
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE.json",
            help="Fields to change, a JSON object: a field named replaces the old value, "
            "null removes it, the others are kept.",
        ),
    ] = None,
    valid_from: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="Start of the new validity.")
    ] = None,
    valid_until: Annotated[
        str | None, typer.Option(metavar="YYYY-MM-DD", help="End of the new validity.")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", metavar="OUT.pdf", help="Where to write the new PDF."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Renew or amend a licence: a new certificate with its own number replaces it, and the
    old one shows SUPERSEDED."""
    from econtract import certificates
    from econtract.models import Department

    changes = read_json_file(data) if data is not None else None
    if changes is not None and not isinstance(changes, dict):
        raise EContractError(f"{data} must hold a JSON object of fields.")
    starts = _date_option("--valid-from", valid_from)
    ends = _date_option("--valid-until", valid_until)
    services = open_services()
    try:
        with services.sessions() as session:
            old = certificates.get_certificate(session, certificate, department_id=None)
            department = session.get(Department, old.department_id)
            assert department is not None
            department_code = department.code
        issued = certificates.supersede(
            services,
            certificate_id=certificate,
            department_code=department_code,
            fields=changes,
            valid_from=starts,
            valid_until=ends,
            actor=operator(),
        )
        if output is not None:
            blobs = services.blobs
            write_atomically(output, lambda out: blobs.copy_to(issued.certificate.blob_key, out))
    finally:
        services.dispose()
    today = services.clock.today()
    row = certificate_row(issued.certificate, today=today) | {"supersedes": certificate}
    if output is not None:
        row["output"] = str(output)
    emit(as_json, [row], title="superseded", single=True)


def _date_option(name: str, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandUsageError(f"{name} takes a date as YYYY-MM-DD, not {value!r}.") from None


@batch_app.command("issue")
def batch_issue(
    type_code: Annotated[str, typer.Option("--type", help="Certificate type.")],
    csv_file: Annotated[
        Path, typer.Option("--csv", help="One licence per row; columns are field names.")
    ],
    out_dir: Annotated[Path, typer.Option(help="Where the PDFs and results.csv go.")],
    department: Annotated[
        str | None, typer.Option(help="The issuing department's code (local runs).")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="Submit to the service at this URL and follow the batch there, instead of "
            "issuing in this process."
        ),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option(envvar="ECONTRACT_CLIENT_ID", help="API client (--server).")
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="ECONTRACT_CLIENT_SECRET", help="Its secret (--server).", show_default=False
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Issue one licence per CSV row, with a progress bar and a per-row result file.

    Safe to run again after an interruption: each row carries an idempotency key derived from
    the file's content and the row's number, so a row issued before is not issued twice; its
    PDF is written again if it is missing. With --server the file is submitted to the service
    as a batch (its workers issue the rows) and results.csv is written when it is done.
    """
    from econtract.batch import load_batch, run_batch

    batch = load_batch(csv_file)
    if server is not None:
        summary = _batch_on_server(
            server, client_id, client_secret, type_code, csv_file, batch.digest, out_dir, as_json
        )
    else:
        if department is None:
            raise CommandUsageError("A local run needs --department (or give --server).")
        services = open_services()
        try:
            with _progress(len(batch.rows), enabled=not as_json) as advance:
                summary = run_batch(
                    services,
                    type_code=type_code,
                    batch=batch,
                    department=department,
                    out_dir=out_dir,
                    advance=advance,
                )
        finally:
            services.dispose()
    emit(as_json, [summary], title="batch", single=True)
    if summary["failed"]:
        raise typer.Exit(EXIT_ERROR)


def _batch_on_server(
    server: str,
    client_id: str | None,
    client_secret: str | None,
    type_code: str,
    csv_file: Path,
    digest: str,
    out_dir: Path,
    as_json: bool,
) -> dict[str, Any]:
    import requests

    from econtract.batch import write_results
    from econtract.batches import BatchClient, result_lines

    if not client_id or not client_secret:
        raise CommandUsageError(
            "--server needs --client-id and --client-secret "
            "(or ECONTRACT_CLIENT_ID and ECONTRACT_CLIENT_SECRET)."
        )
    with requests.Session() as session:
        client = BatchClient(server, client_id, client_secret, session)
        token = client.token()
        submitted = client.submit(
            token, type_code=type_code, csv_bytes=csv_file.read_bytes(), key=f"csv-{digest}"
        )
        with _progress(submitted["total"], enabled=not as_json) as advance:
            shown = 0

            def on_progress(batch: dict[str, Any]) -> None:
                nonlocal shown
                finished = batch["total"] - batch["counts"]["queued"]
                for _ in range(finished - shown):
                    advance()
                shown = finished

            done = client.follow(token, submitted["id"], on_progress=on_progress)
        lines = result_lines(client.results(token, submitted["id"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_results(out_dir / "results.csv", lines)
    counts = done["counts"]
    return {
        "batch": done["id"],
        "rows": done["total"],
        "issued": counts["issued"],
        "failed": counts["failed"],
        "cancelled": counts["cancelled"],
        "results": str(out_dir / "results.csv"),
    }


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console(),
    ) as progress:
        task = progress.add_task("issuing", total=total)
        yield lambda: progress.advance(task)
