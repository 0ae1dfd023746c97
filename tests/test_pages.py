"""The citizen's QR page: the verdict in a real headless Chromium at phone width, read back
from the screenshot by OCR; and the same verdict as JSON."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ViewportSize, sync_playwright

from econtract import audit
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.certificates import change_status
from econtract.issuance import IssueRequest, issue_certificate
from econtract.qrcheck import mask
from econtract.qrtoken import QRClaims, make_qr_token
from econtract.services import Services
from econtract.templates import TEMPLATES
from tests.live import serve

CHROMIUM = "/usr/bin/chromium"
PHONE: ViewportSize = {"width": 390, "height": 844}
OPERATOR = audit.Actor.operator("test")


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


def issued_token(
    services: Services, type_code: str = "business_licence", **changes: str
) -> tuple[str, Any]:
    fields = dict(TEMPLATES[type_code].schema["examples"][0]) | changes
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
            ["pdftoppm", "-r", "150", "-png", "-singlefile", f"{tmp}/l.pdf", f"{tmp}/p"],
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
    return url.rsplit("/v/", 1)[1], certificate


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
    with ThreadPoolExecutor(1) as pool:
        pool.submit(
            change_status,
            initialised,
            certificate_id=certificate.id,
            action="revoke",
            reason="吊销",
            actor=OPERATOR,
        ).result()
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
        QRClaims(
            certificate_id="crt_nope",
            number="X",
            type_code="business_licence",
            fields_digest="x",
            valid_from=date.today(),
            valid_until=None,
            issued_at=datetime.now(UTC),
        ),
    )
    body = httpx.get(f"{live}/v/{token}", headers={"Accept": "application/json"}).json()
    assert body["verdict"] == "UNKNOWN"
