"""``econtract ses verify``: read GB/T 38540 seal data or a signature and check it.

Exit status: 0 when every signature and certificate in it verifies, 1 when one does not, 64
when the file is not a SESeal or SES_Signature (v4 or v1) at all.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from econtract.cli._app import CommandUsageError, _group, app, load_certificate
from econtract.errors import EContractError

ses_app = _group("GB/T 38540 seal data (电子印章数据) and signatures (电子签章数据).")
app.add_typer(ses_app, name="ses")

EXIT_VERIFIED, EXIT_NOT_VERIFIED = 0, 1


def _local_anchors() -> list[bytes]:
    """The local registry's SM2 root and issuing CA, when the service here is set up."""
    from sqlalchemy import select
    from sqlalchemy.exc import SQLAlchemyError

    from econtract.cli._app import open_services
    from econtract.models import Authority
    from econtract.pki import SM2_ISSUING, SM2_ROOT

    try:
        services = open_services()
    except (EContractError, SQLAlchemyError):
        return []
    try:
        with services.sessions() as session:
            rows = session.scalars(
                select(Authority).where(Authority.name.in_((SM2_ROOT, SM2_ISSUING)))
            )
            return [row.certificate_der for row in rows if row.certificate_der]
    except SQLAlchemyError:
        return []
    finally:
        services.dispose()


@ses_app.command("verify")
def verify_ses(
    file: Annotated[Path, typer.Argument(help="A SESeal (.esl) or SES_Signature (.dat).")],
    trust_root: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust-root",
            help="An SM2 CA certificate (PEM or DER) to check chains up to; repeatable. "
            "Default: the local service's SM2 root and issuing CA, when it is set up.",
        ),
    ] = None,
) -> None:
    """Check the signatures and certificates in FILE; print what it holds, one field a line."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from econtract.ses.read import SESUnreadableError, check_ses

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CommandUsageError(f"Cannot read {file}: {exc.strerror}.") from None
    if trust_root:
        anchors = [load_certificate(p).public_bytes(Encoding.DER) for p in trust_root]
    else:
        anchors = _local_anchors()
    try:
        report = check_ses(data, anchors=anchors)
    except SESUnreadableError as exc:
        raise CommandUsageError(f"{file}: {exc.message}") from None
    out = [f"类型 Structure: {report.kind} v{report.version}"]
    out += [f"{zh} {en}: {value}" for zh, en, value in report.fields]
    if not anchors:
        out.append("证书链 Chain: 未核验（无 SM2 根） not checked (no SM2 root given)")
    out += [f"问题 Problem: {problem}" for problem in report.problems]
    verdict = "已验证 VERIFIED" if report.verified else "未通过 NOT VERIFIED"
    out.append(f"结论 Verdict: {verdict}")
    sys.stdout.write("\n".join(out) + "\n")
    raise typer.Exit(EXIT_VERIFIED if report.verified else EXIT_NOT_VERIFIED)
