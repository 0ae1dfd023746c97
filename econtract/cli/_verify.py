"""``econtract verify``: judge sealed PDFs and say plainly what was and was not checked.

The order of a run: every path is resolved first (a folder gives every ``*.pdf`` inside it,
recursively, sorted), so that a mistyped name is a usage error before anything is verified;
then the policy is chosen (the root given and, with ``--registry``, the service's public
status endpoint; else the local service, which must have been set up: nothing is created);
then each file is verified in a bounded worker; last the results are printed and the exit
status is the worst verdict's: 0 VALID, 2 INDETERMINATE, 1 anything else (INCOMPLETE among
them: a document not every party has sealed is not valid yet).

The text never lets a verdict say more than was checked: without a registry it states that the
licence's status (revoked? suspended?) was not asked, and a seal whose certificate was revoked
after it sealed is named with the date and reason, though the file stays valid.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from econtract.cli._app import (
    CommandUsageError,
    add_unbroken_column,
    app,
    console,
    err_console,
    load_certificate,
    load_settings,
    open_services,
)
from econtract.errors import EContractError
from econtract.files import write_atomically
from verify.words import status_words

if TYPE_CHECKING:
    from collections.abc import Callable

    from econtract.remote_registry import HTTPRegistryView
    from econtract.services import Services
    from verify.policy import VerificationPolicy
    from verify.report import Report, SignatureReport

#: Exit statuses of ``econtract verify``.
EXIT_VALID, EXIT_NOT_VALID, EXIT_INDETERMINATE = 0, 1, 2

#: Exit statuses from best to worst: "not valid" is a finding, worse than "cannot decide now".
_SEVERITY = {EXIT_VALID: 0, EXIT_INDETERMINATE: 1, EXIT_NOT_VALID: 2}

#: The line printed, once, when no registry was asked about a file's status.
NOT_CHECKED = (
    "状态未核对：未查询登记库，证照可能已被撤销或暂停（用 --registry URL 查询）。"
    " Status not checked: no registry was asked, so the licence may have been revoked or"
    " suspended since (ask with --registry URL)."
)


@dataclass
class _Result:
    """One file's outcome: a report, or the error that kept it from one."""

    path: Path
    report: Report | None = None
    error: str | None = None
    holder: str | None = None
    transparency: dict[str, Any] | None = None
    registry_answer: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def verdict(self) -> str:
        return self.report.verdict.value if self.report is not None else "ERROR"

    @property
    def exit_status(self) -> int:
        if self.verdict == "VALID":
            return EXIT_VALID
        if self.verdict == "INDETERMINATE":
            return EXIT_INDETERMINATE
        return EXIT_NOT_VALID


@app.command()
def verify(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="PDF files, or folders (every *.pdf inside, recursively).",
            metavar="FILE|FOLDER",
            show_default=False,
        ),
    ],
    trust_root: Annotated[
        list[Path] | None,
        typer.Option(
            metavar="PEM",
            help="A trusted root certificate (PEM or DER); repeat for several. Without "
            "it, the local service's root and registry are used.",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="With --trust-root: ask this service's public status endpoint whether each "
            "file was revoked, suspended or superseded.",
        ),
    ] = None,
    report_pdf_path: Annotated[
        Path | None,
        typer.Option(
            "--report-pdf", metavar="FILE", help="Also write the report as a PDF (one file only)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print each report as one line of JSON.")
    ] = False,
) -> None:
    """Check sealed PDFs. Exit 0 when all are VALID, 2 when the worst is INDETERMINATE, 1 when
    any is not valid."""
    files = _collect(paths)
    if report_pdf_path is not None and len(files) > 1:
        raise CommandUsageError("--report-pdf takes one file to verify, not several.")
    if registry is not None and not trust_root:
        raise CommandUsageError(
            "--registry needs --trust-root: the root you trust is not taken from the service "
            "being checked."
        )
    with _policy(trust_root or [], registry) as (policy, services, remote):
        results = _verify_all(files, policy, services, remote, report_pdf_path, as_json)
    if as_json:
        for result in results:
            sys.stdout.write(json.dumps(_json_line(result), ensure_ascii=False) + "\n")
    else:
        _print_text(results, several=len(files) > 1)
    worst = max((r.exit_status for r in results), key=_SEVERITY.__getitem__)
    if worst != EXIT_VALID:
        raise typer.Exit(worst)


def _collect(paths: list[Path]) -> list[Path]:
    """Every file to verify, in order; a missing path or an empty folder is a usage error."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".pdf" and p.is_file())
            if not found:
                raise CommandUsageError(f"{path} holds no PDF file.")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise CommandUsageError(f"{path} does not exist.")
    return files


@contextmanager
def _policy(
    trust_roots: list[Path], registry_url: str | None
) -> Iterator[tuple[VerificationPolicy, Services | None, HTTPRegistryView | None]]:
    """The policy of the run, with what it holds open: the local services, or the registry's
    HTTP session."""
    from verify.policy import VerificationPolicy

    if trust_roots:
        roots = tuple(load_certificate(p) for p in trust_roots)
        if registry_url is None:
            yield VerificationPolicy(trust_roots=roots), None, None
            return
        from econtract.remote_registry import HTTPRegistryView

        remote = HTTPRegistryView(registry_url)
        try:
            yield VerificationPolicy(trust_roots=roots, registry=remote), None, remote
        finally:
            remote.close()
        return
    from econtract.verification import service_policy

    services = _local_services()
    try:
        yield service_policy(services), services, None
    finally:
        services.dispose()


def _local_services() -> Services:
    """The local service's services, only if a service was set up here: checking a file must
    never create a data directory or a database as a side effect."""
    from sqlalchemy import inspect
    from sqlalchemy.engine import make_url

    settings = load_settings()
    hint = (
        "give the issuer's root certificate with --trust-root ROOT.pem to check offline, or "
        "run `econtract init` to set up a service"
    )
    url = make_url(settings.effective_database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database))
        if not database.is_file():
            raise CommandUsageError(f"no eContract service is set up here ({database}): {hint}.")
    services = open_services()
    try:
        initialised = inspect(services.engine).has_table("certificates")
    except Exception:
        services.dispose()
        raise
    if not initialised:
        services.dispose()
        raise CommandUsageError(f"the eContract registry here is empty: {hint}.")
    return services


def _verify_all(
    files: list[Path],
    policy: VerificationPolicy,
    services: Services | None,
    remote: HTTPRegistryView | None,
    report_pdf_path: Path | None,
    as_json: bool,
) -> list[_Result]:
    from econtract.remote_registry import RegistryUnreachableError
    from verify.errors import VerificationError
    from verify.limits import verify_pdf_bounded

    results: list[_Result] = []
    with _progress(len(files), enabled=not as_json and len(files) > 1) as advance:
        for path in files:
            result = _Result(path=path)
            try:
                result.report = verify_pdf_bounded(_read(path), policy=policy)
            except RegistryUnreachableError as exc:
                # The status of every file is unknown now; no verdict may pretend otherwise.
                sys.stderr.write(f"error: {exc.message} The files' status is unknown.\n")
                raise typer.Exit(EXIT_INDETERMINATE) from None
            except (VerificationError, EContractError) as exc:
                if len(files) == 1:
                    raise
                result.error = exc.message
            if result.report is not None:
                _add_registry_details(result, services, remote)
            results.append(result)
            advance(path.name)
    if report_pdf_path is not None and results[0].report is not None:
        _write_report_pdf(report_pdf_path, results[0])
    return results


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise EContractError(f"Cannot read {path}: {exc.strerror}.") from None


def _add_registry_details(
    result: _Result, services: Services | None, remote: HTTPRegistryView | None
) -> None:
    """What the local registry adds (the holder, the transparency log's proofs) or what the
    remote one answered beyond the report (when and why the status changed)."""
    assert result.report is not None
    record_id = result.report.registry.record_id
    if record_id is None:
        return
    if remote is not None:
        result.registry_answer = remote.answers.get(record_id)
        return
    if services is None:
        return
    from econtract.models import Certificate
    from econtract.verification import log_proofs

    if result.report.registry.kind == "certificate":
        with services.sessions() as session:
            certificate = session.get(Certificate, record_id)
            result.holder = certificate.holder_name if certificate is not None else None
    result.transparency = log_proofs(services, record_id)


def _write_report_pdf(path: Path, result: _Result) -> None:
    from econtract.report_pdf import report_pdf
    from econtract.verification import log_appendix

    assert result.report is not None
    report = result.report
    appendices = (log_appendix(result.transparency),) if result.transparency is not None else ()
    write_atomically(path, lambda out: out.write(report_pdf(report, appendices)))


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar on stderr, only when it is a terminal."""
    if not enabled or not err_console().is_terminal:
        yield lambda _name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=err_console(),
        transient=True,
    ) as progress:
        task = progress.add_task("", total=total)
        yield lambda name: progress.update(task, advance=1, description=name)


def _json_line(result: _Result) -> dict[str, Any]:
    """One line of ``--json``: the report as ``POST /v1/verify`` answers it (with the
    transparency log's proofs when the registry matched), and the file it is about."""
    if result.report is None:
        return {"file": str(result.path), "error": result.error}
    body = result.report.to_json()
    if result.transparency is not None:
        body["transparency"] = result.transparency
    return {"file": str(result.path), **body}


def _print_text(results: list[_Result], *, several: bool) -> None:
    if several:
        _print_summary(results)
        detailed = [r for r in results if r.verdict != "VALID" or _seal_notes(r)]
        if detailed:
            sys.stdout.write("\n")
        for result in detailed:
            _print_details(result, header=True)
    else:
        _print_details(results[0], header=False)
    if any(r.report is not None and not r.report.registry.consulted for r in results):
        sys.stdout.write(NOT_CHECKED + "\n")


def _print_summary(results: list[_Result]) -> None:
    from rich.table import Table

    table = Table(title="verification")
    table.add_column("file", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    numbers = [r.report.registry.number or "" for r in results if r.report is not None]
    add_unbroken_column(table, "number", max((len(n) for n in numbers), default=0))
    table.add_column("holder", overflow="fold")
    for result in results:
        number = result.report.registry.number if result.report is not None else None
        table.add_row(str(result.path), _verdict_text(result), number or "", result.holder or "")
    console().print(table)


def _verdict_text(result: _Result) -> str:
    if result.report is None:
        return "ERROR 出错"
    # The words of every page and report (verify.words); English first, so that a script
    # reads the verdict's name as the first word.
    words = result.report.verdict.words
    return f"{words.en} {words.zh}"


def _print_details(result: _Result, *, header: bool) -> None:
    def say(text: str) -> None:
        # Plain lines, never wrapped: a person reads them, a script greps them.
        sys.stdout.write(text + "\n")

    prefix = f"{result.path}: " if header else ""
    if result.report is None:
        say(f"{prefix}ERROR 出错: {result.error}")
        return
    report = result.report
    say(f"{prefix}{_verdict_text(result)}")
    for reason in report.to_json()["reasons"]:
        say(f"  - {reason['en']} ({reason['zh']})")
    registry = report.registry
    if registry.consulted and registry.matched:
        words = status_words(registry.status)
        line = f"  登记状态 Registry: {words.zh} {words.en}"
        if registry.number:
            line += f", {registry.kind} {registry.number}"
        if result.holder:
            line += f", {result.holder}"
        answer = result.registry_answer or {}
        if answer.get("status_changed_at"):
            line += f"; changed {answer['status_changed_at']}"
        if answer.get("reason_kind"):
            line += f" ({answer['reason_kind']})"
        say(line)
    for note in _copy_lines(report):
        say(note)
    for note in _envelope_lines(report):
        say(note)
    for note in _seal_lines(report):
        say(note)


def _copy_lines(report: Report) -> list[str]:
    """An annotated copy's section: for whom on the first line, then what, until when and the
    original's own verdict."""
    if report.annotated_copy is None:
        return []
    from verify.annotated import copy_facts
    from verify.words import COPY_WORDS

    (_, for_whom), *rest = copy_facts(report.annotated_copy)
    title = COPY_WORDS["title"]
    return [
        f"  {title.zh} {title.en}: {for_whom}",
        *(f"    {label}: {value}" for label, value in rest),
    ]


def _envelope_lines(report: Report) -> list[str]:
    """An envelope's section: how many parties have sealed on the first line, then each party
    in the file's order with its state."""
    if report.envelope is None:
        return []
    from verify.envelope import envelope_facts
    from verify.words import ENVELOPE_WORDS

    progress = ENVELOPE_WORDS["progress"]
    facts = envelope_facts(report.envelope)
    return [
        f"  {progress.zh} {progress.en}: "
        f"{report.envelope.progress.zh} / {report.envelope.progress.en}",
        *(f"    {label}: {value}" for label, value in facts if label != progress.both),
    ]


def _seal_lines(report: Report) -> list[str]:
    lines = []
    seals = [s for s in report.signatures if s.kind == "seal"]
    for index, seal in enumerate(seals, start=1):
        lines.append(f"  印章 Seal {index}: {_signer(seal)}, {_when(seal)}: {seal.indication}")
        lines.extend(_revocation_lines(seal))
    return lines


def _seal_notes(result: _Result) -> list[str]:
    if result.report is None:
        return []
    return [n for s in result.report.signatures for n in _revocation_lines(s)]


def _revocation_lines(seal: SignatureReport) -> list[str]:
    revocation = seal.revocation
    if revocation.state not in ("revoked", "revoked-after-signing"):
        return []
    when = revocation.revoked_at.isoformat(timespec="seconds") if revocation.revoked_at else "?"
    reason = _reason_name(revocation.reason)
    if revocation.state == "revoked-after-signing":
        return [
            f"    印章证书已于 {when} 撤销（{reason}），晚于盖章时间，盖章时有效。"
            f" The seal's certificate was revoked on {when} ({reason}), after it sealed this"
            " file; the seal was valid when made."
        ]
    return [
        f"    印章证书已于 {when} 撤销（{reason}），早于盖章时间。"
        f" The seal's certificate was revoked on {when} ({reason}), before it sealed this file."
    ]


def _reason_name(reason: str | None) -> str:
    """An RFC 5280 reason as the RFC spells it (``keyCompromise``), from asn1crypto's
    ``key_compromise``."""
    if not reason:
        return "unspecified"
    head, *rest = reason.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _signer(seal: SignatureReport) -> str:
    if seal.signer is None:
        return "unknown signer"
    names = [seal.signer.department_name, seal.signer.seal_name]
    named = " ".join(n for n in names if n)
    return named or seal.signer.common_name or "unknown signer"


def _when(seal: SignatureReport) -> str:
    if seal.timestamp is not None:
        return f"sealed {seal.timestamp.time.isoformat(timespec='seconds')} (timestamped)"
    if seal.signing_time is not None:
        return f"sealed {seal.signing_time.isoformat(timespec='seconds')} (claimed)"
    return "no signing time"
