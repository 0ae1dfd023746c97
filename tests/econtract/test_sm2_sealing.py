"""Sealing with an SM2 seal through the service: the command line, POST /v1/documents/seal and
issuance with an SM2 licence seal make SM2 seals at B-B; the levels that need SM2 timestamps,
CRLs or OCSP answers are refused in one line; verifying such a file answers, without crashing,
that the seal cannot be judged yet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.models import Seal, SealedDocument, SealKind
from econtract.seals import SealRequest, create_seal
from econtract.services import Services
from keys import oids
from keys.handles import KeyAlgorithm
from signing.options import SealLevel, SealOptions
from signing.sealer import SealingContext, seal_pdf_bytes
from tests.econtract.test_cli import cli_json
from tests.factories import token_for
from tests.licences import issue_example
from tests.signing.sealing import make_pdf
from tests.signing.sm2 import EmbeddedSeal, embedded_seals, openssl_verifies, sm2_identity, sm3

_VERIFIED = "Signature Verified Successfully"


def sm2_seal(services: Services, kind: SealKind = SealKind.LICENCE) -> Seal:
    """A new SM2 seal of the demo department (the newest licence seal is the one issuing)."""
    with db.transaction(services.sessions) as session:
        seal = create_seal(
            session,
            request=SealRequest(
                department_code=DEMO_DEPARTMENT_CODE, kind=kind, algorithm=KeyAlgorithm.SM2
            ),
            key_store=services.key_store,
            pki=services.pki,
            actor=audit.Actor.operator("test"),
            clock=services.clock,
        )
        session.expunge(seal)
    return seal


def only_sm2_seal(pdf: bytes, tmp_path: Path) -> EmbeddedSeal:
    """The file's one seal, checked to be SM2 with SM3 over its ``/ByteRange``."""
    [seal] = embedded_seals(pdf)
    assert seal.sub_filter == "/ETSI.CAdES.detached"
    assert seal.signer_info["signature_algorithm"]["algorithm"].dotted == oids.SM2_WITH_SM3
    assert seal.message_digest == sm3(seal.covered_bytes(pdf))
    assert _VERIFIED in openssl_verifies(tmp_path, seal)
    return seal


def documents(services: Services) -> int:
    with services.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(SealedDocument)) or 0)


@pytest.fixture
def sm2_cli(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> str:
    """The initialised data directory of the command line, with an SM2 seal; its id."""
    cli_json(capsys, "init")
    row = cli_json(
        capsys, "seals", "create", "--department", DEMO_DEPARTMENT_CODE, "--algorithm", "sm2"
    )
    return str(row["id"])


def test_econtract_seal_makes_an_sm2_seal_at_b_b(
    sm2_cli: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "in.pdf"
    source.write_bytes(make_pdf(1))
    out = tmp_path / "out.pdf"
    row = cli_json(
        capsys, "seal", str(source), "-o", str(out), "--seal", sm2_cli, "--level", "B-B",
        "--certify", "no-changes", "--visible", "1:450,150",
    )  # fmt: skip
    assert row["level"] == "B-B"
    seal = only_sm2_seal(out.read_bytes(), tmp_path)
    # The registry knows the document by the seal's SM3 message digest.
    assert row["signed_digest"] == seal.message_digest.hex()


@pytest.mark.parametrize("level", ["B-T", "B-LT", "B-LTA"])
def test_econtract_seal_refuses_a_level_sm2_cannot_reach_yet_in_one_line(
    sm2_cli: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, level: str
) -> None:
    source = tmp_path / "in.pdf"
    source.write_bytes(make_pdf(1))
    out = tmp_path / "out.pdf"
    capsys.readouterr()
    status = run(["seal", str(source), "-o", str(out), "--seal", sm2_cli, "--level", level])
    assert status == 1
    assert capsys.readouterr().err == (
        f"error: SM2 seals cannot seal at {level} yet (no SM2 timestamps, CRLs or OCSP "
        "answers); seal at B-B.\n"
    )
    assert not out.exists()


def test_the_api_seals_an_upload_with_an_sm2_seal(
    api_client: TestClient, initialised: Services, tmp_path: Path
) -> None:
    seal = sm2_seal(initialised, SealKind.OFFICIAL)
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal,read")
    headers = {"Authorization": f"Bearer {token}"}
    response = api_client.post(
        "/v1/documents/seal",
        headers=headers,
        files={"file": ("申请书.pdf", make_pdf(1), "application/pdf")},
        data={"seal": seal.id, "level": "B-B", "visible": "1:450,150"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["level"] == "B-B"
    pdf = api_client.get(body["pdf_url"], headers=headers).content
    embedded = only_sm2_seal(pdf, tmp_path)
    assert body["signed_digest"] == embedded.message_digest.hex()


def test_the_api_refuses_an_sm2_seal_at_b_lt_with_409_and_registers_nothing(
    api_client: TestClient, initialised: Services
) -> None:
    seal = sm2_seal(initialised, SealKind.OFFICIAL)
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal,read")
    before = documents(initialised)
    response = api_client.post(
        "/v1/documents/seal",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("申请书.pdf", make_pdf(1), "application/pdf")},
        data={"seal": seal.id},  # the default level, B-LT
    )
    assert response.status_code == 409
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "SM2 seals cannot seal at B-LT yet" in response.json()["detail"]
    assert documents(initialised) == before


def test_a_licence_issued_with_an_sm2_licence_seal_is_certified_with_it(
    initialised: Services, tmp_path: Path
) -> None:
    seal = sm2_seal(initialised)
    certificate = issue_example(initialised)
    assert certificate.seal_id == seal.id
    pdf = (initialised.settings.blob_dir / certificate.blob_key).read_bytes()
    embedded = only_sm2_seal(pdf, tmp_path)
    assert embedded.field_name == "IssuerSeal"
    assert certificate.signed_digest == embedded.message_digest.hex()
    # No validation data: an SM2 licence is issued at B-B until SM2 CRLs and OCSP exist.
    assert b"/DSS" not in pdf


_SM2_UNSUPPORTED = (
    "The signature cannot be processed: UnsupportedAlgorithm: Curve 1.2.156.10197.1.301 is not "
    "supported."
)


def test_econtract_verify_reports_an_sm2_seal_it_cannot_check_without_crashing(
    initialised: Services, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    # An SM2 seal this service did not make: the verifier checks no SM2 signature yet, so it
    # names the SM2 curve it cannot process and, unable to tell the seal from a forgery,
    # does not call it valid.
    pdf, _ = seal_pdf_bytes(
        make_pdf(1),
        identity=sm2_identity(),
        options=SealOptions(level=SealLevel.B_B),
        context=SealingContext(),
    )
    path = tmp_path / "sealed.pdf"
    path.write_bytes(pdf)
    capsys.readouterr()
    status = run(["verify", str(path), "--json"])
    out = capsys.readouterr()
    assert status == 1, out.err
    report = json.loads(out.out)
    assert report["verdict"] == "INVALID"
    [signature] = report["signatures"]
    assert signature["problems"] == [_SM2_UNSUPPORTED]
    assert [r["code"] for r in report["reasons"]][-1] == "not-issued-here"


def test_post_verify_finds_an_sm2_licence_in_the_registry(
    api_client: TestClient, initialised: Services
) -> None:
    # The file is byte for byte the one issued: the registry's status is the verdict, and the
    # seal's entry says why it was not checked itself.
    sm2_seal(initialised)
    certificate = issue_example(initialised)
    pdf = (initialised.settings.blob_dir / certificate.blob_key).read_bytes()
    response = api_client.post(
        "/v1/verify", files={"file": ("licence.pdf", pdf, "application/pdf")}
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["verdict"] == "VALID"
    assert [r["code"] for r in report["reasons"]] == ["registry-valid"]
    assert report["registry"]["record_id"] == certificate.id
    [signature] = report["signatures"]
    assert signature["field_name"] == "IssuerSeal"
    assert signature["problems"] == [_SM2_UNSUPPORTED]
