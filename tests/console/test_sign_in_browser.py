"""A supervisor signs in to the console in Chromium, on a phone's screen, with a one-time
code, under the pages' Content-Security-Policy; the page says who is signed in."""

from __future__ import annotations

import io

from PIL import Image
from playwright.sync_api import Browser

from econtract.console import ConsoleRole
from econtract.services import Services
from tests import test_pages
from tests.console.accounts import make_account
from tests.test_csp_browser import Watched

# The browser and the live server of the pages' tests, shared.
browser = test_pages.browser
live = test_pages.live


def test_a_supervisor_signs_in_with_a_one_time_code_on_a_phone(
    browser: Browser, live: str, initialised: Services
) -> None:
    account = make_account(initialised, "张监察", ConsoleRole.SUPERVISOR)
    watched = Watched(browser)
    watched.page.set_viewport_size(test_pages.PHONE)
    watched.goto(f"{live}/console")  # redirected to the form
    assert watched.page.url == f"{live}/console/sign-in"
    watched.page.fill("#name", account.name)
    watched.page.fill("#password", account.password)
    watched.page.fill("#code", account.code())
    with watched.page.expect_navigation():
        watched.page.click("button[type=submit]")
    assert watched.page.url == f"{live}/console"
    assert watched.page.inner_text("#who-name") == "张监察"
    assert "监察人员" in watched.page.inner_text("#who-role")
    # The stylesheet applies, and nothing is wider than the phone.
    width = watched.page.evaluate("document.documentElement.scrollWidth")
    assert width <= test_pages.PHONE["width"]
    display = watched.page.eval_on_selector("header.bar", "e => getComputedStyle(e).display")
    assert display == "flex"
    assert watched.violations() == []
    # The screenshot shows the page: drawn text, not an empty screen.
    shot = Image.open(io.BytesIO(watched.page.screenshot())).convert("L")
    assert shot.size == (test_pages.PHONE["width"], test_pages.PHONE["height"])
    assert len(set(shot.getdata())) > 8
    # Signing out ends the session: the console asks for a sign-in again.
    with watched.page.expect_navigation():
        watched.page.click("form.inline button")
    assert watched.page.url == f"{live}/console/sign-in"
    watched.goto(f"{live}/console")
    assert watched.page.url == f"{live}/console/sign-in"
