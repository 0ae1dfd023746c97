"""The console's overview and drill-downs on the arranged registry of the overview's figures:
the numbers on the page are the registry's, a point's link lists exactly its records, every
table exports as CSV, and a department admin sees their own department only."""

from __future__ import annotations

import csv
import html
import io
import re
import xml.etree.ElementTree as ET
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clock import FixedClock
from econtract.issuance import TEMPLATES, IssueRequest, issue_certificate
from econtract.models import Certificate
from econtract.supervision import count_scan, flush_scans
from econtract.supervision._drilldown import MAX_LIMIT
from tests.console.accounts import HTML, Account, signed_in
from tests.factories import OPERATOR
from tests.licences import holder_fields
from tests.supervision.test_overview import Registry, china, registry

__all__ = ["registry"]

pytestmark = pytest.mark.registry

WEEK = "from=2026-11-16&to=2026-11-22"
SVG = "{http://www.w3.org/2000/svg}"


def _section(page: str, name: str) -> str:
    match = re.search(rf'<section class="card figure" id="{name}">(.*?)</section>', page, re.S)
    assert match, f"no chart {name}"
    return match.group(1)


def _rows(page: str, name: str) -> list[tuple[str, str, str, str | None]]:
    """A chart's table: (category, series, value, the value's link)."""
    rows = re.findall(
        r'<tr><td>([^<]*)</td><td>([^<]*)</td><td class="number">(?:<a href="([^"]*)">)?([^<]*)',
        _section(page, name),
    )
    return [
        (html.unescape(x), html.unescape(label), value, html.unescape(href) or None)
        for x, label, href, value in rows
    ]


def _csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def _numbers(registry: Registry, *names: str) -> set[str]:
    with registry.services.sessions() as session:
        ids = [registry.licences[name] for name in names]
        return set(session.scalars(select(Certificate.number).where(Certificate.id.in_(ids))))


def _records(page: str) -> list[list[str]]:
    body = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    assert body
    rows = [
        [html.unescape(cell) for cell in re.findall(r"<td>([^<]*)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)
    ]
    return [row for row in rows if row]  # not the "no records" line


def test_without_a_session_the_overview_redirects_to_sign_in(console: TestClient) -> None:
    for path in ("/console/overview", "/console/records/scans?day=2026-11-17"):
        answer = console.get(path, headers=HTML)
        assert answer.status_code == 303
        assert answer.headers["location"] == "/console/sign-in"


def test_the_supervisors_overview_shows_the_registrys_numbers(
    console: TestClient, supervisor: Account, registry: Registry
) -> None:
    signed_in(console, supervisor)
    page = console.get(f"/console/overview?{WEEK}", headers=HTML)
    assert page.status_code == 200
    assert 'href="/console/overview"' in page.text  # the section's link in the frame
    first, second = registry.first, registry.second
    issued = [(x, v) for x, _, v, _ in _rows(page.text, "issued-per-day")]
    assert sorted(issued) == [("2026-11-16", "2"), ("2026-11-17", "1"), ("2026-11-17", "1")]
    weekly = {(x, label): v for x, label, v, _ in _rows(page.text, "issued-per-week")}
    assert weekly["2026-W47", "台州市市场监督管理局 · 营业执照"] == "1"
    changes = [(x, label, v) for x, label, v, _ in _rows(page.text, "status-changes-per-day")]
    assert changes == [
        ("2026-11-18", "revoked · 吊销：虚假材料", "2"),
        ("2026-11-18", "suspended · 暂停使用：核查中", "1"),
        ("2026-11-19", "revoked · 注销", "1"),
    ]
    envelopes = {(x, v) for x, _, v, _ in _rows(page.text, "envelopes-by-status")}
    assert envelopes == {
        ("已完成 completed", "4"),
        ("已完成 completed", "1"),
        ("进行中 open", "1"),
        ("已拒签 declined", "1"),
        ("已过期 expired", "1"),
    }
    times = {
        label: v
        for _, label, v, href in _rows(page.text, "completion-times")
        if f"initiator={first}" in (href or "")
    }
    assert times == {"median": "4", "p90": "8.50"}
    uses = sorted((x, v) for x, _, v, _ in _rows(page.text, "uses-by-other-departments"))
    assert uses == [("2026-11-18", "2"), ("2026-11-19", "1"), ("2026-11-20", "1")]
    scans = {(x, label): v for x, label, v, _ in _rows(page.text, "scans-per-day")}
    assert scans["2026-11-17", "扫码 scans"] == "4"
    assert scans["2026-11-18", "伪造或未知 FORGED/UNKNOWN"] == "2"
    share = {x: v for x, _, v, _ in _rows(page.text, "failed-share-per-day")}
    assert share == {"2026-11-17": "25", "2026-11-18": "50"}
    # One mark per row, each linked to the same drill-down as its row.
    svg = re.search(r"<svg.*?</svg>", _section(page.text, "issued-per-day"), re.S)
    assert svg
    root = ET.fromstring(svg.group(0))
    links = sorted(html.unescape(a.get("href", "")) for a in root.iter(f"{SVG}a"))
    assert links == sorted(href or "" for *_, href in _rows(page.text, "issued-per-day"))
    assert second  # both departments appear in the picker
    assert f'<option value="{second}">台州市市场监督管理局</option>' in page.text


@pytest.mark.parametrize("who", ["supervisor", "admin"])
def test_every_points_drill_down_holds_as_many_records_as_its_value(
    console: TestClient, registry: Registry, who: str, request: pytest.FixtureRequest
) -> None:
    signed_in(console, request.getfixturevalue(who))
    page = console.get(f"/console/overview?{WEEK}", headers=HTML)
    counted = (
        "issued-per-day",
        "issued-per-week",
        "status-changes-per-day",
        "envelopes-by-status",
        "uses-by-other-departments",
    )
    for chart in (*counted, "scans-per-day"):
        rows = _rows(page.text, chart)
        assert rows, chart
        for x, label, value, href in rows:
            assert href, (chart, x, label)
            records = console.get(href, headers=HTML)
            assert records.status_code == 200, href
            listed = _records(records.text)
            if chart == "scans-per-day":  # a row per licence and answer, with its count
                assert sum(int(row[3]) for row in listed) == int(value), href
            else:
                assert len(listed) == int(value), href


def test_a_point_lists_exactly_its_records_with_a_next_link(
    console: TestClient, supervisor: Account, registry: Registry
) -> None:
    signed_in(console, supervisor)
    page = console.get(f"/console/overview?{WEEK}", headers=HTML)
    href = next(h for x, _, _, h in _rows(page.text, "issued-per-day") if x == "2026-11-16")
    assert href
    records = console.get(href, headers=HTML)
    assert records.status_code == 200
    listed = {row[0] for row in _records(records.text)}
    assert listed == _numbers(registry, "midnight", "monday")
    # A page of one: the next link leads to the other record, then no further.
    one = console.get(href + "&limit=1", headers=HTML)
    rows = _records(one.text)
    assert len(rows) == 1
    following = re.search(r'<a rel="next" href="([^"]+)"', one.text)
    assert following
    two = console.get(html.unescape(following.group(1)), headers=HTML)
    assert {r[0] for r in _records(two.text)} | {rows[0][0]} == listed
    assert 'rel="next"' not in two.text
    # A record of another point is no cursor of this one.
    stranger = console.get(f"{href}&after={registry.licences['food']}", headers=HTML)
    assert stranger.status_code == 404


def test_the_drill_down_csv_has_the_records_and_neutralises_formulas(
    console: TestClient, supervisor: Account, registry: Registry, initialised: object
) -> None:
    services = registry.services
    fields = holder_fields("business_licence")
    fields[TEMPLATES["business_licence"].holder_name_field] = '=HYPERLINK("http://x","点我")'
    services.clock = FixedClock(china(16, 10))
    formula = issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code="business_licence", fields=fields),
        actor=OPERATOR,
    ).certificate
    signed_in(console, supervisor)
    answer = console.get(
        f"/console/records/issued?from=2026-11-16&to=2026-11-16&issuer={registry.first}"
        "&type=business_licence&format=csv",
        headers=HTML,
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == (
        'attachment; filename="issued-2026-11-16-2026-11-16.csv"'
    )
    header, *rows = _csv(answer.text)
    assert header[0] == "证照编号 Number"
    assert {row[0] for row in rows} == _numbers(registry, "midnight", "monday") | {formula.number}
    holders = {row[0]: row[3] for row in rows}
    assert holders[formula.number] == '\'=HYPERLINK("http://x","点我")'


def test_a_long_drill_down_streams_every_page_into_the_csv(
    console: TestClient, supervisor: Account, registry: Registry
) -> None:
    services = registry.services
    services.clock = FixedClock(datetime(2026, 11, 21, 10, tzinfo=china(1, 0).tzinfo))
    for n in range(MAX_LIMIT + 5):
        count_scan(services.clock, channel="qr", subject=f"cer_unknown_{n:04d}", verdict="UNKNOWN")
    flush_scans(services)
    signed_in(console, supervisor)
    answer = console.get(
        "/console/records/scans?from=2026-11-21&to=2026-11-21&failed=1&format=csv", headers=HTML
    )
    _, *rows = _csv(answer.text)
    assert len(rows) == MAX_LIMIT + 5
    assert len({row[1] for row in rows}) == MAX_LIMIT + 5


def test_the_charts_table_exports_as_csv(
    console: TestClient, supervisor: Account, registry: Registry
) -> None:
    signed_in(console, supervisor)
    answer = console.get(f"/console/overview.csv?chart=status-changes-per-day&{WEEK}")
    assert answer.status_code == 200
    assert answer.headers["content-disposition"] == (
        'attachment; filename="status-changes-per-day-2026-11-16-2026-11-22.csv"'
    )
    assert _csv(answer.text) == [
        ["类别 Category", "系列 Series", "数值 Value"],
        ["2026-11-18", "revoked · 吊销：虚假材料", "2"],
        ["2026-11-18", "suspended · 暂停使用：核查中", "1"],
        ["2026-11-19", "revoked · 注销", "1"],
    ]


def test_a_department_admin_sees_only_their_own_department(
    console: TestClient, admin: Account, registry: Registry
) -> None:
    signed_in(console, admin)
    page = console.get(f"/console/overview?{WEEK}", headers=HTML)
    assert page.status_code == 200
    assert "<select" not in page.text  # no department picker
    issued = _rows(page.text, "issued-per-day")
    assert all(f"issuer={registry.first}" in (href or "") for *_, href in issued)
    assert sum(int(v) for _, _, v, _ in issued) == 3
    # Another department's figures, records or CSV: not there.
    second = registry.second
    for path in (
        f"/console/overview?{WEEK}&department_id={second}",
        f"/console/overview.csv?chart=issued-per-day&{WEEK}&department_id={second}",
        f"/console/records/issued?from=2026-11-17&to=2026-11-17&issuer={second}"
        "&type=business_licence",
        f"/console/records/issued?from=2026-11-17&to=2026-11-17&issuer={second}"
        "&type=business_licence&format=csv",
        f"/console/records/envelopes?{WEEK}&initiator={second}&status=expired",
    ):
        answer = console.get(path, headers=HTML)
        assert answer.status_code == 404, path
        assert "台州" not in answer.text
    own = console.get(f"/console/overview?{WEEK}&department_id={registry.first}", headers=HTML)
    assert own.status_code == 200


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "The &#39;from&#39; date is written YYYY-MM-DD"),
        ("from=2026-11-20&to=2026-11-10", "A period ends after it begins."),
        ("from=2020-01-01&to=2026-11-10", "A period covers at most 731 days."),
    ],
)
def test_bad_dates_answer_400_with_the_message(
    console: TestClient, supervisor: Account, query: str, message: str
) -> None:
    signed_in(console, supervisor)
    answer = console.get(f"/console/overview?{query}", headers=HTML)
    assert answer.status_code == 400
    assert message in answer.text
