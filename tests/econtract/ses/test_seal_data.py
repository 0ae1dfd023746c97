"""Every SM2 seal gets its SESeal at creation; a department downloads only its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.cli._app import open_services
from econtract.departments import add_department
from econtract.models import Seal, SealKind
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from econtract.ses import check_ses
from econtract.ses.asn1 import CertInfoList, SESSeal
from econtract.ses.seal_data import get_seal_data
from keys.handles import KeyAlgorithm
from tests.factories import OPERATOR, token_for
from tests.licences import fresh_credit_code

OTHER_DEPARTMENT = fresh_credit_code()


def _seal(services: Services, algorithm: KeyAlgorithm, code: str = DEMO_DEPARTMENT_CODE) -> Seal:
    with db.transaction(services.sessions) as session:
        return create_seal(
            session,
            request=SealRequest(department_code=code, kind=SealKind.LICENCE, algorithm=algorithm),
            key_store=services.key_store,
            pki=services.pki,
            actor=OPERATOR,
            clock=services.clock,
        )


def _anchors(services: Services) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in services.pki.sm2_ca_certificates.values()]


def test_an_sm2_seal_has_its_seal_data_signed_by_the_sm2_issuing_ca(
    api_client: TestClient, initialised: Services
) -> None:
    seal = _seal(initialised, KeyAlgorithm.SM2)
    token = token_for(api_client, initialised, scopes="read")
    response = api_client.get(
        f"/v1/seals/{seal.id}/ses", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    report = check_ses(response.content, anchors=_anchors(initialised))
    assert report.problems == ()
    values = {en: value for _, en, value in report.fields}
    assert values["Seal id"] == seal.id
    assert values["seal maker chain"] == "至本服务 SM2 根 to the service's SM2 root"
    parsed = SESSeal.load(response.content)
    maker = initialised.pki.sm2_ca_certificates["sm2-issuing"]
    assert parsed["cert"].native == maker.public_bytes(Encoding.DER)
    certs = CertInfoList.load(parsed["e_seal_info"]["property"]["cert_list"].dump())
    assert [c.native for c in certs] == [seal.certificate_der]


def test_another_departments_seal_data_is_404(
    api_client: TestClient, initialised: Services
) -> None:
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=OTHER_DEPARTMENT, name="另一部门", region=None, actor=OPERATOR)
    theirs = _seal(initialised, KeyAlgorithm.SM2, OTHER_DEPARTMENT)
    token = token_for(api_client, initialised, scopes="read")
    response = api_client.get(
        f"/v1/seals/{theirs.id}/ses", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert theirs.id in response.json()["detail"]
    own = token_for(api_client, initialised, OTHER_DEPARTMENT, scopes="read")
    mine = api_client.get(f"/v1/seals/{theirs.id}/ses", headers={"Authorization": f"Bearer {own}"})
    assert mine.status_code == 200


@pytest.mark.parametrize("path", ["/v1/seals/seal-absent/ses", "/v1/seals/{rsa}/ses"])
def test_no_seal_data_is_404(path: str, api_client: TestClient, initialised: Services) -> None:
    rsa = _seal(initialised, KeyAlgorithm.RSA_2048)
    token = token_for(api_client, initialised, scopes="read")
    response = api_client.get(path.format(rsa=rsa.id), headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 404


def test_seal_data_needs_a_reading_scope(api_client: TestClient, initialised: Services) -> None:
    seal = _seal(initialised, KeyAlgorithm.SM2)
    token = token_for(api_client, initialised, scopes="issue")
    response = api_client.get(
        f"/v1/seals/{seal.id}/ses", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 403


def test_the_cli_checks_the_chain_to_the_local_sm2_root(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["init"]) == 0
    capsys.readouterr()
    args = ["--department", DEMO_DEPARTMENT_CODE, "--kind", "licence", "--algorithm", "sm2"]
    assert run(["seals", "create", *args, "--json"]) == 0
    seal_id = json.loads(capsys.readouterr().out)["id"]
    services = open_services()
    try:
        with services.sessions() as session:
            seal = session.get(Seal, seal_id)
            assert seal is not None
            (tmp_path / "seal.esl").write_bytes(get_seal_data(session, seal))
    finally:
        services.dispose()
    assert run(["ses", "verify", str(tmp_path / "seal.esl")]) == 0
    out = capsys.readouterr().out
    assert "制章者证书链 seal maker chain: 至本服务 SM2 根 to the service's SM2 root" in out
