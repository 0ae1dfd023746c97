"""The operator's registry commands: departments, seals and API clients."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from econtract.cli._app import (
    JsonOption,
    clients_app,
    departments_app,
    emit,
    operator,
    seals_app,
    use_case,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from econtract.bodies import BodyKind
    from econtract.models import ApiClient, Department, Seal


class SealKindChoice(StrEnum):
    """The seal kinds offered on the command line: the values of
    :class:`econtract.models.SealKind`, spelt here so that help never loads the models."""

    OFFICIAL = "official"
    LICENCE = "licence"
    CONTRACT = "contract"


class KeyAlgorithmChoice(StrEnum):
    """The key algorithms a seal may have (:data:`econtract.seals.SEAL_ALGORITHMS`, one per
    algorithm suite), spelt here so that help never loads cryptography."""

    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    EC_P256 = "ecdsa-p256"
    SM2 = "sm2"


def department_row(d: Department) -> dict[str, Any]:
    """A department as printed."""
    return {
        "code": d.code,
        "name": d.name,
        "region": d.region,
        "kind": d.kind,
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
    from econtract.models import Department

    department = session.get(Department, department_id)
    return department.code if department else ""


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
    from econtract import departments

    with use_case() as (_, session):
        d = departments.add_department(
            session, code=code, name=name, region=region, actor=operator()
        )
        row = department_row(d)
    emit(as_json, [row], title="department added", single=True)


@departments_app.command("list")
def departments_list(as_json: JsonOption = False) -> None:
    """List departments."""
    from econtract import departments

    with use_case() as (_, session):
        rows = [department_row(d) for d in departments.list_departments(session)]
    emit(as_json, rows, title="departments")


def _owner(department: str | None, enterprise: str | None) -> tuple[str, BodyKind]:
    """The owner's code and kind from ``--department`` or ``--enterprise``: exactly one."""
    from econtract.bodies import BodyKind
    from econtract.cli._app import CommandUsageError

    if department is not None and enterprise is None:
        return department, BodyKind.DEPARTMENT
    if enterprise is not None and department is None:
        return enterprise, BodyKind.ENTERPRISE
    raise CommandUsageError("Give either --department or --enterprise (one of them).")


@seals_app.command("create")
def seals_create(
    department: Annotated[str | None, typer.Option(help="The owning department's code.")] = None,
    enterprise: Annotated[
        str | None,
        typer.Option(help="The owning enterprise's code (kinds official and contract)."),
    ] = None,
    kind: Annotated[
        SealKindChoice, typer.Option(help="The seal's kind.")
    ] = SealKindChoice.OFFICIAL,
    algorithm: Annotated[
        KeyAlgorithmChoice, typer.Option(help="Key algorithm.")
    ] = KeyAlgorithmChoice.RSA_2048,
    validity_days: Annotated[int, typer.Option(help="Certificate validity in days.")] = 3 * 365,
    as_json: JsonOption = False,
) -> None:
    """Create a seal: a key in the key store and a certificate from the issuing CA."""
    from econtract import seals
    from econtract.models import SealKind
    from keys.handles import KeyAlgorithm

    owner, owner_kind = _owner(department, enterprise)
    with use_case() as (services, session):
        seal = seals.create_seal(
            session,
            request=seals.SealRequest(
                department_code=owner,
                owner_kind=owner_kind,
                kind=SealKind(kind.value),
                algorithm=KeyAlgorithm(algorithm.value),
                validity_days=validity_days,
            ),
            key_store=services.key_store,
            pki=services.pki,
            actor=operator(),
            clock=services.clock,
        )
        row = seal_row(seal, _code_of(session, seal.department_id))
    emit(as_json, [row], title="seal created", single=True)


@seals_app.command("list")
def seals_list(
    department: Annotated[str | None, typer.Option(help="Only this department's seals.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List seals."""
    from econtract import seals

    with use_case() as (_, session):
        rows = [
            seal_row(s, _code_of(session, s.department_id))
            for s in seals.list_seals(session, department_code=department)
        ]
    emit(as_json, rows, title="seals")


@seals_app.command("revoke")
def seals_revoke(
    seal: Annotated[str, typer.Argument(metavar="SEAL", help="The seal's id.")],
    reason: Annotated[
        str, typer.Option(help="RFC 5280 reason, e.g. keyCompromise.")
    ] = "unspecified",
    as_json: JsonOption = False,
) -> None:
    """Revoke a seal's certificate (OCSP and the CRL show it at once)."""
    from econtract import seals

    with use_case() as (services, session):
        s = seals.revoke_seal(
            session, seal_id=seal, reason=reason, actor=operator(), clock=services.clock
        )
        row = seal_row(s, _code_of(session, s.department_id))
    emit(as_json, [row], title="seal revoked", single=True)


@seals_app.command("rotate")
def seals_rotate(
    seal: Annotated[str, typer.Argument(metavar="SEAL", help="The seal's id.")],
    as_json: JsonOption = False,
) -> None:
    """Replace a seal's key and certificate; the old seal retires without being revoked."""
    from econtract import seals

    with use_case() as (services, session):
        s = seals.rotate_seal(
            session,
            seal_id=seal,
            key_store=services.key_store,
            pki=services.pki,
            actor=operator(),
            clock=services.clock,
        )
        row = seal_row(s, _code_of(session, s.department_id))
    emit(as_json, [row], title="seal rotated", single=True)


@clients_app.command("create")
def clients_create(
    scopes: Annotated[
        str,
        typer.Option(
            help="Comma-separated: issue,seal,revoke,read,audit,use,holder for a department; "
            "sign for an enterprise."
        ),
    ],
    department: Annotated[str | None, typer.Option(help="The client's department code.")] = None,
    enterprise: Annotated[
        str | None, typer.Option(help="The client's enterprise code (scope sign only).")
    ] = None,
    name: Annotated[str, typer.Option(help="A name for the approval system.")] = "approval system",
    as_json: JsonOption = False,
) -> None:
    """Create an API client; its secret is printed this once."""
    from econtract import clients

    owner, owner_kind = _owner(department, enterprise)
    with use_case() as (services, session):
        client, secret = clients.create_client(
            session,
            department_code=owner,
            owner_kind=owner_kind,
            name=name,
            scopes=scopes,
            actor=operator(),
            pepper=clients.pepper_of(services.settings),
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
    from econtract import clients

    with use_case() as (_, session):
        rows = [
            client_row(c, _code_of(session, c.department_id))
            for c in clients.list_clients(session, department_code=department)
        ]
    emit(as_json, rows, title="clients")


@clients_app.command("disable")
def clients_disable(
    client: Annotated[str, typer.Argument(metavar="CLIENT", help="The client id.")],
    as_json: JsonOption = False,
) -> None:
    """Disable an API client."""
    from econtract import clients

    with use_case() as (_, session):
        c = clients.disable_client(session, client_id=client, actor=operator())
        row = client_row(c, _code_of(session, c.department_id))
    emit(as_json, [row], title="client disabled", single=True)
