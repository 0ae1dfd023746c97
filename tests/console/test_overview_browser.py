"""A supervisor opens the console's figures in Chromium under the pages' Content-Security-
Policy: the charts are drawn (the screenshot shows the bars' colour), and a click on a bar
opens the records behind it."""

from __future__ import annotations

import io

from PIL import Image
from playwright.sync_api import Browser

from econtract.console import ConsoleRole
from econtract.services import Services
from econtract.supervision._charts import PALETTE
from tests import test_pages
from tests.console.accounts import make_account
from tests.test_csp_browser import Watched, issued

# The browser and the live server of the pages' tests, shared.
browser = test_pages.browser
live = test_pages.live

LAPTOP = {"width": 1280, "height": 900}


def test_a_supervisor_clicks_a_bar_and_reads_the_records_behind_it(
    browser: Browser, live: str, initialised: Services
) -> None:
    certificate = issued(initialised)  # today, by the demo department
    account = make_account(initialised, "王监察", ConsoleRole.SUPERVISOR)
    watched = Watched(browser)
    watched.page.set_viewport_size(LAPTOP)  # type: ignore[arg-type]
    watched.goto(f"{live}/console/sign-in")
    watched.page.fill("#name", account.name)
    watched.page.fill("#password", account.password)
    watched.page.fill("#code", account.code())
    with watched.page.expect_navigation():
        watched.page.click("button[type=submit]")
    watched.goto(f"{live}/console/overview")
    chart = watched.page.locator("#issued-per-day svg.chart")
    assert chart.is_visible()
    box = chart.bounding_box()
    assert box is not None
    assert box["width"] > 600  # scaled to the column
    bars = watched.page.locator("#issued-per-day svg.chart .mark")
    assert bars.count() == 1
    assert watched.violations() == []
    # The screenshot of the chart shows drawn text and the bar in the first colour.
    shot = Image.open(io.BytesIO(chart.screenshot())).convert("RGB")
    colours = {colour: n for n, colour in shot.getcolors(1 << 24) or []}
    assert len(colours) > 8
    accent = tuple(int(PALETTE[0][i : i + 2], 16) for i in (1, 3, 5))
    assert colours.get(accent, 0) > 50
    with watched.page.expect_navigation():
        bars.first.click()
    assert "/console/records/issued?" in watched.page.url
    cells = watched.page.locator("table.records tbody td").all_inner_texts()
    assert cells[0] == certificate.number
    assert watched.violations() == []
    # On a phone the chart shrinks with the page: nothing is wider than the screen.
    watched.page.set_viewport_size(test_pages.PHONE)
    watched.goto(f"{live}/console/overview")
    width = watched.page.evaluate("document.documentElement.scrollWidth")
    assert width <= test_pages.PHONE["width"]
