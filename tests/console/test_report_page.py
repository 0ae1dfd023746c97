"""The console's monthly report: the form, the sealed PDF it downloads, and who may have
which department's report (a department admin only its own; another's is not found)."""

from __future__ import annotations

import re
import subprocess
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from econtract import db
from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.clock import CHINA, FixedClock
from econtract.departments import add_department
from econtract.issuance import IssueRequest, issue_certificate
from econtract.reports import Month
from econtract.services import Services
from tests.console.accounts import HTML, Account, signed_in
from tests.factories import OPERATOR
from tests.licences import holder_fields

SECOND = "9133040016D272HD32"
SECOND_NAME = "台州市市场监督管理局"


@pytest.fixture
def arranged(initialised: Services) -> Services:
    """A second department, and a licence of each issued in November 2026."""
    with db.transaction(initialised.sessions) as session:
        add_department(session, code=SECOND, name=SECOND_NAME, region=None, actor=OPERATOR)
    initialised.clock = FixedClock(datetime(2026, 11, 16, 10, tzinfo=CHINA))
    issue_certificate(
        initialised,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(
            type_code="business_licence", fields=holder_fields("business_licence")
        ),
        actor=OPERATOR,
    )
    return initialised


def _ask(
    console: TestClient, csrf: str, month: str = "2026-11", department: str = ""
) -> httpx.Response:
    answer: httpx.Response = console.post(
        "/console/reports/monthly",
        data={"csrf": csrf, "month": month, "department": department},
        headers=HTML,
    )
    return answer


def _text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "download.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return re.sub(r"\s+", "", done.stdout)


def test_the_page_offers_last_month_and_every_department_to_a_supervisor(
    arranged: Services, console: TestClient, supervisor: Account
) -> None:
    signed_in(console, supervisor)
    page = console.get("/console/reports", headers=HTML)
    assert page.status_code == 200
    now = datetime.now(CHINA)
    last = Month(year=now.year, month=now.month).previous
    assert f'name="month" type="month" value="{last}"' in page.text
    assert f'<option value="{SECOND}">{SECOND_NAME} ({SECOND})</option>' in page.text
    assert 'href="/console/reports"' in console.get("/console", headers=HTML).text


def test_a_supervisor_downloads_the_provinces_sealed_report(
    arranged: Services, console: TestClient, supervisor: Account, tmp_path: Path
) -> None:
    answer = _ask(console, signed_in(console, supervisor))
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == (
        'attachment; filename="monthly-report-2026-11.pdf"'
    )
    assert answer.headers["cache-control"] == "no-store"
    text = _text(answer.content, tmp_path)
    assert "电子监察月度通报2026年11月" in text
    assert "全省Province" in text
    verdict = console.post("/v1/verify", files={"file": ("r.pdf", answer.content)})
    assert verdict.json()["verdict"] == "VALID"


def test_a_supervisor_downloads_one_departments_report(
    arranged: Services, console: TestClient, supervisor: Account, tmp_path: Path
) -> None:
    answer = _ask(console, signed_in(console, supervisor), department=SECOND)
    assert answer.status_code == 200
    disposition = f'attachment; filename="monthly-report-2026-11-{SECOND}.pdf"'
    assert answer.headers["content-disposition"] == disposition
    assert f"{SECOND_NAME}（{SECOND}）" in _text(answer.content, tmp_path)


def test_a_department_admin_gets_its_own_departments_report(
    arranged: Services, console: TestClient, admin: Account, tmp_path: Path
) -> None:
    csrf = signed_in(console, admin)
    page = console.get("/console/reports", headers=HTML)
    assert "<select" not in page.text
    for department in ("", DEMO_DEPARTMENT_CODE):
        answer = _ask(console, csrf, department=department)
        assert answer.status_code == 200
        assert DEMO_DEPARTMENT_CODE in answer.headers["content-disposition"]
        assert f"（{DEMO_DEPARTMENT_CODE}）" in _text(answer.content, tmp_path)


@pytest.mark.parametrize("department", [SECOND, "91330000000000000X"])
def test_a_department_admin_cannot_get_another_departments_report(
    arranged: Services, console: TestClient, admin: Account, department: str
) -> None:
    answer = _ask(console, signed_in(console, admin), department=department)
    assert answer.status_code == 404
    assert "没有这个部门" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize(
    ("month", "message"),
    [("2026-13", "There is no month 2026-13."), ("2099-01", "has not begun"), ("x", "YYYY-MM")],
)
def test_a_bad_month_is_the_form_again_with_the_message(
    arranged: Services, console: TestClient, supervisor: Account, month: str, message: str
) -> None:
    answer = _ask(console, signed_in(console, supervisor), month=month)
    assert answer.status_code == 422
    assert message in answer.text
    assert 'action="/console/reports/monthly"' in answer.text


def test_the_form_without_its_csrf_token_is_refused(
    arranged: Services, console: TestClient, supervisor: Account
) -> None:
    signed_in(console, supervisor)
    assert _ask(console, "not-the-token").status_code == 403


def test_without_a_session_the_page_sends_to_sign_in(console: TestClient) -> None:
    answer = console.get("/console/reports", headers=HTML)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"
