"""Annotated copies (加注件) over HTTP: made with a grant, marked on every page, sealed by the
platform seal, the original attached byte for byte; refusals answered 403 and recorded."""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import initialise
from econtract.cli._registry import SealKindChoice
from econtract.departments import add_department
from econtract.models import Certificate, Seal, SealedDocument, SealKind, UsageRecord
from econtract.services import Services
from econtract.sharing import add_grant
from tests.factories import OPERATOR, token_for
from tests.licences import issue_example
from verify.pdf import verify_pdf
from verify.policy import VerificationPolicy
from verify.report import Verdict

USER = "9133100015J1YG617W"
USER_NAME = "台州市建设局"
MATTER = "建设工程施工许可"


def _grant(services: Services, *, requires_consent: bool, matter: str = MATTER) -> None:
    with db.transaction(services.sessions) as session:
        add_department(session, code=USER, name=USER_NAME, region=None, actor=OPERATOR)
        add_grant(
            session,
            department_code=USER,
            type_code="business_licence",
            matters=[matter],
            requires_consent=requires_consent,
            actor=OPERATOR,
            clock=services.clock,
        )


def _ask(api_client: TestClient, services: Services, licence: Certificate) -> object:
    token = token_for(api_client, services, USER, "use")
    return api_client.post(
        "/v1/use/copies",
        json={"identifier": licence.identifier, "use_cause": "审核施工许可申请", "matter": MATTER},
        headers={"Authorization": f"Bearer {token}"},
    )


@pytest.fixture
def copy_file(api_client: TestClient, initialised: Services, tmp_path: Path) -> Path:
    """A copy made over HTTP with a grant that needs no consent, written to a file."""
    _grant(initialised, requires_consent=False)
    licence = issue_example(initialised)
    response = _ask(api_client, initialised, licence)
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/pdf"  # type: ignore[attr-defined]
    path = tmp_path / "copy.pdf"
    path.write_bytes(response.content)  # type: ignore[attr-defined]
    (tmp_path / "identifier").write_text(licence.identifier)
    (tmp_path / "original.pdf").write_bytes(initialised.blobs.open(licence.blob_key).read())
    return path


def _policy(services: Services) -> VerificationPolicy:
    return VerificationPolicy(trust_roots=(services.pki.root.certificate,))


def test_init_creates_one_platform_seal_for_the_platform_body(initialised: Services) -> None:
    again = initialise(initialised)
    assert again.platform_seal_created is None
    with initialised.sessions() as session:
        seals = list(session.scalars(select(Seal).where(Seal.kind == SealKind.PLATFORM.value)))
        assert len(seals) == 1
        assert seals[0].department.code == initialised.settings.platform_code


def test_the_command_line_never_offers_a_platform_seal() -> None:
    assert "platform" not in {choice.value for choice in SealKindChoice}


def test_copy_is_registered_as_a_platform_document_and_its_use_recorded(
    copy_file: Path, initialised: Services
) -> None:
    with initialised.sessions() as session:
        document = session.scalars(
            select(SealedDocument).where(SealedDocument.file_name.like("%-copy.pdf"))
        ).one()
        seal = session.get(Seal, document.seal_id)
        assert seal is not None
        assert seal.kind == SealKind.PLATFORM.value
        record = session.scalars(select(UsageRecord).where(UsageRecord.action == "copy")).one()
        assert record.result == "granted"


def test_pdfsig_finds_the_copy_signature_valid(copy_file: Path) -> None:
    done = subprocess.run(
        ["pdfsig", "-nocert", str(copy_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    report = done.stdout + done.stderr
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Signature is Invalid" not in report, report


def test_qpdf_checks_the_copy(copy_file: Path) -> None:
    done = subprocess.run(
        ["qpdf", "--check", str(copy_file)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "No syntax or stream encoding errors found" in done.stdout


def test_the_attachment_is_the_original_byte_for_byte_and_verifies_valid(
    copy_file: Path, initialised: Services
) -> None:
    name = (copy_file.parent / "identifier").read_text() + ".pdf"
    extracted = subprocess.run(
        ["qpdf", f"--show-attachment={name}", str(copy_file)], capture_output=True, check=True
    ).stdout
    assert extracted == (copy_file.parent / "original.pdf").read_bytes()
    assert verify_pdf(extracted, policy=_policy(initialised)).verdict is Verdict.VALID


def test_the_statement_says_for_whom_for_what_and_until_when(
    copy_file: Path, initialised: Services
) -> None:
    statement = json.loads(
        subprocess.run(
            ["qpdf", "--show-attachment=econtract-annotation.json", str(copy_file)],
            capture_output=True,
            check=True,
        ).stdout
    )
    assert statement["for_department"] == {"code": USER, "name": USER_NAME}
    assert statement["matter"] == MATTER
    today = initialised.clock.today()
    assert statement["valid_until"] == (today + timedelta(days=30)).isoformat()
    assert statement["original"]["identifier"] == (copy_file.parent / "identifier").read_text()
    assert statement["usage_id"].startswith("use_")


def test_every_page_is_marked_for_the_department_and_the_matter(copy_file: Path) -> None:
    text = subprocess.run(
        ["pdftotext", "-raw", str(copy_file), "-"], capture_output=True, text=True, check=True
    ).stdout
    pages = [page for page in text.split("\f") if page.strip()]
    assert pages
    for page in pages:
        assert f"仅供{USER_NAME}办理{MATTER}使用" in page
        assert f"For {MATTER} by {USER_NAME} only" in page


def test_the_copy_seal_verifies_valid(copy_file: Path, initialised: Services) -> None:
    report = verify_pdf(copy_file.read_bytes(), policy=_policy(initialised))
    assert report.verdict is Verdict.VALID, report.reasons


def test_no_grant_is_refused_and_recorded(api_client: TestClient, initialised: Services) -> None:
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=USER, name=USER_NAME, region=None, actor=OPERATOR)
    licence = issue_example(initialised)
    response = _ask(api_client, initialised, licence)
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert response.json()["type"] == "urn:econtract:problem:no-grant"  # type: ignore[attr-defined]
    with initialised.sessions() as session:
        record = session.scalars(select(UsageRecord).where(UsageRecord.action == "copy")).one()
        assert record.result == "no-grant"
        assert session.scalars(select(SealedDocument)).first() is None


def test_missing_consent_is_refused_and_recorded(
    api_client: TestClient, initialised: Services
) -> None:
    _grant(initialised, requires_consent=True)
    licence = issue_example(initialised)
    response = _ask(api_client, initialised, licence)
    assert response.status_code == 403  # type: ignore[attr-defined]
    assert response.json()["type"] == "urn:econtract:problem:consent-required"  # type: ignore[attr-defined]
    with initialised.sessions() as session:
        record = session.scalars(select(UsageRecord).where(UsageRecord.action == "copy")).one()
        assert record.result == "consent-required"


def test_a_matter_the_font_cannot_draw_is_refused_by_pointer_before_any_use(
    api_client: TestClient, initialised: Services
) -> None:
    # U+20000 (𠀀) is a CJK Extension B ideograph, outside the font's U+4E00-U+9FFF.
    matter = MATTER + "\U00020000"
    _grant(initialised, requires_consent=False, matter=matter)
    licence = issue_example(initialised)
    token = token_for(api_client, initialised, USER, "use")
    response = api_client.post(
        "/v1/use/copies",
        json={"identifier": licence.identifier, "use_cause": "审核施工许可申请", "matter": matter},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 422, response.text
    assert "U+20000" in response.json()["detail"]
    assert response.json()["errors"][0]["pointer"] == "/matter"
    with initialised.sessions() as session:
        assert session.scalars(select(UsageRecord)).first() is None
        assert session.scalars(select(SealedDocument)).first() is None
