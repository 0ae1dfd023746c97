"""Verification as offered: POST /v1/verify, the upload page in Chromium, `econtract verify`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from playwright.sync_api import sync_playwright
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign.signers import PdfTimeStamper
from sqlalchemy import select

import routes.verification
from api import create_app
from econtract import db
from econtract.certificates import change_status
from econtract.clock import FixedClock
from econtract.db import ReadBusyError, ReadConnections
from econtract.errors import DatabaseUnavailableError
from econtract.services import Services
from econtract.translog import publish_sth
from econtract.translog._tables import LogLeaf
from signing.options import SealLevel
from tests.factories import OPERATOR
from tests.licences import issue_example, qr_token, seal_outside_the_registry
from tests.live import serve
from tests.signing.sealing import make_pdf, seal_in_a_thread
from tests.testpki import build_test_pki

ECONTRACT = str(Path(sys.executable).with_name("econtract"))


def licence(services: Services) -> tuple[Any, bytes]:
    certificate = issue_example(services)
    return certificate, (services.settings.blob_dir / certificate.blob_key).read_bytes()


def upload(client: TestClient, data: bytes, **headers: str) -> Any:
    return client.post(
        "/v1/verify", files={"file": ("x.pdf", data, "application/pdf")}, headers=headers
    )


def test_an_issued_licence_is_valid_and_found_in_the_registry(
    api_client: TestClient, initialised: Services
) -> None:
    certificate, pdf = licence(initialised)
    report = upload(api_client, pdf).json()
    assert report["verdict"] == "VALID"
    assert report["registry"]["record_id"] == certificate.id
    assert report["registry"]["matched_by"] == "file"


def test_a_revoked_licence_is_revoked(api_client: TestClient, initialised: Services) -> None:
    certificate, pdf = licence(initialised)
    change_status(
        initialised, certificate_id=certificate.id, action="revoke", reason="吊销", actor=OPERATOR
    )
    assert upload(api_client, pdf).json()["verdict"] == "REVOKED"


def test_a_changed_licence_is_not_valid(api_client: TestClient, initialised: Services) -> None:
    _, pdf = licence(initialised)
    tampered = pdf + b"\n1 0 obj\n(forged)\nendobj\n"
    assert upload(api_client, tampered).json()["verdict"] != "VALID"


def publish(services: Services) -> None:
    with db.transaction(services.sessions) as session:
        publish_sth(session, services.pki.log_key, force=True)


@pytest.fixture
def published(initialised: Services) -> bytes:
    """An issued licence's PDF, its log entry under a published tree head."""
    _, pdf = licence(initialised)
    publish(initialised)
    return pdf


def test_the_printable_report_gives_the_verdict(api_client: TestClient, published: bytes) -> None:
    page = upload(api_client, published, Accept="text/html")
    assert page.headers["content-type"].startswith("text/html")
    assert "有效" in page.text


def test_the_printable_report_shows_the_logs_proof_of_the_record(
    api_client: TestClient, published: bytes
) -> None:
    page = upload(api_client, published, Accept="text/html")
    # The log's proof for the matched record, the same one the JSON report carries.
    proofs = upload(api_client, published).json()["transparency"]
    (entry,) = proofs["entries"]
    assert "透明日志 Transparency log" in page.text
    assert f"Entry {entry['leaf_index']}" in page.text
    assert entry["leaf_hash"] in page.text
    assert f"inclusion proof of {len(entry['audit_path'])} hashes checked" in page.text
    assert proofs["sth"]["sha256_root_hash"] in page.text


def test_a_file_not_issued_here_has_no_log_section(api_client: TestClient) -> None:
    page = upload(api_client, make_pdf(), Accept="text/html")
    assert "本平台未签发此文件" in page.text
    assert "Transparency log" not in page.text


def test_not_a_pdf_is_415(api_client: TestClient) -> None:
    response = upload(api_client, b"hello")
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:econtract:problem:not-a-pdf"


def test_a_broken_pdf_is_422(api_client: TestClient) -> None:
    broken = upload(api_client, b"%PDF-1.7\n1 0 obj <<")
    assert broken.status_code == 422
    assert broken.json()["type"] == "urn:econtract:problem:malformed-pdf"


def test_a_file_over_the_limit_is_413(initialised: Services) -> None:
    settings = initialised.settings.model_copy(update={"max_upload_bytes": 50_000})
    with TestClient(create_app(settings)) as client:
        response = upload(client, b"%PDF-1.7\n" + bytes(100_000))
    assert response.status_code == 413


def test_the_upload_page_in_chromium(initialised: Services, tmp_path: Path) -> None:
    _, pdf = licence(initialised)
    (tmp_path / "licence.pdf").write_bytes(pdf)
    with serve(initialised.settings) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(f"{base}/verify")
        page.set_input_files("#file", str(tmp_path / "licence.pdf"))
        page.click("button[type=submit]")
        page.wait_for_selector(".verdict", timeout=30_000)
        assert page.locator(".verdict").inner_text().split() == ["有效", "VALID"]
        assert page.locator(".reasons li").count() >= 1
        browser.close()


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ECONTRACT, "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_cli_offline_with_only_the_root(initialised: Services, tmp_path: Path) -> None:
    _, pdf = licence(initialised)
    (tmp_path / "licence.pdf").write_bytes(pdf)
    root = tmp_path / "root.pem"
    root.write_bytes(initialised.pki.root.certificate.public_bytes(Encoding.PEM))
    done = cli(
        str(tmp_path / "licence.pdf"),
        "--trust-root",
        str(root),
        "--json",
        "--report-pdf",
        str(tmp_path / "report.pdf"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF-")
    (tmp_path / "bad.pdf").write_bytes(pdf[:-200] + b"x" * 200)
    assert cli(str(tmp_path / "bad.pdf"), "--trust-root", str(root)).returncode == 1


def test_cli_checks_another_issuers_pdf_under_its_own_root(tmp_path: Path) -> None:
    pki = build_test_pki()
    pdf = seal_in_a_thread(pki, SealLevel.B_LT)
    (tmp_path / "other.pdf").write_bytes(pdf)
    root = tmp_path / "other-root.pem"
    root.write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    done = cli(str(tmp_path / "other.pdf"), "--trust-root", str(root), "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"verdict": "VALID"' in done.stdout


def test_cli_usage_error_is_64(tmp_path: Path) -> None:
    assert cli().returncode == 64
    assert cli(str(tmp_path / "x.pdf"), "--bogus").returncode == 64


def test_cli_exits_1_on_a_modified_file(initialised: Services, tmp_path: Path) -> None:
    _, pdf = licence(initialised)
    root = tmp_path / "root.pem"
    root.write_bytes(initialised.pki.root.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "modified.pdf").write_bytes(pdf + b"garbage after the end\n")
    modified = cli(str(tmp_path / "modified.pdf"), "--trust-root", str(root), "--json")
    assert modified.returncode == 1
    assert '"verdict": "MODIFIED"' in modified.stdout


def test_cli_exits_2_on_an_undecided_file(tmp_path: Path) -> None:
    pki = build_test_pki()
    bare = seal_in_a_thread(pki, SealLevel.B_B)
    (tmp_path / "bare.pdf").write_bytes(bare)
    (tmp_path / "other-root.pem").write_bytes(pki.root.certificate.public_bytes(Encoding.PEM))
    undecided = cli(
        str(tmp_path / "bare.pdf"), "--trust-root", str(tmp_path / "other-root.pem"), "--json"
    )
    assert undecided.returncode == 2, undecided.stdout
    assert '"verdict": "INDETERMINATE"' in undecided.stdout


def test_the_report_as_a_pdf_to_file(
    api_client: TestClient, initialised: Services, tmp_path: Path
) -> None:
    certificate, pdf = licence(initialised)
    response = upload(api_client, pdf, Accept="application/pdf")
    assert response.headers["content-type"] == "application/pdf"
    (tmp_path / "report.pdf").write_bytes(response.content)
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "有效 VALID" in text
    assert certificate.id in text
    assert "杭州市市场监督管理局" in text
    assert "透明日志 Transparency log" in text


def test_the_qr_page_waits_in_the_thread_pool_when_the_registry_is_locked(
    api_client: TestClient, initialised: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    certificate, _ = licence(initialised)
    token = qr_token(initialised, certificate)
    calls: list[bool] = []
    original = ReadConnections.run_remembered

    def locked_unless_patient(self: ReadConnections, key: Any, read: Any, *, patient: bool = False):  # type: ignore[no-untyped-def]
        calls.append(patient)
        if not patient:
            raise ReadBusyError("database is locked")
        return original(self, key, read, patient=True)

    monkeypatch.setattr(ReadConnections, "run_remembered", locked_unless_patient)
    page = api_client.get(f"/v/{token}")
    assert page.status_code == 200
    assert "VALID" in page.text
    assert certificate.number in page.text
    expected = [False, True] if db.is_embedded(initialised.engine) else [True]
    assert calls == expected


@pytest.fixture
def qr_page(initialised: Services) -> str:
    """The path of an issued licence's QR page."""
    certificate, _ = licence(initialised)
    return f"/v/{qr_token(initialised, certificate)}"


def test_the_qr_page_answers_get_and_head_only(api_client: TestClient, qr_page: str) -> None:
    for accept in ("text/html", "application/json"):
        assert api_client.get(qr_page, headers={"Accept": accept}).status_code == 200
    assert api_client.head(qr_page).status_code == 200
    assert api_client.post(qr_page).status_code == 405


def test_an_error_of_the_qr_page_is_the_applications_problem_answer(
    initialised: Services, qr_page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page is answered ahead of the framework's exception middleware (QRPage); what it
    # raises is answered by the same handlers, with the same headers.
    def unavailable(*_: object, **__: object) -> None:
        raise DatabaseUnavailableError("The registry database cannot be reached.")

    monkeypatch.setattr(routes.verification, "check_qr", unavailable)
    with TestClient(create_app(initialised.settings)) as client:
        answer = client.get(qr_page, headers={"X-Request-ID": "qr-down"})
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["retry-after"] == "5"
    assert answer.headers["x-request-id"] == "qr-down"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.json()["type"] == "urn:econtract:problem:database-unavailable"
    assert answer.json()["request_id"] == "qr-down"


def test_an_unexpected_error_of_the_qr_page_is_a_500_problem(
    initialised: Services, qr_page: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(routes.verification, "check_qr", broken)
    app = create_app(initialised.settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get(qr_page)
    assert answer.status_code == 500
    assert answer.json()["type"] == "urn:econtract:problem:internal"


def test_the_qr_page_is_counted_under_its_route(api_client: TestClient, qr_page: str) -> None:
    api_client.get(qr_page)
    metrics = api_client.get("/metrics").text
    assert 'route="/v/{token}",status="200"' in metrics


def test_the_qr_page_is_sent_whole_with_its_headers_every_time(
    api_client: TestClient, qr_page: str
) -> None:
    # The second answer comes from the remembered verdict and its encoded page.
    first, second = (api_client.get(qr_page, headers={"Accept": "text/html"}) for _ in range(2))
    assert first.content == second.content
    assert "VALID" in second.text
    for answer in (first, second):
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.headers["content-length"] == str(len(first.content))
        assert answer.headers["cache-control"] == "no-store"
        assert answer.headers["x-robots-tag"] == "noindex"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    as_json = api_client.get(qr_page, headers={"Accept": "application/json"})
    assert as_json.headers["content-type"] == "application/json"
    assert as_json.headers["cache-control"] == "no-store"
    assert "content-security-policy" not in as_json.headers
    assert as_json.json()["verdict"] == "VALID"


def test_the_qr_page_follows_a_status_change_and_the_day(
    api_client: TestClient, initialised: Services
) -> None:
    certificate, _ = licence(initialised)
    path = f"/v/{qr_token(initialised, certificate)}"
    json_of = {"Accept": "application/json"}
    assert api_client.get(path, headers=json_of).json()["verdict"] == "VALID"
    change_status(
        initialised,
        certificate_id=certificate.id,
        action="suspend",
        reason="inspection",
        actor=OPERATOR,
    )
    assert api_client.get(path, headers=json_of).json()["verdict"] == "SUSPENDED"
    assert "SUSPENDED" in api_client.get(path).text
    change_status(
        initialised,
        certificate_id=certificate.id,
        action="reinstate",
        reason="inspection passed",
        actor=OPERATOR,
    )
    assert "VALID" in api_client.get(path).text
    # Nothing is written, only the day changes: the day before its validity, the licence
    # is not valid yet, whatever was remembered for today.
    services: Services = api_client.app.state.services  # type: ignore[attr-defined]
    services.clock = FixedClock.on(certificate.valid_from - timedelta(days=1))
    answer = api_client.get(path, headers=json_of).json()
    assert answer["verdict"] == "SUSPENDED"
    assert answer["reason"]["en"] == "This licence is not valid yet."


def test_the_qr_page_is_documented(api_client: TestClient) -> None:
    assert "/v/{token}" in api_client.get("/openapi.json").json()["paths"]


@pytest.fixture
def damaged_log(initialised: Services) -> bytes:
    """An issued licence's PDF whose log entry an insider rewrote after publication."""
    certificate, pdf = licence(initialised)
    publish(initialised)
    # An insider rewrites the certificate's log entry: its inclusion proof no longer checks.
    with db.transaction(initialised.sessions) as session:
        leaf = session.scalars(select(LogLeaf).where(LogLeaf.subject == certificate.id)).one()
        assert b'"status":"valid"' in leaf.entry
        leaf.entry = leaf.entry.replace(b'"status":"valid"', b'"status":"revoked"')
    return pdf


def test_a_damaged_log_does_not_cost_the_document_its_verdict(
    api_client: TestClient, damaged_log: bytes
) -> None:
    assert upload(api_client, damaged_log).json()["verdict"] == "VALID"


def test_a_damaged_log_is_reported_as_unchecked_with_its_problem(
    api_client: TestClient, damaged_log: bytes
) -> None:
    transparency = upload(api_client, damaged_log).json()["transparency"]
    assert transparency["checked"] is False
    assert transparency["problem"]


def test_the_printable_report_says_a_damaged_logs_proof_could_not_be_checked(
    api_client: TestClient, damaged_log: bytes
) -> None:
    page = upload(api_client, damaged_log, Accept="text/html").text
    assert "the log&#x27;s proof could not be checked" in page


# --- a seal of this service on a file the registry never registered ------------------------


def test_a_file_sealed_with_our_seal_but_never_registered_is_unknown(
    api_client: TestClient, initialised: Services
) -> None:
    report = upload(api_client, seal_outside_the_registry(initialised)).json()
    assert report["verdict"] == "UNKNOWN"
    assert not report["registry"]["matched"]
    [reason, *_] = report["reasons"]
    assert reason["code"] == "sealed-here-not-registered"
    assert "never registered" in reason["en"]
    assert "从未登记" in reason["zh"]
    # The seal itself holds: it is the registry that does not know the file.
    assert report["signatures"][0]["indication"] == "TOTAL_PASSED"


def test_cli_calls_a_file_sealed_here_but_never_registered_unknown(
    initialised: Services, tmp_path: Path
) -> None:
    (tmp_path / "orphan.pdf").write_bytes(seal_outside_the_registry(initialised))
    settings = initialised.settings
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(settings.data_dir),
        "ECONTRACT_DATABASE_URL": settings.effective_database_url,
        "ECONTRACT_KEY_PASSPHRASE": "test-passphrase-0123",
    }
    done = cli(str(tmp_path / "orphan.pdf"), "--json", env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert json.loads(done.stdout)["verdict"] == "UNKNOWN"


def timestamped(services: Services, pdf: bytes) -> bytes:
    """``pdf`` with a document timestamp appended: a permitted long-term-validation update."""

    def stamp() -> bytes:
        out = PdfTimeStamper(services.pki.timestamper).timestamp_pdf(
            IncrementalPdfFileWriter(io.BytesIO(pdf)), "sha256"
        )
        return bytes(out.getvalue())

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(stamp).result()


def test_a_registered_licence_extended_with_a_document_timestamp_stays_valid(
    api_client: TestClient, initialised: Services
) -> None:
    certificate, pdf = licence(initialised)
    report = upload(api_client, timestamped(initialised, pdf)).json()
    assert report["verdict"] == "VALID", report["reasons"]
    assert report["registry"]["matched_by"] == "signed-bytes"
    assert report["registry"]["record_id"] == certificate.id


def test_a_file_sealed_by_another_issuer_is_still_not_issued_here(
    api_client: TestClient, initialised: Services
) -> None:
    pki = build_test_pki()
    pdf = seal_in_a_thread(pki, SealLevel.B_LT)
    report = upload(api_client, pdf).json()
    codes = [reason["code"] for reason in report["reasons"]]
    assert "not-issued-here" in codes
    assert "sealed-here-not-registered" not in codes
