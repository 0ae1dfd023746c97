"""Sealing with an SM2 seal through the service: the command line, POST /v1/documents/seal and
issuance with an SM2 licence seal make SM2 seals at every PAdES level, timestamped by the SM2
timestamp authority and with the SM2 hierarchy's validation data; verifying such a file
checks the SM2 seal to the service's SM2 root."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from asn1crypto.crl import CertificateList
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
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
from tests.signing.sm2 import (
    EmbeddedSeal,
    document_timestamps,
    embedded_seals,
    openssl_verifies,
    sm2_identity,
    sm3,
)

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
    assert seal.message_digest == sm3(seal.covered_bytes(pdf))
    sm2_signed(seal, tmp_path)
    return seal


def sm2_signed(content: EmbeddedSeal, tmp_path: Path) -> None:
    """A CMS of the SM2 hierarchy: SM3, SM2-with-SM3, and OpenSSL accepts its signature."""
    info = content.signer_info
    assert info["digest_algorithm"]["algorithm"].dotted == oids.SM3
    assert info["signature_algorithm"]["algorithm"].dotted == oids.SM2_WITH_SM3
    assert _VERIFIED in openssl_verifies(tmp_path, content)


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


def cli_seal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, seal_id: str, *options: str
) -> tuple[dict[str, str], bytes]:
    """``econtract seal`` of a one-page PDF with ``options``; the printed row and the file."""
    source = tmp_path / "in.pdf"
    source.write_bytes(make_pdf(1))
    out = tmp_path / "out.pdf"
    row = cli_json(capsys, "seal", str(source), "-o", str(out), "--seal", seal_id, *options)
    return row, out.read_bytes()


def test_econtract_seal_makes_an_sm2_seal_at_b_b(
    sm2_cli: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    row, pdf = cli_seal(
        capsys, tmp_path, sm2_cli, "--level", "B-B", "--certify", "no-changes",
        "--visible", "1:450,150",
    )  # fmt: skip
    assert row["level"] == "B-B"
    seal = only_sm2_seal(pdf, tmp_path)
    # The registry knows the document by the seal's SM3 message digest.
    assert row["signed_digest"] == seal.message_digest.hex()


def test_econtract_seal_makes_an_sm2_seal_at_b_lta(
    sm2_cli: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    row, pdf = cli_seal(capsys, tmp_path, sm2_cli, "--level", "B-LTA")
    assert row["level"] == "B-LTA"
    seal = only_sm2_seal(pdf, tmp_path)
    # The signature timestamp is the SM2 authority's, over SM3 of the seal's signature.
    token = seal.signature_timestamp
    sm2_signed(token, tmp_path)
    imprint = token.signed_data["encap_content_info"]["content"].parsed["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].dotted == oids.SM3
    assert imprint["hashed_message"].native == sm3(seal.signer_info["signature"].native)
    # The validation data are the SM2 hierarchy's CRLs, and the document timestamp is SM2 too.
    dss = PdfFileReader(io.BytesIO(pdf)).root["/DSS"]
    crls = [CertificateList.load(ref.get_object().data) for ref in dss["/CRLs"]]
    assert crls
    assert {crl["signature_algorithm"]["algorithm"].dotted for crl in crls} == {oids.SM2_WITH_SM3}
    [document_timestamp] = document_timestamps(pdf)
    sm2_signed(document_timestamp, tmp_path)


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
        data={"seal": seal.id, "level": "B-T", "visible": "1:450,150"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["level"] == "B-T"
    pdf = api_client.get(body["pdf_url"], headers=headers).content
    embedded = only_sm2_seal(pdf, tmp_path)
    assert body["signed_digest"] == embedded.message_digest.hex()
    sm2_signed(embedded.signature_timestamp, tmp_path)
    assert documents(initialised) == 1


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
    # Issued at B-LT like every licence: timestamped and with the SM2 hierarchy's CRLs.
    sm2_signed(embedded.signature_timestamp, tmp_path)
    dss = PdfFileReader(io.BytesIO(pdf)).root["/DSS"]
    assert len(dss["/CRLs"]) == 2


def test_econtract_verify_refuses_an_sm2_seal_of_another_sm2_hierarchy(
    initialised: Services, cli_env: dict[str, str], capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:  # fmt: skip
    # An SM2 seal certified by an SM2 CA this service does not trust: its signature checks,
    # but no chain reaches the service's SM2 root.
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
    assert signature["intact"]
    assert signature["valid"]
    assert not signature["trusted"]
    assert signature["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"
    assert [r["code"] for r in report["reasons"]][-1] == "not-issued-here"


def test_post_verify_finds_an_sm2_licence_in_the_registry(
    api_client: TestClient, initialised: Services
) -> None:
    # The file is byte for byte the one issued, and its SM2 seal checks to the SM2 root.
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
    assert signature["indication"] == "TOTAL_PASSED"
    assert signature["problems"] == []
