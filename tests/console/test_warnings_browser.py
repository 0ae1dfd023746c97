"""A supervisor handles an early warning in Chromium under the pages' Content-Security-Policy:
signed in with a one-time code, they open the warnings, acknowledge one with a note through
its form, and the page shows it acknowledged, the note in its history."""

from __future__ import annotations

import io
from datetime import datetime, time, timedelta

from PIL import Image
from playwright.sync_api import Browser

from econtract import db
from econtract.clock import CHINA
from econtract.console import ConsoleRole
from econtract.models import Certificate
from econtract.services import Services
from econtract.supervision import evaluate_warnings
from tests import test_pages
from tests.console.accounts import make_account
from tests.test_csp_browser import Watched, issued

# The browser and the live server of the pages' tests, shared.
browser = test_pages.browser
live = test_pages.live

NOTE = "已电话联系发证部门，夜间为系统补录"


def test_a_supervisor_acknowledges_a_warning_with_a_note(
    browser: Browser, live: str, initialised: Services
) -> None:
    # A licence issued at three in the night yesterday (China time) raises WR-OFF-HOURS.
    certificate = issued(initialised)
    yesterday = datetime.now(CHINA).date() - timedelta(days=1)
    with db.transaction(initialised.sessions) as session:
        row = session.get(Certificate, certificate.id)
        assert row is not None
        row.issued_at = datetime.combine(yesterday, time(3), CHINA)
    assert evaluate_warnings(initialised) == 1
    account = make_account(initialised, "赵监察", ConsoleRole.SUPERVISOR)
    watched = Watched(browser)
    watched.page.set_viewport_size(test_pages.PHONE)
    watched.goto(f"{live}/console/sign-in")
    watched.page.fill("#name", account.name)
    watched.page.fill("#password", account.password)
    watched.page.fill("#code", account.code())
    with watched.page.expect_navigation():
        watched.page.click("button[type=submit]")
    assert watched.page.url == f"{live}/console"
    # From the frame's link to the list, and from its row to the warning.
    with watched.page.expect_navigation():
        watched.page.click("nav.sections a[href='/console/warnings']")
    rows = watched.page.locator("#warnings tbody tr")
    assert rows.count() == 1
    assert "非工作时间办理预警" in rows.first.inner_text()
    with watched.page.expect_navigation():
        rows.first.locator("a").click()
    assert "待处理" in watched.page.inner_text("#status")
    watched.page.fill("#ack-note", NOTE)
    with watched.page.expect_navigation():
        watched.page.click("#acknowledge button[type=submit]")
    assert watched.page.url.startswith(f"{live}/console/warnings/wrn_")
    assert "已确认" in watched.page.inner_text("#status")
    history = watched.page.inner_text("#history")
    assert NOTE in history
    assert f"console:{account.name}" in history
    assert watched.violations() == []
    # Nothing is wider than the phone, and the screenshot shows the page, not a blank.
    width = watched.page.evaluate("document.documentElement.scrollWidth")
    assert width <= test_pages.PHONE["width"]
    shot = Image.open(io.BytesIO(watched.page.screenshot(full_page=True))).convert("L")
    assert shot.size[0] == test_pages.PHONE["width"]
    assert len(set(shot.getdata())) > 8
    # The list of open warnings no longer holds it; the acknowledged ones do.
    watched.goto(f"{live}/console/warnings")
    assert watched.page.locator("#warnings").count() == 0
    watched.goto(f"{live}/console/warnings?status=acknowledged")
    assert watched.page.locator("#warnings tbody tr").count() == 1
