"""Enterprises: registered by a valid credit code, holding official and contract seals of their
own (certificates that say so), acting only through clients of scope ``sign``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import EXIT_USAGE, run
from econtract.clients import create_client
from econtract.departments import get_department, list_departments
from econtract.enterprises import add_enterprise, get_enterprise, list_enterprises
from econtract.errors import ConflictError, InvalidInputError, NotFoundError
from econtract.models import AuditEvent, Department, Seal, SealKind
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from keys.handles import KeyAlgorithm
from keys.names import department_code_of, is_enterprise_seal, seal_kind_of
from keys.oids import ENTERPRISE_SEAL_POLICY, ORGANIZATION_IDENTIFIER, SEAL_POLICY
from tests.factories import OPERATOR

YUANHANG = "9133010052CL12THX9"
YUANHANG_NAME = "杭州远航建设工程有限公司"
RUIFENG = "9133100015J1YG617W"


def _add(services: Services, code: str = YUANHANG, name: str = YUANHANG_NAME) -> Department:
    with db.transaction(services.sessions) as session:
        return add_enterprise(session, code=code, name=name, actor=OPERATOR)


def _seal(services: Services, owner: str, kind: SealKind, **extra: Any) -> Seal:
    with db.transaction(services.sessions) as session:
        return create_seal(
            session,
            request=SealRequest(department_code=owner, kind=kind, **extra),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
            clock=services.clock,
        )


def _count(services: Services, model: type[Any]) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_enterprise_is_registered_audited_and_listed_apart_from_departments(
    initialised: Services,
) -> None:
    enterprise = _add(initialised)
    assert (enterprise.kind, enterprise.region) == ("enterprise", "330100")
    with initialised.sessions() as session:
        assert [e.code for e in list_enterprises(session)] == [YUANHANG]
        assert YUANHANG not in [d.code for d in list_departments(session)]
        event = session.scalars(
            select(AuditEvent).where(
                AuditEvent.action == "enterprise.create", AuditEvent.target_id == YUANHANG
            )
        ).one()
        assert event.target_type == "enterprise"


@pytest.mark.parametrize(
    ("code", "name", "message"),
    [
        ("9133010052CL12THX0", "校验位错误示例有限公司", "check character"),
        ("91330100ABC", "长度错误示例有限公司", "18 characters"),
        (RUIFENG, "", "name must not be empty"),
    ],
)
def test_a_bad_enterprise_is_refused_and_nothing_is_written(
    initialised: Services, code: str, name: str, message: str
) -> None:
    before = _count(initialised, Department), _count(initialised, AuditEvent)
    with pytest.raises(InvalidInputError, match=message):
        _add(initialised, code, name)
    assert (_count(initialised, Department), _count(initialised, AuditEvent)) == before


def test_a_code_is_registered_once_whatever_its_kind(initialised: Services) -> None:
    _add(initialised)
    with pytest.raises(ConflictError, match=f"An enterprise with code {YUANHANG} already exists"):
        _add(initialised)
    with pytest.raises(
        ConflictError, match=f"A department with code {DEMO_DEPARTMENT_CODE} already exists"
    ):
        _add(initialised, DEMO_DEPARTMENT_CODE, "冒名企业")


def test_an_enterprise_is_not_a_department_where_a_department_is_asked_for(
    initialised: Services,
) -> None:
    _add(initialised)
    with initialised.sessions() as session:
        with pytest.raises(NotFoundError, match="is an enterprise, not a department"):
            get_department(session, YUANHANG)
        with pytest.raises(NotFoundError, match="is a department, not an enterprise"):
            get_enterprise(session, DEMO_DEPARTMENT_CODE)


@pytest.mark.parametrize("kind", [SealKind.OFFICIAL, SealKind.CONTRACT])
def test_an_enterprises_seal_certificate_names_it_and_carries_the_enterprise_policy(
    initialised: Services, kind: SealKind
) -> None:
    _add(initialised)
    seal = _seal(initialised, YUANHANG, kind, algorithm=KeyAlgorithm.EC_P256)
    cert = x509.load_der_x509_certificate(seal.certificate_der)
    assert cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == (
        YUANHANG_NAME
    )
    assert cert.subject.get_attributes_for_oid(ORGANIZATION_IDENTIFIER)[0].value == (
        f"NTRCN-{YUANHANG}"
    )
    assert department_code_of(cert) == YUANHANG
    assert seal_kind_of(cert) == kind.value
    assert is_enterprise_seal(cert)
    policies = [
        p.policy_identifier
        for p in cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    ]
    assert ENTERPRISE_SEAL_POLICY in policies
    assert SEAL_POLICY not in policies


def test_openssl_reads_the_enterprise_policy_and_a_departments_seal_lacks_it(
    initialised: Services, tmp_path: Path
) -> None:
    _add(initialised)
    enterprise_seal = _seal(initialised, YUANHANG, SealKind.CONTRACT)
    department_seal = _seal(initialised, DEMO_DEPARTMENT_CODE, SealKind.CONTRACT)
    texts = []
    for seal in (enterprise_seal, department_seal):
        path = tmp_path / f"{seal.id}.der"
        path.write_bytes(seal.certificate_der)
        texts.append(
            subprocess.run(
                ["openssl", "x509", "-inform", "DER", "-in", str(path), "-noout", "-text"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
    assert ENTERPRISE_SEAL_POLICY.dotted_string in texts[0]
    assert SEAL_POLICY.dotted_string not in texts[0]
    assert SEAL_POLICY.dotted_string in texts[1]
    assert ENTERPRISE_SEAL_POLICY.dotted_string not in texts[1]
    assert not is_enterprise_seal(x509.load_der_x509_certificate(department_seal.certificate_der))


def test_an_enterprise_holds_no_licence_seal_and_nothing_is_written(initialised: Services) -> None:
    _add(initialised)
    before = _count(initialised, Seal), _count(initialised, AuditEvent)
    with pytest.raises(InvalidInputError, match="one of official, contract, not licence"):
        _seal(initialised, YUANHANG, SealKind.LICENCE)
    assert (_count(initialised, Seal), _count(initialised, AuditEvent)) == before


def test_an_enterprises_client_signs_and_does_nothing_else(initialised: Services) -> None:
    _add(initialised)
    with db.transaction(initialised.sessions) as session:
        client, _ = create_client(
            session, department_code=YUANHANG, name="合同系统", scopes="sign", actor=OPERATOR
        )
        assert client.scopes == "sign"
    for scopes in ("seal", "sign,issue", "read"):
        with (
            pytest.raises(InvalidInputError, match="enterprise's client may hold only sign"),
            db.transaction(initialised.sessions) as session,
        ):
            create_client(
                session, department_code=YUANHANG, name="x", scopes=scopes, actor=OPERATOR
            )
    with (
        pytest.raises(InvalidInputError, match="sign is an enterprise's"),
        db.transaction(initialised.sessions) as session,
    ):
        create_client(
            session, department_code=DEMO_DEPARTMENT_CODE, name="x", scopes="sign", actor=OPERATOR
        )


def test_an_enterprises_token_cannot_issue_or_read_registry_records(
    api_client: TestClient, initialised: Services
) -> None:
    _add(initialised)
    with db.transaction(initialised.sessions) as session:
        client, secret = create_client(
            session, department_code=YUANHANG, name="合同系统", scopes="sign", actor=OPERATOR
        )
    response = api_client.post(
        "/v1/token", data={"grant_type": "client_credentials"}, auth=(client.id, secret)
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "sign"
    headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
    issued = api_client.post(
        "/v1/certificates",
        json={"type": "business_licence", "fields": {}},
        headers=headers | {"Idempotency-Key": "enterprise-tries"},
    )
    assert issued.status_code == 403
    assert issued.headers["content-type"] == "application/problem+json"
    assert api_client.get("/v1/certificates", headers=headers).status_code == 403
    # Its own seals, and only those, it may list: it needs their ids to seal.
    seal = _seal(initialised, YUANHANG, SealKind.CONTRACT)
    listed = api_client.get("/v1/seals", headers=headers)
    assert listed.status_code == 200
    assert [s["id"] for s in listed.json()] == [seal.id]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    status = run([*args, "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def test_the_command_line_registers_an_enterprise_its_seals_and_its_client(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init"]) == 0
    added = _cli(capsys, "enterprises", "add", "--code", YUANHANG, "--name", YUANHANG_NAME)
    assert (added["code"], added["kind"]) == (YUANHANG, "enterprise")
    assert [e["code"] for e in _cli(capsys, "enterprises", "list")] == [YUANHANG]
    assert YUANHANG not in [d["code"] for d in _cli(capsys, "departments", "list")]
    seal = _cli(capsys, "seals", "create", "--enterprise", YUANHANG, "--kind", "contract")
    assert (seal["department"], seal["kind"]) == (YUANHANG, "contract")
    client = _cli(capsys, "clients", "create", "--enterprise", YUANHANG, "--scopes", "sign")
    assert client["scopes"] == ["sign"]
    assert client["client_secret"]


@pytest.mark.parametrize(
    "args",
    [
        ["seals", "create", "--kind", "official"],
        ["seals", "create", "--enterprise", YUANHANG, "--department", DEMO_DEPARTMENT_CODE],
        ["clients", "create", "--scopes", "sign"],
    ],
)
def test_the_command_line_wants_exactly_one_owner(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert run(["init"]) == 0
    capsys.readouterr()
    assert run(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "usage error: Give either --department or --enterprise (one of them).\n"


def test_a_bad_enterprise_on_the_command_line_is_one_line(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init"]) == 0
    capsys.readouterr()
    status = run(["enterprises", "add", "--code", "9133010052CL12THX0", "--name", "某公司"])
    err = capsys.readouterr().err
    assert status != 0
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    assert "check character" in err
