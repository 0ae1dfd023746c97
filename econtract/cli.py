"""The ``econtract`` command line: the operator's door to the same use cases as the API."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import typer
import uvicorn
from cryptography import x509
from pydantic import ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from sqlalchemy.orm import Session
from typer.exceptions import TyperException

from econtract import audit, auditor, clients, db, departments, seals
from econtract.batch import load_batch, run_batch
from econtract.blobs import DiskBlobStore
from econtract.bootstrap import initialise
from econtract.certificates import TRANSITIONS, change_status, effective_status
from econtract.config import ConfigurationError, Settings, get_settings
from econtract.errors import EContractError
from econtract.issuance import IssueRequest, issue_certificate
from econtract.models import ApiClient, Certificate, Department, Seal, SealKind
from econtract.sealing import seal_document
from econtract.services import Services
from econtract.verification import log_appendix, log_proofs, service_policy
from keys.handles import KeyAlgorithm
from signing.fonts import check_font
from signing.options import Certification, SealLevel, SealOptions
from verify.limits import verify_pdf_bounded
from verify.pdf_report import report_pdf
from verify.policy import VerificationPolicy
from verify.report import Appendix, Report

#: Exit status of a usage error (BSD sysexits EX_USAGE), kept apart from verdict codes.
EXIT_USAGE = 64
EXIT_ERROR = 1

app = typer.Typer(
    help="eContract: electronic certificates and e-seals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
departments_app = typer.Typer(help="Issuing departments.", no_args_is_help=True)
seals_app = typer.Typer(help="A department's e-seals.", no_args_is_help=True)
clients_app = typer.Typer(help="API clients of approval systems.", no_args_is_help=True)
db_app = typer.Typer(help="The registry database.", no_args_is_help=True)
app.add_typer(departments_app, name="departments")
app.add_typer(seals_app, name="seals")
app.add_typer(clients_app, name="clients")
app.add_typer(db_app, name="db")
batch_app = typer.Typer(help="Batch runs.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The auditor's tool: watch the transparency log.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")
app.add_typer(batch_app, name="batch")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
console = Console()
err_console = Console(stderr=True)


def load_settings() -> Settings:
    """The settings, with a configuration problem turned into a one-line error."""
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        ctx_error = first.get("ctx", {}).get("error")
        if isinstance(ctx_error, ConfigurationError):
            raise EContractError(str(ctx_error), code="configuration") from None
        where = "ECONTRACT_" + "_".join(str(p) for p in first["loc"]).upper()
        raise EContractError(f"{where}: {first['msg']}", code="configuration") from None


def open_services() -> Services:
    """Services for this command, with the database checked first."""
    services = Services(settings=load_settings())
    db.check_database(services.engine)
    return services


@contextmanager
def use_case() -> Iterator[tuple[Services, Session]]:
    """One command's unit of work: services and a session in a transaction."""
    services = open_services()
    try:
        with db.transaction(services.sessions) as session:
            yield services, session
    finally:
        services.dispose()


def emit(
    as_json: bool, rows: Sequence[dict[str, Any]], *, title: str, single: bool = False
) -> None:
    """Print rows as JSON (a list, or one object when ``single``) or as a table."""
    if as_json:
        payload: Any = rows[0] if single else list(rows)
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")
        return
    table = Table(title=title)
    for column in rows[0].keys() if rows else ():
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) if v is not None else "" for v in row.values()))
    console.print(table)


def department_row(d: Department) -> dict[str, Any]:
    """A department as printed."""
    return {
        "code": d.code,
        "name": d.name,
        "region": d.region,
        "created_at": d.created_at.isoformat(),
    }


def seal_row(s: Seal, department_code: str) -> dict[str, Any]:
    """A seal as printed."""
    return {
        "id": s.id,
        "department": department_code,
        "kind": s.kind,
        "algorithm": s.algorithm,
        "status": s.status,
        "serial_number": s.serial_number,
        "not_after": s.not_after.isoformat(),
        "replaces": s.replaces_id,
    }


def client_row(c: ApiClient, department_code: str) -> dict[str, Any]:
    """A client as printed (never its secret)."""
    return {
        "client_id": c.id,
        "department": department_code,
        "name": c.name,
        "scopes": c.scopes.split(),
        "disabled": c.disabled_at is not None,
    }


def _code_of(session: Session, department_id: int) -> str:
    department = session.get(Department, department_id)
    return department.code if department else ""


@app.command()
def init(
    demo: Annotated[bool, typer.Option(help="Create the demo department and its seals.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Create the schema, the development PKI and a demo department; safe to run again."""
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
    uvicorn.run(
        "api:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        server_header=False,
    )


@app.command()
def seal(
    source: Annotated[Path, typer.Argument(help="The PDF to seal.", dir_okay=False)],
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
        typer.Option(help="Empty field for a later department: NAME or NAME@PAGE:X,Y (repeat)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Seal a PDF with a seal and register it; the output appears only when all went well."""
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
            )
        blobs = DiskBlobStore(services.settings.blob_dir)
        partial = output.with_name(f".{output.name}.part")
        try:
            with partial.open("wb") as out:
                blobs.copy_to(sealed.document.blob_key, out)
            os.replace(partial, output)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise EContractError(f"Cannot write {output}: {exc.strerror}.") from None
    finally:
        services.dispose()
    row = {
        "id": sealed.document.id,
        "seal": sealed.document.seal_id,
        "level": sealed.document.level,
        "field": sealed.result.field_name,
        "sha256": sealed.document.pdf_sha256,
        "signed_digest": sealed.document.signed_digest,
        "output": str(output),
    }
    emit(as_json, [row], title="sealed", single=True)


def certificate_row(c: Certificate) -> dict[str, Any]:
    """A certificate as printed."""
    return {
        "id": c.id,
        "type": c.type_code,
        "number": c.number,
        "holder": c.holder_name,
        "status": effective_status(c),
        "valid_from": c.valid_from.isoformat(),
        "valid_until": c.valid_until.isoformat() if c.valid_until else None,
        "sha256": c.pdf_sha256,
    }


def read_json_file(path: Path) -> Any:
    """A JSON document from a file, with a one-line error when it is not."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EContractError(f"Cannot read {path}: {exc.strerror}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EContractError(f"{path} is not JSON: {exc}.") from None


def write_atomically(path: Path, copy: Callable[[BinaryIO], object]) -> None:
    """Write a file through a temporary name, so that it appears whole or not at all."""
    partial = path.with_name(f".{path.name}.part")
    try:
        with partial.open("wb") as out:
            copy(out)
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise EContractError(f"Cannot write {path}: {exc.strerror}.") from None


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
        blobs = DiskBlobStore(services.settings.blob_dir)
        write_atomically(output, lambda out: blobs.copy_to(issued.certificate.blob_key, out))
    finally:
        services.dispose()
    emit(
        as_json,
        [certificate_row(issued.certificate) | {"output": str(output)}],
        title="issued",
        single=True,
    )


def operator() -> audit.Actor:
    """The operator at the command line."""
    return audit.Actor.operator()


def _status_command(action: str) -> None:
    @app.command(name=action, help=f"{action.capitalize()} a certificate.")
    def command(
        certificate: Annotated[str, typer.Argument(help="The certificate's id.")],
        reason: Annotated[str, typer.Option(help="Why, recorded in the status history.")],
        as_json: JsonOption = False,
    ) -> None:
        services = open_services()
        try:
            changed = change_status(
                services, certificate_id=certificate, action=action, reason=reason, actor=operator()
            )
        finally:
            services.dispose()
        emit(as_json, [certificate_row(changed)], title=action, single=True)


for _action in TRANSITIONS:
    _status_command(_action)


@batch_app.command("issue")
def batch_issue(
    type_code: Annotated[str, typer.Option("--type", help="Certificate type.")],
    csv_file: Annotated[
        Path, typer.Option("--csv", help="One licence per row; columns are field names.")
    ],
    department: Annotated[str, typer.Option(help="The issuing department's code.")],
    out_dir: Annotated[Path, typer.Option(help="Where the PDFs and results.csv go.")],
    as_json: JsonOption = False,
) -> None:
    """Issue one licence per CSV row, with a progress bar and a per-row result file.

    Safe to run again after an interruption: each row carries an idempotency key derived from
    the file's content and the row's number, so a row issued before is not issued twice; its
    PDF is written again if it is missing.
    """
    batch = load_batch(csv_file)
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


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("issuing", total=total)
        yield lambda: progress.advance(task)


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


def load_certificate(path: Path) -> x509.Certificate:
    """A certificate from a PEM or DER file, with a one-line error otherwise."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EContractError(f"Cannot read {path}: {exc.strerror}.") from None
    try:
        if b"-----BEGIN CERTIFICATE-----" in raw:
            return x509.load_pem_x509_certificate(raw)
        return x509.load_der_x509_certificate(raw)
    except ValueError:
        raise EContractError(f"{path} is not an X.509 certificate.") from None


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


@audit_app.command("fetch")
def audit_fetch(
    url: Annotated[str, typer.Option(help="The service's public base URL.")],
    store: Annotated[
        Path, typer.Option(help="Where the tree heads and leaf hashes seen are kept.")
    ],
) -> None:
    """Store the log's current signed tree head (and the leaf hashes it covers)."""
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
    result = auditor.check(url, store)
    console.print(result.summary())
    for finding in result.findings:
        console.print(f"  {finding.line()}")
    if not result.ok:
        raise typer.Exit(EXIT_ERROR)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply the registry's migrations."""
    services = open_services()
    try:
        db.upgrade(services.engine, revision)
    finally:
        services.dispose()
    console.print(f"database upgraded to {revision}")


@departments_app.command("add")
def departments_add(
    code: Annotated[str, typer.Option(help="Unified social credit code (18 characters).")],
    name: Annotated[str, typer.Option(help="The department's name.")],
    region: Annotated[
        str | None, typer.Option(help="6-digit administrative division code.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Register an issuing department."""
    with use_case() as (_, session):
        d = departments.add_department(
            session, code=code, name=name, region=region, actor=audit.Actor.operator()
        )
        row = department_row(d)
    emit(as_json, [row], title="department added", single=True)


@departments_app.command("list")
def departments_list(as_json: JsonOption = False) -> None:
    """List departments."""
    with use_case() as (_, session):
        rows = [department_row(d) for d in departments.list_departments(session)]
    emit(as_json, rows, title="departments")


@seals_app.command("create")
def seals_create(
    department: Annotated[str, typer.Option(help="The owning department's code.")],
    kind: Annotated[SealKind, typer.Option(help="The seal's kind.")] = SealKind.OFFICIAL,
    algorithm: Annotated[KeyAlgorithm, typer.Option(help="Key algorithm.")] = KeyAlgorithm.RSA_2048,
    validity_days: Annotated[int, typer.Option(help="Certificate validity in days.")] = 3 * 365,
    as_json: JsonOption = False,
) -> None:
    """Create a seal: a key in the key store and a certificate from the issuing CA."""
    with use_case() as (services, session):
        seal = seals.create_seal(
            session,
            request=seals.SealRequest(
                department_code=department,
                kind=kind,
                algorithm=algorithm,
                validity_days=validity_days,
            ),
            key_store=services.key_store,
            pki=services.pki,
            actor=audit.Actor.operator(),
        )
        row = seal_row(seal, _code_of(session, seal.department_id))
    emit(as_json, [row], title="seal created", single=True)


@seals_app.command("list")
def seals_list(
    department: Annotated[str | None, typer.Option(help="Only this department's seals.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List seals."""
    with use_case() as (_, session):
        rows = [
            seal_row(s, _code_of(session, s.department_id))
            for s in seals.list_seals(session, department_code=department)
        ]
    emit(as_json, rows, title="seals")


@seals_app.command("revoke")
def seals_revoke(
    seal: Annotated[str, typer.Argument(help="The seal's id.")],
    reason: Annotated[
        str, typer.Option(help="RFC 5280 reason, e.g. keyCompromise.")
    ] = "unspecified",
    as_json: JsonOption = False,
) -> None:
    """Revoke a seal's certificate (OCSP and the CRL show it at once)."""
    with use_case() as (_, session):
        s = seals.revoke_seal(session, seal_id=seal, reason=reason, actor=audit.Actor.operator())
        row = seal_row(s, _code_of(session, s.department_id))
    emit(as_json, [row], title="seal revoked", single=True)


@seals_app.command("rotate")
def seals_rotate(
    seal: Annotated[str, typer.Argument(help="The seal's id.")],
    as_json: JsonOption = False,
) -> None:
    """Replace a seal's key and certificate; the old seal retires without being revoked."""
    with use_case() as (services, session):
        s = seals.rotate_seal(
            session,
            seal_id=seal,
            key_store=services.key_store,
            pki=services.pki,
            actor=audit.Actor.operator(),
        )
        row = seal_row(s, _code_of(session, s.department_id))
    emit(as_json, [row], title="seal rotated", single=True)


@clients_app.command("create")
def clients_create(
    department: Annotated[str, typer.Option(help="The client's department code.")],
    scopes: Annotated[str, typer.Option(help="Comma-separated: issue,seal,revoke,read,audit.")],
    name: Annotated[str, typer.Option(help="A name for the approval system.")] = "approval system",
    as_json: JsonOption = False,
) -> None:
    """Create an API client; its secret is printed this once."""
    with use_case() as (_, session):
        client, secret = clients.create_client(
            session,
            department_code=department,
            name=name,
            scopes=scopes,
            actor=audit.Actor.operator(),
        )
        row = client_row(client, _code_of(session, client.department_id)) | {
            "client_secret": secret
        }
    emit(as_json, [row], title="client created (the secret is shown once)", single=True)


@clients_app.command("list")
def clients_list(
    department: Annotated[str | None, typer.Option(help="Only this department's clients.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List API clients (never their secrets)."""
    with use_case() as (_, session):
        rows = [
            client_row(c, _code_of(session, c.department_id))
            for c in clients.list_clients(session, department_code=department)
        ]
    emit(as_json, rows, title="clients")


@clients_app.command("disable")
def clients_disable(
    client: Annotated[str, typer.Argument(help="The client id.")],
    as_json: JsonOption = False,
) -> None:
    """Disable an API client."""
    with use_case() as (_, session):
        c = clients.disable_client(session, client_id=client, actor=audit.Actor.operator())
        row = client_row(c, _code_of(session, c.department_id))
    emit(as_json, [row], title="client disabled", single=True)


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit status; errors are one line on stderr."""
    command = typer.main.get_command(app)
    try:
        # Outside standalone mode, click returns the code of a ``typer.Exit`` instead of
        # raising it.
        result = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="econtract",
            standalone_mode=False,
        )
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("aborted\n")
        return EXIT_ERROR
    except TyperException as exc:
        # Typer carries its own copy of click; every remaining error of it is a usage error.
        sys.stderr.write(f"usage error: {exc.format_message()}\n")
        return EXIT_USAGE
    except EContractError as exc:
        sys.stderr.write(f"error: {exc.message}\n")
        return EXIT_ERROR
    return result if isinstance(result, int) else 0


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
