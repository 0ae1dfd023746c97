"""Dual seals (双算法签章): the department's ECDSA seal certifies with form filling allowed and
its SM2 seal approves after it, so that pdfsig and pyHanko accept the ECDSA seal with its
certification intact while OpenSSL accepts the SM2 one; each sealing with an SM2 seal keeps
its GB/T 38540 SES_Signature with the document, downloadable by its department alone."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from econtract import audit, db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.cli import run
from econtract.departments import add_department
from econtract.models import Seal, SealKind
from econtract.sealing import seal_document
from econtract.services import Services
from econtract.ses.asn1 import SESSignature
from keys.signer import to_asn1
from signing.options import SealLevel, SealOptions
from tests.econtract.test_cli import cli_json
from tests.econtract.test_sm2_sealing import cli_seal, documents, sm2_seal, sm2_signed
from tests.factories import OPERATOR, token_for
from tests.licences import issue_example
from tests.signing.sealing import make_pdf, pdfsig, qpdf_check
from tests.signing.sm2 import embedded_seals, sm3

OTHER_CODE = "9133100015J1YG617W"


def official_seal(services: Services) -> Seal:
    """The demo department's ECDSA official seal, made by ``econtract init``."""
    with services.sessions() as session:
        [seal] = [
            s
            for s in session.query(Seal).filter_by(kind=SealKind.OFFICIAL.value)
            if s.algorithm != "sm2" and s.department.code == DEMO_DEPARTMENT_CODE
        ]
        session.expunge(seal)
    return seal


def ecdsa_then_sm2(pdf: bytes, tmp_path: Path) -> None:
    """The ECDSA (or RSA) seal certifies with form filling allowed and pdfsig accepts it; the
    SM2 seal follows in the field reserved for it and OpenSSL accepts its signature."""
    certifying, approving = embedded_seals(pdf)
    assert approving.field_name.startswith("SM2-")
    assert approving.message_digest == sm3(approving.covered_bytes(pdf))
    sm2_signed(approving, tmp_path)
    path = tmp_path / "dual.pdf"
    path.write_bytes(pdf)
    # pdfsig lists the seals in the order of the form's fields, the reserved SM2 field first.
    blocks = {
        block.split("\n", 1)[0].split(": ")[-1]: block
        for block in pdfsig(path, "-nocert").split("Signature Field Name")[1:]
    }
    assert "Signing Hash Algorithm: SHA-256" in blocks[certifying.field_name]
    assert "Signature Validation: Signature is Valid." in blocks[certifying.field_name]
    assert "Signing Hash Algorithm: unknown" in blocks[approving.field_name]
    assert qpdf_check(path).returncode == 0


def pyhanko_status_of_certification(services: Services, pdf: bytes) -> object:
    """pyHanko's verdict on the certifying seal, trusting the service's first root."""
    reader = PdfFileReader(io.BytesIO(pdf))
    certifying = reader.embedded_regular_signatures[0]
    vc = ValidationContext(
        trust_roots=[to_asn1(services.pki.root.certificate)],
        allow_fetching=False,
        revocation_mode="soft-fail",
    )
    return validate_pdf_signature(certifying, vc, ts_validation_context=vc)


def test_econtract_seal_dual_certifies_with_ecdsa_and_approves_with_sm2(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cli_json(capsys, "init")
    sm2 = cli_json(
        capsys, "seals", "create", "--department", DEMO_DEPARTMENT_CODE, "--algorithm", "sm2",
        "--kind", "official",
    )  # fmt: skip
    row, pdf = cli_seal(
        capsys, tmp_path, str(sm2["id"]), "--dual", "--level", "B-LTA", "--visible", "1:450,150"
    )
    assert row["dual_seal"] == sm2["id"]
    assert row["seal"] != sm2["id"]
    assert row["level"] == "B-LTA"
    assert row["ses_signature"]
    ecdsa_then_sm2(pdf, tmp_path)


def test_pyhanko_finds_the_certification_intact_after_the_sm2_seal(
    initialised: Services, tmp_path: Path
) -> None:
    sm2 = sm2_seal(initialised, SealKind.OFFICIAL)
    sealed = seal_document(
        initialised,
        source=io.BytesIO(make_pdf(1)),
        seal_id=official_seal(initialised).id,
        options=SealOptions.from_text(level=SealLevel.B_LT, visible="1:450,150"),
        actor=audit.Actor.operator("test"),
        dual=True,
    )
    assert sealed.dual_seal_id == sm2.id
    pdf = initialised.blobs.open(sealed.document.blob_key).read()
    ecdsa_then_sm2(pdf, tmp_path)
    status = pyhanko_status_of_certification(initialised, pdf)
    assert status.bottom_line  # type: ignore[attr-defined]
    assert status.intact  # type: ignore[attr-defined]
    assert status.docmdp_ok  # type: ignore[attr-defined]
    # The SM2 seal's revision is no more than DocMDP 2 allows.
    assert status.modification_level <= ModificationLevel.FORM_FILLING  # type: ignore[attr-defined]


def test_a_dual_seal_is_refused_without_a_seal_of_the_other_family(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    init = cli_json(capsys, "init")
    source = tmp_path / "in.pdf"
    source.write_bytes(make_pdf(1))
    capsys.readouterr()
    # The demo department's seals are RSA and ECDSA: none is SM2.
    status = run(["seal", str(source), "-o", str(tmp_path / "out.pdf"), "--seal",
                  init["seals_created"][0], "--dual"])  # fmt: skip
    err = capsys.readouterr().err
    assert status != 0
    assert "dual seal needs an active" in err
    assert "(SM2)" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.pdf").exists()


def test_a_dual_seal_refuses_no_changes_certification(
    api_client: TestClient, initialised: Services
) -> None:
    sm2 = sm2_seal(initialised, SealKind.OFFICIAL)
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal,read")
    response = api_client.post(
        "/v1/documents/seal",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("a.pdf", make_pdf(1), "application/pdf")},
        data={"seal": sm2.id, "dual": "true", "certify": "no-changes"},
    )
    assert response.status_code == 422, response.text
    assert "'no-changes' would forbid it" in response.json()["detail"]
    assert documents(initialised) == 0


def test_the_api_dual_seals_and_serves_the_sm2_seals_ses_signature(
    api_client: TestClient, initialised: Services, cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    sm2 = sm2_seal(initialised, SealKind.OFFICIAL)
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal,read")
    headers = {"Authorization": f"Bearer {token}"}
    response = api_client.post(
        "/v1/documents/seal",
        headers=headers,
        files={"file": ("a.pdf", make_pdf(1), "application/pdf")},
        data={"seal": sm2.id, "dual": "true", "level": "B-T"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["seal_id"] == official_seal(initialised).id
    pdf = api_client.get(body["pdf_url"], headers=headers).content
    ecdsa_then_sm2(pdf, tmp_path)
    assert (
        api_client.get(f"/v1/documents/{body['id']}", headers=headers).json()["ses_signature_url"]
        == body["ses_signature_url"]
    )

    download = api_client.get(body["ses_signature_url"], headers=headers)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    signature = SESSignature.load(download.content)
    # Its data hash is the SM2 seal's message digest, SM3 over its /ByteRange.
    _, approving = embedded_seals(pdf)
    assert signature["to_sign"]["data_hash"].native == approving.message_digest
    assert signature["to_sign"]["eseal"]["e_seal_info"]["es_id"].native == sm2.id
    assert signature["time_stamp"].native is not None
    path = tmp_path / "signature.dat"
    path.write_bytes(download.content)
    capsys.readouterr()
    status = run(["ses", "verify", str(path)])
    out = capsys.readouterr().out
    assert status == 0, out
    assert "VERIFIED" in out

    # Another department's client finds neither the document nor its signature.
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=OTHER_CODE, name="台州市建设局", region=None, actor=OPERATOR)
    other = token_for(api_client, initialised, OTHER_CODE, "seal,read")
    refused = api_client.get(
        body["ses_signature_url"], headers={"Authorization": f"Bearer {other}"}
    )
    assert refused.status_code == 404


def test_an_ecdsa_sealing_has_no_ses_signature(
    api_client: TestClient, initialised: Services
) -> None:
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "seal,read")
    headers = {"Authorization": f"Bearer {token}"}
    response = api_client.post(
        "/v1/documents/seal",
        headers=headers,
        files={"file": ("a.pdf", make_pdf(1), "application/pdf")},
        data={"seal": official_seal(initialised).id, "level": "B-B"},
    )
    body = response.json()
    assert body["ses_signature_url"] is None
    missing = api_client.get(f"/v1/documents/{body['id']}/ses-signature", headers=headers)
    assert missing.status_code == 404


def sm2_licence_seal(services: Services) -> Seal:
    """An SM2 licence seal of the demo department, beside its RSA licence seal."""
    return sm2_seal(services, SealKind.LICENCE)


def test_a_licence_type_set_for_dual_seals_is_issued_with_both(
    initialised: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(initialised.settings, "dual_seal_types", ["business_licence"])
    # The newest licence seal is the SM2 one: it still approves after the RSA seal certifies.
    sm2 = sm2_licence_seal(initialised)
    certificate = issue_example(initialised)
    assert certificate.seal_id != sm2.id
    pdf = initialised.blobs.open(certificate.blob_key).read()
    certifying, _ = embedded_seals(pdf)
    assert certifying.field_name == "IssuerSeal"
    assert certificate.signed_digest == certifying.message_digest.hex()
    ecdsa_then_sm2(pdf, tmp_path)
    status = pyhanko_status_of_certification(initialised, pdf)
    assert status.bottom_line  # type: ignore[attr-defined]
    assert status.docmdp_ok  # type: ignore[attr-defined]
    # Another type is issued with one seal, the SM2 one.
    other = issue_example(initialised, "food_business_permit")
    assert other.seal_id == sm2.id
    assert len(embedded_seals(initialised.blobs.open(other.blob_key).read())) == 1


def test_an_sm2_licence_keeps_its_ses_signature_for_its_department(
    api_client: TestClient, initialised: Services, cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    sm2 = sm2_licence_seal(initialised)
    certificate = issue_example(initialised)
    assert certificate.seal_id == sm2.id
    token = token_for(api_client, initialised, DEMO_DEPARTMENT_CODE, "read")
    url = f"/v1/certificates/{certificate.id}/ses-signature"
    download = api_client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert download.status_code == 200, download.text
    signature = SESSignature.load(download.content)
    assert signature["to_sign"]["data_hash"].native.hex() == certificate.signed_digest
    # Licences are issued at B-LT: the signature carries the SM2 authority's timestamp.
    assert signature["time_stamp"].native is not None
    path = tmp_path / "licence.dat"
    path.write_bytes(download.content)
    capsys.readouterr()
    assert run(["ses", "verify", str(path)]) == 0, capsys.readouterr().out

    with db.transaction(initialised.sessions) as session:
        add_department(session, code=OTHER_CODE, name="台州市建设局", region=None, actor=OPERATOR)
    other = token_for(api_client, initialised, OTHER_CODE, "read")
    assert api_client.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 404
