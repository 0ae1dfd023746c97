"""The citizen's QR page: the verdict in a real headless Chromium at phone width, read back
from the screenshot by OCR; the same verdict as JSON; the QR code as printed, read by zbarimg
from a 100 dpi render; what a revoked or suspended page says, and what it keeps back."""

from __future__ import annotations

import base64
import json
import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from playwright.sync_api import Browser, ViewportSize, sync_playwright

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import change_status
from econtract.clock import CHINA
from econtract.issuance import (
    TEMPLATES,
    IssueRequest,
    QRClaims,
    fields_digest,
    issue_certificate,
    make_jws_qr_token,
    make_qr_token,
    mask,
)
from econtract.models import new_public_id
from econtract.services import Services
from tests.factories import OPERATOR
from tests.live import serve

CHROMIUM = "/usr/bin/chromium"
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def live(initialised: Services) -> Iterator[str]:
    with serve(initialised.settings) as base:
        yield base


def issued_url(
    services: Services,
    type_code: str = "business_licence",
    *,
    dpi: int = 100,
    changes: dict[str, str] | None = None,
) -> tuple[str, Any]:
    """Issue a licence and read its QR code back, as a phone would, from a ``dpi`` render."""
    fields = dict(TEMPLATES[type_code].schema["examples"][0]) | (changes or {})
    fields = {k: v for k, v in fields.items() if v}
    # Playwright's sync API keeps an event loop running in this thread; sealing runs its
    # own, so issuance goes to another thread as it does in the server's thread pool.
    with ThreadPoolExecutor(1) as pool:
        certificate = (
            pool.submit(
                issue_certificate,
                services,
                department_code=DEMO_DEPARTMENT_CODE,
                request=IssueRequest(type_code=type_code, fields=fields),
                actor=OPERATOR,
            )
            .result()
            .certificate
        )
    pdf = (services.settings.blob_dir / certificate.blob_key).read_bytes()
    # The token as printed: read it back from the licence's QR code.
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "l.pdf").write_bytes(pdf)
        subprocess.run(
            ["pdftoppm", "-r", str(dpi), "-png", "-singlefile", f"{tmp}/l.pdf", f"{tmp}/p"],
            check=True,
            timeout=60,
        )
        url = subprocess.run(
            ["zbarimg", "--raw", "-q", f"{tmp}/p.png"],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
    return url, certificate


def issued_token(
    services: Services, type_code: str = "business_licence", **changes: str
) -> tuple[str, Any]:
    """Issue a licence; the token its QR code carries."""
    url, certificate = issued_url(services, type_code, changes=changes)
    return url.rsplit("/v/", 1)[1], certificate


def change(services: Services, certificate: Any, action: str, reason: str) -> None:
    """Revoke or suspend off Playwright's event-loop thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            change_status,
            services,
            certificate_id=certificate.id,
            action=action,
            reason=reason,
            actor=OPERATOR,
        ).result()


def ocr(png: Path) -> str:
    done = subprocess.run(
        ["tesseract", str(png), "-", "-l", "chi_sim+eng", "--psm", "11"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.replace(" ", "")


def test_valid_licence_at_phone_width(
    browser: Browser, live: str, initialised: Services, tmp_path: Path
) -> None:
    token, certificate = issued_token(initialised)
    page = browser.new_page(viewport=PHONE, device_scale_factor=2)
    page.goto(f"{live}/v/{token}")
    verdict = page.locator(".verdict")
    assert verdict.inner_text().split() == ["有效", "VALID"]
    box = verdict.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= PHONE["height"]  # seen without scrolling
    assert box["width"] <= PHONE["width"]
    assert certificate.number in page.content()
    shot = tmp_path / "phone.png"
    verdict.screenshot(path=str(shot))
    text = ocr(shot)
    assert "有效" in text, text
    assert "VALID" in text, text
    page.close()


def test_revoked_licence_says_so(
    browser: Browser, live: str, initialised: Services, tmp_path: Path
) -> None:
    token, certificate = issued_token(initialised)
    change(initialised, certificate, "revoke", "吊销")
    page = browser.new_page(viewport=PHONE, device_scale_factor=2)
    page.goto(f"{live}/v/{token}")
    shot = tmp_path / "revoked.png"
    page.locator(".verdict").screenshot(path=str(shot))
    text = ocr(shot)
    assert "已撤销" in text, text
    assert "REVOKED" in text, text
    page.close()


def test_forged_token_says_so_plainly(browser: Browser, live: str, initialised: Services) -> None:
    token, _ = issued_token(initialised)
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    page = browser.new_page(viewport=PHONE)
    page.goto(f"{live}/v/{forged}")
    assert page.locator(".verdict").inner_text().split() == ["二维码无效", "FORGED"]
    assert "篡改" in page.locator(".reason").inner_text()
    page.close()


def test_same_verdict_as_json(live: str, initialised: Services) -> None:
    # An individual operator: a personal id number instead of a credit code.
    token, certificate = issued_token(
        initialised, "food_business_permit", credit_code="", id_number="330106199003071236"
    )
    body = httpx.get(f"{live}/v/{token}", headers={"Accept": "application/json"}).json()
    assert body["verdict"] == "VALID"
    assert body["certificate"]["number"] == certificate.number
    id_number = certificate.fields["id_number"]
    values = [f["value"] for f in body["certificate"]["fields"]]
    assert id_number not in values
    assert mask(id_number) in values


def test_a_token_for_an_unknown_certificate_is_unknown(live: str, initialised: Services) -> None:
    token = make_qr_token(
        initialised.pki.token_signer,
        QRClaims(certificate_id=new_public_id("crt"), issued_at=datetime.now(UTC)),
    )
    body = httpx.get(f"{live}/v/{token}", headers={"Accept": "application/json"}).json()
    assert body["verdict"] == "UNKNOWN"


def test_the_printed_qr_code_reads_at_100_dpi_as_a_short_url_to_its_page(
    live: str, initialised: Services
) -> None:
    url, certificate = issued_url(initialised, dpi=100)
    assert len(url) <= 200, url
    assert url.startswith(initialised.settings.public_base_url + "/v/")
    token = url.rsplit("/v/", 1)[1]
    body = httpx.get(f"{live}/v/{token}", headers={"Accept": "application/json"}).json()
    assert body["verdict"] == "VALID"
    assert body["certificate"]["id"] == certificate.id
    assert body["certificate"]["number"] == certificate.number


def test_a_compact_token_checks_offline_with_the_published_key_alone(
    live: str, initialised: Services
) -> None:
    token, certificate = issued_token(initialised)
    jwk = httpx.get(f"{live}/.well-known/jwks.json").json()["keys"][0]  # the token key

    def coordinate(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=="), "big")

    public = ec.EllipticCurvePublicNumbers(
        coordinate(jwk["x"]), coordinate(jwk["y"]), ec.SECP256R1()
    ).public_key()
    raw = base64.urlsafe_b64decode(token + "==")
    # The layout README documents: version, id, issue time, then r and s.
    payload, r, s = raw[:21], raw[21:53], raw[53:]
    assert payload[0] == 2
    signature = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    public.verify(signature, b"econtract-qr/2" + payload, ec.ECDSA(hashes.SHA256()))
    assert "crt_" + base64.urlsafe_b64encode(payload[1:17]).decode().rstrip("=") == (certificate.id)
    assert int.from_bytes(payload[17:21], "big") == int(certificate.issued_at.timestamp())


@pytest.mark.parametrize("where", [5, 30, 100], ids=["id", "issue-time", "signature"])
def test_a_tampered_compact_token_is_forged(live: str, initialised: Services, where: int) -> None:
    token, _ = issued_token(initialised)
    tampered = token[:where] + ("A" if token[where] != "A" else "B") + token[where + 1 :]
    body = httpx.get(f"{live}/v/{tampered}", headers={"Accept": "application/json"}).json()
    assert body["verdict"] == "FORGED"
    page = httpx.get(f"{live}/v/{tampered}").text
    assert "二维码无效" in page
    assert "FORGED" in page


def test_a_token_made_the_old_way_still_opens_its_page(live: str, initialised: Services) -> None:
    _, certificate = issued_token(initialised)
    old = make_jws_qr_token(
        initialised.pki.token_signer,
        QRClaims(
            certificate_id=certificate.id,
            number=certificate.number,
            type_code=certificate.type_code,
            fields_digest=fields_digest(certificate.fields),
            valid_from=certificate.valid_from,
            valid_until=certificate.valid_until,
            issued_at=certificate.issued_at,
            version=1,
        ),
    )
    assert old.count(".") == 2
    body = httpx.get(f"{live}/v/{old}", headers={"Accept": "application/json"}).json()
    assert body["verdict"] == "VALID"
    assert body["certificate"]["number"] == certificate.number
    forged = make_jws_qr_token(
        initialised.pki.token_signer,
        QRClaims(
            certificate_id=certificate.id,
            number=certificate.number + "9",
            type_code=certificate.type_code,
            fields_digest=fields_digest(certificate.fields),
            valid_from=certificate.valid_from,
            issued_at=certificate.issued_at,
            version=1,
        ),
    )
    body = httpx.get(f"{live}/v/{forged}", headers={"Accept": "application/json"}).json()
    assert body["verdict"] == "FORGED"


def test_a_revoked_page_shows_the_date_and_kind_of_reason_but_not_its_text(
    live: str, initialised: Services
) -> None:
    token, certificate = issued_token(initialised)
    change(initialised, certificate, "revoke", "keyCompromise: 张三的U盾在出租车上丢失")
    page = httpx.get(f"{live}/v/{token}").text
    today = datetime.now(CHINA).date()
    assert f"{today.year}年{today.month:02d}月{today.day:02d}日" in page
    assert f"{today.day} {today.strftime('%b')} {today.year}" in page
    assert "密钥泄露" in page
    assert "Key compromised" in page
    assert "张三" not in page
    assert "出租车" not in page
    assert "与纸质证照核对" not in page
    body = httpx.get(f"{live}/v/{token}", headers={"Accept": "application/json"}).json()
    assert body["certificate"]["status_reason"]["kind"] == "keyCompromise"
    assert "张三" not in json.dumps(body["certificate"], ensure_ascii=False)


def test_a_suspended_page_shows_the_date_and_a_free_text_reason_only_as_another_reason(
    live: str, initialised: Services
) -> None:
    token, certificate = issued_token(initialised)
    change(initialised, certificate, "suspend", "李四举报，待核查")
    page = httpx.get(f"{live}/v/{token}").text
    assert "已暂停" in page
    assert "暂停日期" in page
    assert "其他原因" in page
    assert "Another reason" in page
    assert "李四" not in page
    assert "与纸质证照核对" not in page


def test_only_a_valid_licence_asks_to_be_compared_with_the_paper(
    live: str, initialised: Services
) -> None:
    token, _ = issued_token(initialised)
    page = httpx.get(f"{live}/v/{token}").text
    assert "与纸质证照核对" in page
    forged = httpx.get(f"{live}/v/{token[:-3]}AAA").text
    assert "与纸质证照核对" not in forged


def test_dates_read_as_on_the_paper(live: str, initialised: Services) -> None:
    token, certificate = issued_token(initialised, established="2011-03-24")
    page = httpx.get(f"{live}/v/{token}").text
    assert "2011年03月24日" in page
    assert "2011-03-24" not in page
    start = certificate.valid_from
    assert f"{start.year}年{start.month:02d}月{start.day:02d}日" in page
    assert f"{start.day} {start.strftime('%b')} {start.year}" in page


def test_the_page_names_who_runs_it_and_no_internal_format(
    initialised: Services,
) -> None:
    settings = initialised.settings.model_copy(update={"service_name": "浙江省电子证照服务"})
    with serve(settings) as base:
        token, _ = issued_token(initialised)
        page = httpx.get(f"{base}/v/{token}").text
        forged = httpx.get(f"{base}/v/{token[:-3]}AAA").text
    footer = page.split("<footer>", 1)[1]
    assert "杭州市市场监督管理局" in footer
    assert "浙江省电子证照服务" in footer
    assert "浙江省电子证照服务" in forged
    for internal in ("econtract-qr-verdict", "econtract-report/", "v:1", "/1<"):
        assert internal not in page
        assert internal not in forged


def upload_on_the_page(browser: Browser, live: str, pdf: Path) -> Any:
    """Choose ``pdf`` on the upload page at phone width and press 核验; the page once done."""
    page = browser.new_page(viewport=PHONE, device_scale_factor=1)
    page.goto(f"{live}/verify")
    page.set_input_files("#file", str(pdf))
    page.click("button[type=submit]")
    page.wait_for_selector("main.report, .error", timeout=60_000)
    return page


def test_the_upload_page_shows_number_holder_seals_status_and_the_pdf(
    browser: Browser, live: str, initialised: Services, tmp_path: Path
) -> None:
    _, certificate = issued_token(initialised)
    change(initialised, certificate, "suspend", "certificateHold")
    pdf = tmp_path / "licence.pdf"
    pdf.write_bytes((initialised.settings.blob_dir / certificate.blob_key).read_bytes())
    page = upload_on_the_page(browser, live, pdf)
    face = page.locator("main.report").inner_text()
    assert "已暂停" in face
    assert "SUSPENDED" in face
    assert certificate.number in face
    assert certificate.holder_name in face
    assert "杭州市市场监督管理局" in face
    assert "盖章时间" in face
    assert "(UTC+8)" in face
    # ETSI's vocabulary stays behind the disclosure until it is opened.
    assert "TOTAL_PASSED" not in face
    page.locator("summary").click()
    assert "TOTAL_PASSED" in page.locator("main.report").inner_text()
    with page.expect_download() as download:
        page.locator("a.pdf").click()
    saved = tmp_path / "report.pdf"
    download.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF-")
    page.close()


def test_the_upload_page_explains_a_file_that_is_not_a_pdf_in_both_languages(
    browser: Browser, live: str, tmp_path: Path
) -> None:
    text = tmp_path / "letter.pdf"
    text.write_text("Dear applicant, …")
    page = upload_on_the_page(browser, live, text)
    error = page.locator(".error").inner_text()
    assert "这不是 PDF 文件" in error
    assert "This is not a PDF file" in error
    page.close()
