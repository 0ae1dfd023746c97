"""Annotated copies (加注件) verified as such: for whom, for what, until when, and the original's
own verdict; a copy out of its date, forged, edited, re-attributed or of a revoked licence is
never VALID."""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from sqlalchemy import select

from econtract import audit
from econtract.certificates import change_status
from econtract.models import Seal, SealKind
from econtract.report_pdf import report_pdf
from econtract.sealing import SealOptions, seal_document
from econtract.services import Services
from econtract.sharing._copies import platform_seal
from econtract.verification import service_policy, verify_upload
from signing import annotation
from signing.annotation import CopyContent, annotated_pdf
from signing.options import Certification, SealLevel
from tests.factories import OPERATOR, token_for
from tests.licences import issue_example
from tests.sharing.consents import MATTER, USER, add_user, grant
from tests.testpki import TestPKI
from tests.verify import forge
from verify import annotated
from verify.pdf import verify_pdf
from verify.report import Report, Verdict, report_schema

USER_NAME = "台州市建设局"
OTHER = "91330100MA27XL0E2Y"
OTHER_NAME = "杭州市市场监督管理局"
ECONTRACT = str(Path(__file__).resolve().parents[2] / ".venv" / "bin" / "econtract")


@dataclasses.dataclass(frozen=True)
class Made:
    """A copy made over HTTP, with what it was made of."""

    pdf: bytes
    licence_id: str
    identifier: str
    original: bytes


@pytest.fixture
def made(api_client: TestClient, initialised: Services) -> Made:
    """A fresh copy, asked for by the using department with a grant that needs no consent."""
    add_user(initialised, USER, USER_NAME)
    grant(initialised)
    licence = issue_example(initialised)
    token = token_for(api_client, initialised, USER, "use")
    response = api_client.post(
        "/v1/use/copies",
        json={
            "identifier": licence.identifier,
            "use_cause": "审核施工许可申请",
            "matter": MATTER,
            "case_number": "TZ-2026-0042",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.text
    return Made(
        pdf=response.content,
        licence_id=licence.id,
        identifier=licence.identifier,
        original=initialised.blobs.open(licence.blob_key).read(),
    )


def _statement(pdf: bytes) -> dict[str, Any]:
    """The statement as qpdf reads it from the file's last revision."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
        file.write(pdf)
        file.flush()
        done = subprocess.run(
            ["qpdf", f"--show-attachment={annotated.STATEMENT_NAME}", file.name],
            capture_output=True,
            check=True,
        )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _codes(report: Report) -> list[str]:
    return [reason.code for reason in report.reasons]


def test_verification_and_the_copy_agree_on_names() -> None:
    assert annotated.STATEMENT_NAME == annotation.STATEMENT_NAME
    assert annotated.STATEMENT_FORMAT == annotation.STATEMENT_FORMAT
    assert annotated.MARKING_KEY == annotation.MARKING_KEY


def test_a_fresh_copy_is_valid_and_says_for_whom_what_and_until_when(
    made: Made, initialised: Services
) -> None:
    report = verify_upload(initialised, made.pdf)
    assert report.verdict is Verdict.VALID, report.reasons
    assert _codes(report)[0] == "copy-valid"
    copy = report.annotated_copy
    assert copy is not None
    assert copy.for_department is not None
    assert (copy.for_department.code, copy.for_department.name) == (USER, USER_NAME)
    assert copy.matter == MATTER
    assert copy.case_number == "TZ-2026-0042"
    assert copy.valid_until == (initialised.clock.today() + timedelta(days=30)).isoformat()
    assert copy.usage_id is not None
    assert copy.usage_id.startswith("use_")
    assert copy.platform_seal
    assert not copy.expired
    assert not copy.problems
    assert copy.seal_verdict is Verdict.VALID
    assert copy.original.identifier == made.identifier
    assert copy.original.verdict is Verdict.VALID
    assert copy.original.sha256 == copy.original.attached_sha256
    document = json.loads(json.dumps(report.to_json()))
    jsonschema.validate(document, report_schema())
    assert document["annotated_copy"]["original"]["verdict"] == "VALID"
    assert "report" not in document["annotated_copy"]["original"]


def test_after_its_last_day_the_copy_use_has_expired(made: Made, initialised: Services) -> None:
    until = date.fromisoformat(_statement(made.pdf)["valid_until"])
    later = datetime.combine(until + timedelta(days=2), datetime.min.time(), tzinfo=UTC)
    policy = dataclasses.replace(service_policy(initialised), now=later)
    report = verify_pdf(made.pdf, policy=policy)
    assert report.verdict is Verdict.EXPIRED, report.reasons
    assert "copy-use-expired" in _codes(report)
    assert report.annotated_copy is not None
    assert report.annotated_copy.expired


def test_a_copy_of_a_revoked_licence_is_revoked(made: Made, initialised: Services) -> None:
    change_status(
        initialised,
        certificate_id=made.licence_id,
        action="revoke",
        reason="吊销",
        actor=OPERATOR,
    )
    report = verify_upload(initialised, made.pdf)
    assert report.verdict is Verdict.REVOKED, report.reasons
    assert _codes(report)[0] == "original-revoked"
    assert report.annotated_copy is not None
    assert report.annotated_copy.original.verdict is Verdict.REVOKED


def test_a_swapped_original_resealed_by_a_forger_is_invalid(
    made: Made, initialised: Services, pki: TestPKI
) -> None:
    other = issue_example(initialised)
    swapped = initialised.blobs.open(other.blob_key).read()
    statement = _statement(made.pdf)
    statement["original"]["sha256"] = other.pdf_sha256
    content = _content(made, statement, original=swapped, department=USER_NAME)
    forged = forge.seal(pki, annotated_pdf(content), certification=Certification.NO_CHANGES).pdf
    report = verify_upload(initialised, forged)
    assert report.verdict is Verdict.INVALID, report.reasons
    assert report.annotated_copy is not None
    assert not report.annotated_copy.platform_seal


def test_a_statement_edited_after_sealing_is_not_believed(
    made: Made, initialised: Services
) -> None:
    statement = _statement(made.pdf)
    statement["for_department"] = {"code": OTHER, "name": OTHER_NAME}

    def edit(writer: IncrementalPdfFileWriter) -> None:
        names = writer.root["/Names"]["/EmbeddedFiles"]["/Names"]
        items = list(names)
        for name, spec_ref in zip(items[::2], items[1::2], strict=True):
            if str(name) == annotated.STATEMENT_NAME:
                spec = spec_ref.get_object()
                stream = generic.StreamObject(
                    {generic.pdf_name("/Type"): generic.pdf_name("/EmbeddedFile")},
                    stream_data=json.dumps(statement).encode(),
                )
                ref = writer.add_object(stream)
                for key in ("/F", "/UF"):
                    spec["/EF"][generic.pdf_name(key)] = ref
                writer.update_container(spec)

    edited = forge.update(made.pdf, edit)
    assert _statement(edited)["for_department"]["code"] == OTHER
    report = verify_upload(initialised, edited)
    assert report.verdict in (Verdict.MODIFIED, Verdict.INVALID), report.reasons
    # The section is read from the sealed revision: the edit is not believed.
    assert report.annotated_copy is not None
    assert report.annotated_copy.for_department is not None
    assert report.annotated_copy.for_department.code == USER


def test_a_marking_for_another_department_is_not_valid(made: Made, initialised: Services) -> None:
    statement = _statement(made.pdf)
    content = _content(made, statement, original=made.original, department=OTHER_NAME)
    pdf = _platform_sealed(initialised, annotated_pdf(content))
    report = verify_upload(initialised, pdf)
    assert report.verdict is Verdict.INVALID, report.reasons
    assert "copy-marking-mismatch" in _codes(report)
    assert report.annotated_copy is not None
    assert report.annotated_copy.seal_verdict is Verdict.VALID


def test_a_copy_sealed_by_a_department_seal_is_no_annotated_copy(
    made: Made, initialised: Services
) -> None:
    statement = _statement(made.pdf)
    content = _content(made, statement, original=made.original, department=USER_NAME)
    with initialised.sessions() as session:
        seal_id = session.scalars(
            select(Seal.id).where(Seal.kind == SealKind.OFFICIAL.value).limit(1)
        ).one()
    pdf = _platform_sealed(initialised, annotated_pdf(content), seal_id)
    report = verify_upload(initialised, pdf)
    assert report.verdict is Verdict.INVALID, report.reasons
    assert _codes(report)[0] == "copy-not-platform-seal"
    assert report.annotated_copy is not None
    assert report.annotated_copy.seal_verdict is Verdict.VALID


def test_a_malformed_statement_is_invalid_with_its_reason(
    made: Made, initialised: Services
) -> None:
    statement = _statement(made.pdf)
    statement["extra"] = "?"
    content = _content(made, statement, original=made.original, department=USER_NAME)
    pdf = _platform_sealed(initialised, annotated_pdf(content))
    report = verify_upload(initialised, pdf)
    assert report.verdict is Verdict.INVALID, report.reasons
    assert "copy-statement-malformed" in _codes(report)


def test_post_verify_json_carries_the_section(made: Made, api_client: TestClient) -> None:
    response = api_client.post(
        "/v1/verify", files={"file": ("copy.pdf", made.pdf, "application/pdf")}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["verdict"] == "VALID"
    section = body["annotated_copy"]
    assert section["for_department"] == {"code": USER, "name": USER_NAME}
    assert section["matter"] == MATTER
    assert section["original"]["identifier"] == made.identifier
    assert section["original"]["verdict"] == "VALID"


def test_the_verify_page_report_shows_for_whom_what_and_until(
    made: Made, api_client: TestClient
) -> None:
    response = api_client.post(
        "/v1/verify",
        files={"file": ("copy.pdf", made.pdf, "application/pdf")},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 200
    page = response.text
    until = _statement(made.pdf)["valid_until"]
    for shown in ("加注件", USER_NAME, MATTER, until, made.identifier):
        assert shown in page


def test_the_command_line_reports_the_copy(
    made: Made, initialised: Services, tmp_path: Path
) -> None:
    (tmp_path / "copy.pdf").write_bytes(made.pdf)
    root = tmp_path / "root.pem"
    root.write_bytes(initialised.pki.root.certificate.public_bytes(Encoding.PEM))
    args = [ECONTRACT, "verify", str(tmp_path / "copy.pdf"), "--trust-root", str(root)]
    text = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert text.returncode == 0, text.stdout + text.stderr
    assert f"加注件 Annotated copy: {USER_NAME} ({USER})" in text.stdout
    assert MATTER in text.stdout
    lines = subprocess.run(
        [*args, "--json"], capture_output=True, text=True, timeout=120, check=False
    ).stdout
    section = json.loads(lines)["annotated_copy"]
    assert section["usage_id"].startswith("use_")
    assert section["original"]["verdict"] == "VALID"


def _content(
    made: Made, statement: dict[str, Any], *, original: bytes, department: str
) -> CopyContent:
    """A copy's parts from ``statement``, marked for ``department``."""
    zh, en = annotated.copy_marking(
        department=department,
        matter=statement["matter"],
        until=date.fromisoformat(statement["valid_until"]),
    )
    return CopyContent(
        original=original,
        original_name=f"{made.identifier}.pdf",
        original_sha256=statement["original"]["sha256"],
        marking_zh=zh,
        marking_en=en,
        statement=json.dumps(statement, ensure_ascii=False).encode(),
    )


def _platform_sealed(services: Services, pdf: bytes, seal_id: str | None = None) -> bytes:
    """``pdf`` sealed and registered by the platform seal, as the service seals copies (or by
    the seal ``seal_id``)."""
    if seal_id is None:
        with services.sessions() as session:
            seal_id = platform_seal(session, services.settings.platform_code).id
    sealed = seal_document(
        services,
        source=io.BytesIO(pdf),
        seal_id=seal_id,
        options=SealOptions(level=SealLevel.B_LT, certification=Certification.NO_CHANGES),
        actor=audit.Actor(name="test"),
        file_name="rebuilt-copy.pdf",
    )
    return services.blobs.open(sealed.document.blob_key).read()


def test_the_printable_report_shows_the_copy(
    made: Made, initialised: Services, tmp_path: Path
) -> None:
    report = verify_upload(initialised, made.pdf)
    (tmp_path / "report.pdf").write_bytes(report_pdf(report))
    text = subprocess.run(
        ["pdftotext", "-raw", str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "加注件 Annotated copy" in text
    assert USER_NAME in text
    assert _statement(made.pdf)["valid_until"] in text
