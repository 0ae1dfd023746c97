"""The holder app over HTTP (scope ``holder``): the holder's licences with their national
metadata, consents with their 亮证码 and QR image, withdrawal, pages with a ``Link``, the
holder's usage records; every bad input a problem+json naming its code and pointer."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.issuance import IssueRequest, issue_certificate
from econtract.models import Certificate
from econtract.services import Services
from econtract.sharing import HolderType
from tests.factories import OPERATOR, token_for
from tests.licences import fresh_credit_code, holder_fields
from tests.sharing.test_consents import MATTER, PERSON, USER, add_using_department, record_uses

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def using_department(initialised: Services) -> Services:
    """The initialised registry with the using department and its grants."""
    return add_using_department(initialised)


@pytest.fixture
def app(api_client: TestClient, using_department: Services) -> TestClient:
    """The API with the holder app's token on every request."""
    token = token_for(api_client, using_department, scopes="holder", name="浙里办")
    api_client.headers["Authorization"] = f"Bearer {token}"
    return api_client


def issue(services: Services, type_code: str, **fields: Any) -> Certificate:
    """A licence of the demo department: the type's example fields with ``fields`` over them
    (a field given as ``None`` is left out)."""
    merged = {**holder_fields(type_code), **fields}
    return issue_certificate(
        services,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(
            type_code=type_code, fields={k: v for k, v in merged.items() if v is not None}
        ),
        actor=OPERATOR,
    ).certificate


def consent_body(**changes: Any) -> dict[str, Any]:
    return {
        "department": USER,
        "type": "business_licence",
        "matter": MATTER,
        "valid_until": (datetime.now(UTC) + timedelta(days=30)).isoformat(),
        **changes,
    }


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of ``response``, after checking its status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:econtract:problem:{code}"
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [e["pointer"] for e in body.get("errors", [])]


def test_the_holder_sees_its_licences_from_the_registry_with_national_metadata(
    app: TestClient, using_department: Services
) -> None:
    code = fresh_credit_code()
    licence = issue(using_department, "business_licence", credit_code=code)
    permit = issue(using_department, "food_business_permit", credit_code=code)
    issue(using_department, "business_licence")  # another holder's
    listed = app.get(f"/v1/holders/{code}/certificates")
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert {c["id"] for c in body} == {licence.id, permit.id}
    first = next(c for c in body if c["id"] == licence.id)
    assert first["identifier"] == licence.identifier
    assert (first["type"], first["number"], first["status"]) == (
        "business_licence",
        licence.number,
        "valid",
    )
    assert first["issuer_code"] == DEMO_DEPARTMENT_CODE
    assert first["national_metadata"]["holder_code"] == code
    assert first["national_metadata"]["identifier"] == licence.identifier
    only = app.get(f"/v1/holders/{code}/certificates", params={"type": "food_business_permit"})
    assert [c["id"] for c in only.json()] == [permit.id]


def test_a_person_sees_their_licences_with_the_identity_number_unmasked(
    app: TestClient, using_department: Services
) -> None:
    permit = issue(using_department, "food_business_permit", credit_code=None, id_number=PERSON)
    body = app.get(f"/v1/holders/{PERSON}/certificates").json()
    assert [c["id"] for c in body] == [permit.id]
    assert body[0]["national_metadata"]["holder_code"] == PERSON
    assert body[0]["national_metadata"]["holder_type"] == "111"


def test_a_consent_is_given_with_its_show_code_listed_and_withdrawn(app: TestClient) -> None:
    code = fresh_credit_code()
    created = app.post(f"/v1/holders/{code}/consents", json=consent_body(case_number="C-1"))
    assert created.status_code == 201, created.text
    consent = created.json()
    assert created.headers["Location"] == f"/v1/holders/{code}/consents/{consent['id']}"
    assert consent["holder"] == code
    assert (consent["department_code"], consent["department_name"]) == (USER, "台州市建设局")
    assert (consent["type"], consent["matter"], consent["case_number"]) == (
        "business_licence",
        MATTER,
        "C-1",
    )
    assert consent["status"] == "active"
    assert len(consent["show_code"]) == 14
    assert consent["show_code_expires_at"] is not None
    assert consent["show_code_qr"].startswith("data:image/png;base64,")
    assert base64.b64decode(consent["show_code_qr"].split(",", 1)[1]).startswith(PNG)

    listed = app.get(f"/v1/holders/{code}/consents").json()
    assert [c["id"] for c in listed] == [consent["id"]]
    assert "show_code" not in listed[0]

    url = f"/v1/holders/{code}/consents/{consent['id']}"
    withdrawn = app.post(f"{url}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    assert withdrawn.json()["status"] == "withdrawn"
    assert app.get(url).json()["status"] == "withdrawn"
    again = problem(app.post(f"{url}/withdraw"), 409, "consent-already-withdrawn")
    assert "already withdrawn" in again["detail"]
    problem(app.post(f"{url}/show-code"), 409, "consent-not-active")


def test_a_fresh_show_code_is_handed_out_for_an_active_consent(app: TestClient) -> None:
    code = fresh_credit_code()
    consent = app.post(f"/v1/holders/{code}/consents", json=consent_body()).json()
    fresh = app.post(f"/v1/holders/{code}/consents/{consent['id']}/show-code")
    assert fresh.status_code == 200, fresh.text
    assert fresh.json()["id"] == consent["id"]
    assert fresh.json()["show_code"] != consent["show_code"]


def test_a_consent_without_a_show_code_hands_none_out(app: TestClient) -> None:
    created = app.post(
        f"/v1/holders/{fresh_credit_code()}/consents", json=consent_body(show_code=False)
    )
    assert created.status_code == 201, created.text
    assert created.json()["show_code"] is None
    assert created.json()["show_code_qr"] is None


def test_a_consent_for_one_licence_takes_its_identifier_and_gives_its_type(
    app: TestClient, using_department: Services
) -> None:
    code = fresh_credit_code()
    licence = issue(using_department, "business_licence", credit_code=code)
    created = app.post(
        f"/v1/holders/{code}/consents",
        json=consent_body(type=None, certificate=licence.identifier),
    )
    assert created.status_code == 201, created.text
    assert created.json()["type"] == "business_licence"
    assert created.json()["certificate_id"] == licence.id
    assert created.json()["certificate_identifier"] == licence.identifier


def test_another_holders_licence_reads_as_an_unknown_one(
    app: TestClient, using_department: Services
) -> None:
    licence = issue(using_department, "business_licence")
    url = f"/v1/holders/{fresh_credit_code()}/consents"
    theirs = problem(
        app.post(url, json=consent_body(type=None, certificate=licence.id)), 404, "not-found"
    )
    unknown = problem(
        app.post(url, json=consent_body(type=None, certificate="cert_none")), 404, "not-found"
    )
    assert theirs["title"] == unknown["title"]


@pytest.mark.parametrize(
    ("holder", "query", "changes", "code", "pointer"),
    [
        ("12345", {}, {}, "invalid-input", "/holder_code"),
        ("110105194912310021", {}, {}, "invalid-input", "/holder_code"),
        (PERSON, {"holder_type": "999"}, {}, "invalid-input", "/holder_type"),
        (None, {}, {"matter": "事" * 201}, "invalid-input", "/matter"),
        (None, {}, {"valid_until": "2020-01-01T00:00:00+08:00"}, "invalid-input", "/valid_until"),
        (None, {}, {"valid_until": "2099-01-01T00:00:00+08:00"}, "invalid-input", "/valid_until"),
        (None, {}, {"certificate": "cert_x"}, "invalid-input", "/type"),
        (None, {}, {"type": None}, "invalid-input", "/type"),
        (None, {}, {"department": "91330100MA27XYZ123"}, "unknown-department", "/department"),
        (None, {}, {"type": "construction_permit"}, "no-grant-for-consent", "/matter"),
        (None, {}, {"matter": "施工图审查"}, "no-grant-for-consent", "/matter"),
    ],
)
def test_a_bad_consent_is_a_problem_naming_its_code_and_pointer(
    app: TestClient,
    holder: str | None,
    query: dict[str, str],
    changes: dict[str, Any],
    code: str,
    pointer: str,
) -> None:
    response = app.post(
        f"/v1/holders/{holder or fresh_credit_code()}/consents",
        params=query,
        json=consent_body(**changes),
    )
    body = problem(response, 422, code)
    assert pointers(body)[0] == pointer


def test_an_unknown_or_another_holders_consent_is_not_found(app: TestClient) -> None:
    owner, other = fresh_credit_code(), fresh_credit_code()
    consent = app.post(f"/v1/holders/{owner}/consents", json=consent_body()).json()
    for holder, consent_id in ((owner, "cns_unknown"), (other, consent["id"])):
        url = f"/v1/holders/{holder}/consents/{consent_id}"
        problem(app.get(url), 404, "not-found")
        problem(app.post(f"{url}/withdraw"), 404, "not-found")
        problem(app.post(f"{url}/show-code"), 404, "not-found")
    assert app.get(f"/v1/holders/{owner}/consents/{consent['id']}").json()["status"] == "active"


def test_a_client_without_the_holder_scope_is_refused(
    api_client: TestClient, using_department: Services
) -> None:
    token = token_for(api_client, using_department, scopes="read,use")
    headers = {"Authorization": f"Bearer {token}"}
    code = fresh_credit_code()
    for method, path in (
        ("GET", "certificates"),
        ("GET", "consents"),
        ("POST", "consents"),
        ("GET", "usage"),
    ):
        response = api_client.request(
            method, f"/v1/holders/{code}/{path}", headers=headers, json=consent_body()
        )
        problem(response, 403, "forbidden")


def test_consents_come_newest_first_in_pages_linked_by_link(app: TestClient) -> None:
    code = fresh_credit_code()
    made = [
        app.post(f"/v1/holders/{code}/consents", json=consent_body()).json()["id"] for _ in range(3)
    ]
    first = app.get(f"/v1/holders/{code}/consents", params={"limit": 2})
    link = first.headers["Link"]
    assert link.endswith('>; rel="next"')
    second = app.get(link[1 : link.index(">")])
    assert "Link" not in second.headers
    seen = [c["id"] for c in first.json() + second.json()]
    assert sorted(seen) == sorted(made)
    assert len(set(seen)) == 3
    times = [c["created_at"] for c in first.json() + second.json()]
    assert times == sorted(times, reverse=True)


def test_the_usage_list_shows_the_holders_records_only_in_linked_pages(
    app: TestClient, using_department: Services
) -> None:
    code, other = fresh_credit_code(), fresh_credit_code()
    record_uses(
        using_department,
        [
            ((code, HolderType.CREDIT_CODE), "lookup", "granted"),
            ((other, HolderType.CREDIT_CODE), "lookup", "granted"),
            ((code, HolderType.CREDIT_CODE), "check", "consent-required"),
        ],
    )
    first = app.get(f"/v1/holders/{code}/usage", params={"limit": 1})
    assert first.status_code == 200, first.text
    link = first.headers["Link"]
    second = app.get(link[1 : link.index(">")])
    assert "Link" not in second.headers
    records = first.json() + second.json()
    assert [(r["action"], r["result"]) for r in records] == [
        ("check", "consent-required"),
        ("lookup", "granted"),
    ]
    assert records[0] == {
        **records[0],
        "department_code": USER,
        "department_name": "台州市建设局",
        "use_cause": "审核施工许可申请",
        "matter": MATTER,
        "case_number": "C-9",
        "identifier": None,
        "consent_id": None,
    }
