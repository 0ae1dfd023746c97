"""Every page works in Chromium under its Content-Security-Policy, and the policy reports no
violation: the QR page, the upload page with its verdict, the printable report, /docs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Response

from econtract.models import Certificate
from econtract.services import Services
from tests import test_pages
from tests.licences import issue_example, qr_token

# The browser and the live server of the QR page's tests, shared.
browser = test_pages.browser
live = test_pages.live

#: Runs before any script of the page (and outside its policy): collects the violations.
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


class Watched:
    """A page that records what the browser says about its policy."""

    def __init__(self, browser: Browser) -> None:
        self.page: Page = browser.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda message: self.console.append(message.text))
        self.page.add_init_script(LISTEN)

    def goto(self, url: str) -> Response:
        """Open ``url``; it must come with the pages' policy, or there is nothing to check."""
        response = self.page.goto(url)
        assert response is not None
        assert "script-src 'self';" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        return response

    def violations(self) -> list[Any]:
        reported = list(self.page.evaluate("window.__violations"))
        refused = [text for text in self.console if "Content Security Policy" in text]
        return reported + refused


def issued(services: Services) -> Certificate:
    # Playwright's sync API keeps an event loop running in this thread; sealing runs its own.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(issue_example, services).result()


def sealed_licence(services: Services, tmp_path: Path) -> Path:
    certificate = issued(services)
    path = tmp_path / "licence.pdf"
    path.write_bytes((services.settings.blob_dir / certificate.blob_key).read_bytes())
    return path


def upload_page(browser: Browser, live: str, pdf: Path) -> Watched:
    """The upload page with ``pdf`` chosen, not yet sent."""
    watched = Watched(browser)
    watched.goto(f"{live}/verify")
    watched.page.set_input_files("#file", str(pdf))
    return watched


def test_the_qr_page_shows_its_verdict_without_a_violation(
    browser: Browser, live: str, initialised: Services
) -> None:
    token = qr_token(initialised, issued(initialised))
    watched = Watched(browser)
    response = watched.goto(f"{live}/v/{token}")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    # The inline style applies: the verdict is drawn on its green background.
    background = watched.page.eval_on_selector(
        ".verdict", "e => getComputedStyle(e).backgroundColor"
    )
    assert background == "rgb(26, 127, 55)"
    assert watched.violations() == []


def test_the_upload_page_shows_the_verdict_without_a_violation(
    browser: Browser, live: str, initialised: Services, tmp_path: Path
) -> None:
    watched = upload_page(browser, live, sealed_licence(initialised, tmp_path))
    watched.page.click("button[type=submit]")
    watched.page.wait_for_selector("main.report", timeout=60_000)
    assert "VALID" in watched.page.inner_text("#result")
    assert watched.violations() == []


def test_the_report_page_opens_without_a_violation(
    browser: Browser, live: str, initialised: Services, tmp_path: Path
) -> None:
    watched = upload_page(browser, live, sealed_licence(initialised, tmp_path))
    # Posted as a form without the page's script, as a browser without scripts would: the
    # report itself is the page, under its own policy.
    with watched.page.expect_navigation(timeout=60_000) as navigation:
        watched.page.evaluate("document.getElementById('upload').submit()")
    response = navigation.value
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    watched.page.wait_for_selector("main.report")
    assert watched.violations() == []


def test_docs_render_the_operations_without_a_violation(browser: Browser, live: str) -> None:
    watched = Watched(browser)
    watched.goto(f"{live}/docs")
    watched.page.wait_for_selector(".opblock", timeout=30_000)
    assert watched.page.locator(".opblock").count() > 20
    assert watched.violations() == []


def test_an_inline_script_is_refused_and_reported(browser: Browser, live: str) -> None:
    watched = Watched(browser)
    watched.goto(f"{live}/verify")
    watched.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__ran = true'; document.body.append(s); }"
    )
    watched.page.wait_for_function("window.__violations.length > 0")
    assert watched.page.evaluate("window.__ran") is None
    assert any(v.startswith("script-src") for v in watched.violations())
