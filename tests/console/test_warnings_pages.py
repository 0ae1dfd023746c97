"""The console's early warnings: raised by the real rules, listed with their filters and
exported as CSV, acknowledged and closed by a supervisor with notes that the history shows;
a department admin reads only its own department's warnings and handles none."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME
from econtract.clock import CHINA, FixedClock
from econtract.departments import add_department
from econtract.models import AuditEvent, Certificate, Department
from econtract.services import Services
from econtract.supervision import count_scan, evaluate_warnings, flush_scans, list_warnings
from tests.console.accounts import HTML, Account, signed_in
from tests.factories import OPERATOR
from tests.licences import fresh_credit_code, issue_example

# A Wednesday, 10:00 in China; the licences were issued at 07:00, before office hours.
NOW = datetime(2026, 11, 18, 10, 0, tzinfo=CHINA)
OTHER_NAME = "台州市市场监督管理局"
FORMULA = '=HYPERLINK("http://evil.example/","x")'


@pytest.fixture
def raised(initialised: Services) -> dict[str, str]:
    """Three warnings raised by the rules: issuance outside office hours in the demo
    department and in another one, and forged scans of a code that names no licence (a
    formula, as a forger could write it). Their ids by ``demo``, ``other`` and ``forged``."""
    initialised.clock = FixedClock(NOW)
    mine, theirs = issue_example(initialised), issue_example(initialised)
    with db.transaction(initialised.sessions) as session:
        other = add_department(
            session, code=fresh_credit_code(), name=OTHER_NAME, region=None, actor=OPERATOR
        )
        for licence in (mine, theirs):
            row = session.get(Certificate, licence.id)
            assert row is not None
            row.issued_at = NOW.replace(hour=7)
        moved = session.get(Certificate, theirs.id)
        assert moved is not None
        moved.department_id = other.id
        demo_id = session.scalars(
            select(Department.id).where(Department.code == DEMO_DEPARTMENT_CODE)
        ).one()
        other_id = other.id
    for _ in range(initialised.settings.warn_failed_scans):
        count_scan(initialised.clock, channel="qr", subject=FORMULA, verdict="FORGED")
    flush_scans(initialised)
    assert evaluate_warnings(initialised) == 3
    ids = {}
    for warning in list_warnings(initialised):
        key = {demo_id: "demo", other_id: "other", None: "forged"}[warning.department_id]
        ids[key] = warning.id
    return ids


def _ids(page: str, warnings: dict[str, str]) -> set[str]:
    return {name for name, id_ in warnings.items() if f"/console/warnings/{id_}" in page}


def _post(client: TestClient, path: str, csrf: str | None, note: str) -> int:
    data = {"note": note} | ({"csrf": csrf} if csrf is not None else {})
    status: int = client.post(path, data=data, headers=HTML).status_code
    return status


def test_a_supervisor_lists_the_open_warnings_of_every_department(
    console: TestClient, supervisor: Account, raised: dict[str, str]
) -> None:
    signed_in(console, supervisor)
    page = console.get("/console/warnings", headers=HTML)
    assert page.status_code == 200
    assert _ids(page.text, raised) == {"demo", "other", "forged"}
    assert "非工作时间办理预警" in page.text
    assert "Issuance outside office hours" in page.text
    assert "WR-FAILED-SCANS" in page.text
    assert OTHER_NAME in page.text
    # The section is linked from every page's frame.
    assert 'href="/console/warnings"' in console.get("/console", headers=HTML).text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rule=WR-OFF-HOURS", {"demo", "other"}),
        ("rule=WR-FAILED-SCANS", {"forged"}),
        (f"department={DEMO_DEPARTMENT_CODE}", {"demo"}),
        ("since=2026-11-18&until=2026-11-18", {"demo", "other", "forged"}),
        ("since=2026-11-19", set()),
        ("until=2026-11-17", set()),
        ("status=acknowledged", set()),
        ("status=all", {"demo", "other", "forged"}),
    ],
)
def test_the_list_filters_on_rule_department_period_and_status(
    console: TestClient,
    supervisor: Account,
    raised: dict[str, str],
    query: str,
    expected: set[str],
) -> None:
    signed_in(console, supervisor)
    page = console.get(f"/console/warnings?{query}", headers=HTML)
    assert page.status_code == 200
    assert _ids(page.text, raised) == expected


@pytest.mark.parametrize(
    "query",
    ["status=pending", "rule=WR-NOPE", "since=18.11.2026", "since=2026-11-19&until=2026-11-18"],
)
def test_a_filter_the_list_refuses_is_a_400_page(
    console: TestClient, supervisor: Account, raised: dict[str, str], query: str
) -> None:
    signed_in(console, supervisor)
    page = console.get(f"/console/warnings?{query}", headers=HTML)
    assert page.status_code == 400
    assert 'role="alert"' in page.text


def test_the_list_is_paged_by_key(
    console: TestClient, supervisor: Account, raised: dict[str, str]
) -> None:
    signed_in(console, supervisor)
    seen: list[str] = []
    path: str | None = "/console/warnings?status=all&limit=1"
    while path is not None:
        page = console.get(path, headers=HTML)
        assert page.status_code == 200
        seen.extend(name for name in ("demo", "other", "forged") if raised[name] in page.text)
        start = page.text.find('id="next" href="')
        path = None
        if start >= 0:
            path = page.text[start + 16 : page.text.index('"', start + 16)].replace("&amp;", "&")
    # One a page, newest first, each once.
    assert sorted(seen) == ["demo", "forged", "other"]
    assert len(seen) == 3
    # A page after a warning the filters do not let through does not exist.
    after = console.get(f"/console/warnings?rule=WR-OFF-HOURS&after={raised['forged']}")
    assert after.status_code == 404


def test_a_supervisor_acknowledges_then_closes_and_the_history_shows_both(
    console: TestClient, supervisor: Account, raised: dict[str, str], initialised: Services
) -> None:
    csrf = signed_in(console, supervisor)
    path = f"/console/warnings/{raised['demo']}"
    answer = console.post(
        f"{path}/acknowledge", data={"csrf": csrf, "note": "已联系部门核实 <b>"}, headers=HTML
    )
    assert (answer.status_code, answer.headers["location"]) == (303, path)
    assert "已确认" in console.get(path, headers=HTML).text
    answer = console.post(
        f"{path}/close", data={"csrf": csrf, "note": "系夜间补录，已说明"}, headers=HTML
    )
    assert answer.status_code == 303
    page = console.get(path, headers=HTML).text
    history = page[page.index('id="history"') :]
    assert history.index("已联系部门核实 &lt;b&gt;") < history.index("系夜间补录，已说明")
    assert history.count(f"console:{supervisor.name}") == 2
    assert "已关闭" in page
    assert 'id="close"' not in page  # no form on a closed warning
    with initialised.sessions() as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == raised["demo"])
            .order_by(AuditEvent.id)
        ).all()
    assert actions == ["warning.raise", "warning.acknowledge", "warning.close"]
    # Closed: in the list of closed warnings, no more among the open ones.
    assert _ids(console.get("/console/warnings?status=closed", headers=HTML).text, raised) == {
        "demo"
    }


def test_closing_a_closed_warning_is_a_409_page(
    console: TestClient, supervisor: Account, raised: dict[str, str]
) -> None:
    csrf = signed_in(console, supervisor)
    path = f"/console/warnings/{raised['other']}/close"
    assert _post(console, path, csrf, "处理完毕") == 303
    again = console.post(path, data={"csrf": csrf, "note": "再次关闭"}, headers=HTML)
    assert again.status_code == 409
    assert "这条预警已关闭" in again.text
    acknowledged = _post(console, path.replace("/close", "/acknowledge"), csrf, "确认")
    assert acknowledged == 409


@pytest.mark.parametrize("note", ["", "   ", "长" * 2001])
def test_a_note_missing_or_too_long_is_the_page_again_with_422(
    console: TestClient, supervisor: Account, raised: dict[str, str], note: str
) -> None:
    csrf = signed_in(console, supervisor)
    path = f"/console/warnings/{raised['demo']}"
    answer = console.post(f"{path}/acknowledge", data={"csrf": csrf, "note": note}, headers=HTML)
    assert answer.status_code == 422
    assert "请填写处理意见" in answer.text
    assert 'id="acknowledge"' in answer.text
    assert "待处理" in console.get(path, headers=HTML).text


def test_a_form_without_its_csrf_token_is_refused(
    console: TestClient, supervisor: Account, raised: dict[str, str]
) -> None:
    signed_in(console, supervisor)
    path = f"/console/warnings/{raised['demo']}"
    assert _post(console, f"{path}/acknowledge", None, "无令牌") == 403
    assert _post(console, f"{path}/close", "forged-token", "他人令牌") == 403
    assert "待处理" in console.get(path, headers=HTML).text


def test_a_department_admin_reads_its_own_warnings_only(
    console: TestClient, admin: Account, raised: dict[str, str]
) -> None:
    signed_in(console, admin)
    page = console.get("/console/warnings?status=all", headers=HTML)
    assert _ids(page.text, raised) == {"demo"}
    assert 'name="department"' not in page.text  # no department picker
    assert console.get(f"/console/warnings/{raised['demo']}", headers=HTML).status_code == 200
    for other in ("other", "forged"):
        assert console.get(f"/console/warnings/{raised[other]}", headers=HTML).status_code == 404
    # Picking another department, or exporting it, finds nothing there.
    chosen = console.get("/console/warnings?department=91330100000000000X", headers=HTML)
    assert chosen.status_code == 404
    export = console.get("/console/warnings?status=all&format=csv")
    assert [row["id"] for row in _rows(export.text)] == [raised["demo"]]


def test_a_department_admin_may_not_handle_a_warning(
    console: TestClient, admin: Account, raised: dict[str, str]
) -> None:
    csrf = signed_in(console, admin)
    page = console.get(f"/console/warnings/{raised['demo']}", headers=HTML)
    assert 'id="acknowledge"' not in page.text
    path = f"/console/warnings/{raised['demo']}"
    assert _post(console, f"{path}/acknowledge", csrf, "部门自行确认") == 403
    assert _post(console, f"{path}/close", csrf, "部门自行关闭") == 403
    # Another department's warning is not there to handle either.
    assert _post(console, f"/console/warnings/{raised['other']}/close", csrf, "x") == 403
    assert "待处理" in console.get(path, headers=HTML).text


def _rows(text: str) -> list[dict[str, str]]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


def test_the_csv_export_holds_the_filtered_list_with_formulas_neutralised(
    console: TestClient, supervisor: Account, raised: dict[str, str]
) -> None:
    csrf = signed_in(console, supervisor)
    path = f"/console/warnings/{raised['forged']}/acknowledge"
    assert _post(console, path, csrf, "=1+1") == 303
    export = console.get("/console/warnings?status=all&rule=WR-FAILED-SCANS&format=csv")
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert export.headers["content-disposition"] == 'attachment; filename="warnings.csv"'
    [row] = _rows(export.text)
    assert row["id"] == raised["forged"]
    assert (row["rule_id"], row["type_zh"], row["status"]) == (
        "WR-FAILED-SCANS",
        "证照核验异常预警",
        "acknowledged",
    )
    # A cell a spreadsheet would run as a formula starts with a quote.
    assert row["subject_id"] == "'" + FORMULA
    assert row["note"].endswith("=1+1")
    assert row["acknowledged_by"] == f"console:{supervisor.name}"
    assert row["raised_at"] == "2026-11-18 10:00"  # China time
    # The open ones (the filter's default; the forged one was acknowledged), of every
    # department for a supervisor.
    every = _rows(console.get("/console/warnings?format=csv").text)
    assert sorted(r["department_name"] for r in every) == sorted([OTHER_NAME, DEMO_DEPARTMENT_NAME])


def test_a_warning_links_the_licence_it_is_about(
    console: TestClient, supervisor: Account, raised: dict[str, str], initialised: Services
) -> None:
    licence = issue_example(initialised)
    for _ in range(initialised.settings.warn_failed_scans):
        count_scan(initialised.clock, channel="verify", subject=licence.id, verdict="MODIFIED")
    flush_scans(initialised)
    assert evaluate_warnings(initialised) == 1
    [warning] = [w for w in list_warnings(initialised) if w.subject_id == licence.id]
    signed_in(console, supervisor)
    page = console.get(f"/console/warnings/{warning.id}", headers=HTML).text
    assert f'<a href="/console/certificates/{licence.id}">{licence.number}</a>' in page
    # A code that names no licence of the registry is plain text.
    forged = console.get(f"/console/warnings/{raised['forged']}", headers=HTML).text
    assert "/console/certificates/" not in forged
    assert "=HYPERLINK(&#34;http://evil.example/&#34;,&#34;x&#34;)" in forged
