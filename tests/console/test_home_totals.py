"""The console's home page: the last 30 days' totals of what the person may see, each linked
to the page that shows it at length."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient

from econtract.clock import CHINA, FixedClock
from econtract.services import Services
from econtract.supervision import Period, headline
from tests.console.accounts import HTML, signed_in
from tests.supervision.test_overview import Registry, registry

__all__ = ["registry"]

pytestmark = pytest.mark.registry

# A week after the arranged registry's week (16–22 November 2026): its 30 days hold it all.
TODAY = datetime(2026, 11, 29, 12, 0, tzinfo=CHINA)
PERIOD = "from=2026-10-31&to=2026-11-29"


def _totals(page: str) -> dict[str, int]:
    return {
        name: int(value)
        for name, value in re.findall(r'<dd id="total-([a-z-]+)"><a href="[^"]+">(\d+)</a>', page)
    }


def _table_total(page: str, chart: str, label: str | None = None) -> int:
    section = re.search(rf'id="{chart}">(.*?)</section>', page, re.S)
    assert section
    rows = re.findall(
        r'<tr><td>[^<]*</td><td>([^<]*)</td><td class="number">(?:<a href="[^"]*">)?([^<]*)',
        section.group(1),
    )
    return sum(int(value) for name, value in rows if label is None or name == label)


@pytest.mark.parametrize("who", ["supervisor", "admin"])
def test_the_home_page_totals_are_the_figures_of_the_last_30_days(
    console: TestClient, registry: Registry, who: str, request: pytest.FixtureRequest
) -> None:
    signed_in(console, request.getfixturevalue(who))
    services: Services = console.app.state.services  # type: ignore[attr-defined]
    services.clock = FixedClock(TODAY)
    home = console.get("/console", headers=HTML)
    assert home.status_code == 200
    totals = _totals(home.text)
    figures = console.get(f"/console/overview?{PERIOD}", headers=HTML).text
    assert totals["issued"] == _table_total(figures, "issued-per-day")
    assert totals["status-changes"] == _table_total(figures, "status-changes-per-day")
    assert totals["failed-scans"] == _table_total(
        figures, "scans-per-day", "伪造或未知 FORGED/UNKNOWN"
    )
    assert totals["warnings-open"] == 0
    if who == "supervisor":
        # The arranged registry's numbers: its week, the Sunday before and the Monday after.
        assert (totals["issued"], totals["status-changes"], totals["envelopes-open"]) == (6, 4, 1)
        assert totals["failed-scans"] == 3
    else:
        # A department admin's totals are their own department's: fewer than the province's.
        assert totals["issued"] < 6
    # A month later the week has left the window.
    later = headline(services, Period(since=date(2026, 12, 1), until=date(2026, 12, 31)))
    assert (later.issued, later.status_changes, later.failed_scans) == (0, 0, 0)
