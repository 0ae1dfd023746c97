"""One vocabulary: a verdict reads the same on the QR page, the upload page's report, the PDF
report and the command line, in Chinese and in English."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from econtract.certificates import change_status
from econtract.cli import run
from econtract.services import Services
from tests.factories import OPERATOR
from tests.licences import issue_example, qr_token
from verify.words import VERDICT_WORDS, Words

# The big words of a page: the verdict box of the QR page and of the HTML report.
_VERDICT_BOX = re.compile(r'<div class="zh">([^<]*)</div>\s*<div class="en">([^<]*)</div>')


def _page_words(html: str) -> tuple[str, str]:
    match = _VERDICT_BOX.search(html)
    assert match is not None, html[:500]
    return match.group(1), match.group(2)


def _report_html(client: TestClient, pdf: bytes) -> str:
    response = client.post(
        "/v1/verify",
        files={"file": ("x.pdf", pdf, "application/pdf")},
        headers={"Accept": "text/html"},
    )
    assert response.status_code == 200, response.text
    return str(response.text)


def _report_pdf_text(client: TestClient, pdf: bytes, tmp_path: Path) -> str:
    response = client.post(
        "/v1/verify",
        files={"file": ("x.pdf", pdf, "application/pdf")},
        headers={"Accept": "application/pdf"},
    )
    assert response.headers["content-type"] == "application/pdf"
    (tmp_path / "report.pdf").write_bytes(response.content)
    text = subprocess.run(
        ["pdftotext", str(tmp_path / "report.pdf"), "-"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return " ".join(text.split())


def _cli_first_line(pdf: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    (tmp_path / "licence.pdf").write_bytes(pdf)
    capsys.readouterr()
    run(["verify", str(tmp_path / "licence.pdf")])
    return capsys.readouterr().out.splitlines()[0]


def _assert_everywhere(
    words: Words,
    *,
    client: TestClient,
    pdf: bytes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _page_words(_report_html(client, pdf)) == (words.zh, words.en)
    assert f"{words.zh} {words.en}" in _report_pdf_text(client, pdf, tmp_path)
    assert _cli_first_line(pdf, tmp_path, capsys) == f"{words.en} {words.zh}"


@pytest.mark.usefixtures("cli_env")
def test_a_revoked_licence_reads_revoked_on_every_page_report_and_the_cli(
    api_client: TestClient,
    initialised: Services,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    certificate = issue_example(initialised)
    pdf = (initialised.settings.blob_dir / certificate.blob_key).read_bytes()
    change_status(
        initialised, certificate_id=certificate.id, action="revoke", reason="吊销", actor=OPERATOR
    )
    words = VERDICT_WORDS["REVOKED"]
    assert (words.zh, words.en) == ("已撤销", "REVOKED")
    qr_page = api_client.get(f"/v/{qr_token(initialised, certificate)}")
    assert _page_words(qr_page.text) == (words.zh, words.en)
    _assert_everywhere(words, client=api_client, pdf=pdf, tmp_path=tmp_path, capsys=capsys)


@pytest.mark.usefixtures("cli_env")
def test_a_licence_changed_after_sealing_reads_modified_on_every_report_and_the_cli(
    api_client: TestClient,
    initialised: Services,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    certificate = issue_example(initialised)
    pdf = (initialised.settings.blob_dir / certificate.blob_key).read_bytes()
    changed = pdf + b"garbage after the end\n"
    words = VERDICT_WORDS["MODIFIED"]
    # Once 已被改动 on one page and 已被篡改 on others: one word now.
    assert (words.zh, words.en) == ("已被改动", "MODIFIED")
    _assert_everywhere(words, client=api_client, pdf=changed, tmp_path=tmp_path, capsys=capsys)
