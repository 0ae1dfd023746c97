"""The using department's calls over HTTP: the answers, each bad input a specific
problem+json with a pointer, each refusal its own problem type, the scope ``use`` required;
the issuer's list of uses and the auditor's export of usage records."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from econtract.bootstrap import DEMO_DEPARTMENT_CODE
from econtract.issuance import IssueRequest, issue_certificate, mask
from econtract.models import Certificate, UsageRecord
from econtract.services import Services
from econtract.translog import LogEntry, canonical_json
from tests.factories import OPERATOR, token_for
from tests.licences import holder_fields, issue_example
from tests.sharing.consents import MATTER, OTHER_USER, USER, add_user, grant, insert_consent

PROBLEM = "application/problem+json"
PERSON = "11010519491231002X"
"""A person who holds a licence (a valid resident identity number)."""


@pytest.fixture
def user(initialised: Services) -> Services:
    """The registry with a using department (no grants yet)."""
    add_user(initialised)
    return initialised


@pytest.fixture
def licence(user: Services) -> Certificate:
    """A business licence of the demo department."""
    return issue_example(user)


@pytest.fixture
def headers(api_client: TestClient, user: Services) -> dict[str, str]:
    """The using department's approval system (scope ``use``)."""
    return {"Authorization": f"Bearer {token_for(api_client, user, USER, 'use')}"}


def lookup_body(licence: Certificate, **extra: Any) -> dict[str, Any]:
    return {
        "holder_code": licence.national_holder_code,
        "holder_type": licence.national_holder_type,
        "use_cause": "核验申请人营业执照",
        "matter": MATTER,
        **extra,
    }


def problem_of(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:econtract:problem:{code}"
    return body


def pointers(body: dict[str, Any]) -> list[str]:
    return [e["pointer"] for e in body["errors"]]


def test_a_lookup_answers_the_licences_metadata_and_status_not_the_document(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    grant(user)
    response = api_client.post("/v1/use/lookup", json=lookup_body(licence), headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["omitted"] == []
    [item] = body["licences"]
    assert item["id"] == licence.id
    assert item["identifier"] == licence.identifier
    assert item["issuer"]["code"] == DEMO_DEPARTMENT_CODE
    assert item["holder_code"] == licence.national_holder_code
    assert item["status"] == "valid"
    assert item["national_metadata"]["number"] == licence.number
    assert "pdf_url" not in item
    assert "fields" not in item


def test_a_client_without_scope_use_is_forbidden(
    api_client: TestClient, user: Services, licence: Certificate
) -> None:
    grant(user)
    token = token_for(api_client, user, USER, "read")
    response = api_client.post(
        "/v1/use/lookup",
        json=lookup_body(licence),
        headers={"Authorization": f"Bearer {token}"},
    )
    problem_of(response, 403, "forbidden")


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        ({"holder_type": "999"}, "/holder_type"),
        ({"holder_code": "91330100MA00000000"}, "/holder_code"),
        ({"holder_type": "111", "holder_code": "330106199001011234"}, "/holder_code"),
        ({"use_cause": "x" * 201}, "/use_cause"),
        ({"use_cause": "  "}, "/use_cause"),
        ({"matter": None}, "/matter"),
    ],
)
def test_bad_input_is_a_problem_with_a_pointer(
    api_client: TestClient,
    user: Services,
    licence: Certificate,
    headers: dict[str, str],
    change: dict[str, Any],
    pointer: str,
) -> None:
    body = {k: v for k, v in lookup_body(licence, **change).items() if v is not None}
    response = api_client.post("/v1/use/lookup", json=body, headers=headers)
    assert pointer in pointers(problem_of(response, 422, "invalid-input"))


def test_refusals_are_their_own_problems_and_recorded_with_that_code(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    no_grant = api_client.post(
        "/v1/use/lookup", json=lookup_body(licence, type="business_licence"), headers=headers
    )
    assert "business_licence" in problem_of(no_grant, 403, "no-grant")["detail"]
    grant(user, requires_consent=True)
    expired, _ = insert_consent(user, licence, valid_for=timedelta(seconds=-1))
    response = api_client.post(
        "/v1/use/lookup", json=lookup_body(licence, consent=expired), headers=headers
    )
    problem_of(response, 403, "consent-expired")
    add_user(user, OTHER_USER, "杭州市市场监管局")
    others, _ = insert_consent(user, licence, department=OTHER_USER)
    response = api_client.post(
        "/v1/use/lookup", json=lookup_body(licence, consent=others), headers=headers
    )
    problem_of(response, 403, "consent-mismatch")
    with user.sessions() as session:
        results = list(session.scalars(select(UsageRecord.result).order_by(UsageRecord.id)))
    assert results == ["no-grant", "consent-expired", "consent-mismatch"]


def test_a_lookup_without_consent_names_the_types_it_left_out(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    grant(user, requires_consent=True)
    grant(user, "food_business_permit")
    response = api_client.post("/v1/use/lookup", json=lookup_body(licence), headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "licences": [],
        "omitted": [{"type": "business_licence", "reason": "consent-required"}],
        "consent": None,
    }


def test_a_check_answers_match_and_status_and_nothing_on_a_mismatch(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    grant(user)
    body = {
        "type": "business_licence",
        "fields": licence.fields,
        "use_cause": "核验申报信息",
        "matter": MATTER,
    }
    response = api_client.post("/v1/use/check", json=body, headers=headers)
    assert response.status_code == 200, response.text
    expected = {
        "match": True,
        "identifier": licence.identifier,
        "status": "valid",
        "national_status": "01",
        "valid_until": None if licence.valid_until is None else licence.valid_until.isoformat(),
    }
    # A licence without an end has no valid_until: members without a value are left out.
    assert response.json() == {k: v for k, v in expected.items() if v is not None}
    changed = {**licence.fields, "registered_capital": "1元"}
    response = api_client.post("/v1/use/check", json={**body, "fields": changed}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"match": False}


def test_a_scan_answers_the_consented_licence_and_a_second_scan_is_refused(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    grant(user, requires_consent=True)
    consent_id, code = insert_consent(user, licence, show_code_for=timedelta(minutes=5))
    body = {"code": code, "use_cause": "窗口亮证", "matter": MATTER}
    response = api_client.post("/v1/use/scan", json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["licences"]] == [licence.id]
    assert response.json()["consent"] == consent_id
    problem_of(api_client.post("/v1/use/scan", json=body, headers=headers), 403, "show-code-used")


def test_scan_refusals_are_distinct_problems(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    grant(user, requires_consent=True)
    add_user(user, OTHER_USER, "杭州市市场监管局")
    _, expired = insert_consent(user, licence, show_code_for=timedelta(seconds=-1))
    _, others = insert_consent(
        user, licence, department=OTHER_USER, show_code_for=timedelta(minutes=5)
    )
    cases = [
        ("ABCD-EFGH-JKMN", 404, "show-code-unknown"),
        (expired, 403, "show-code-expired"),
        (others, 403, "show-code-other-department"),
    ]
    for code, status, problem in cases:
        body = {"code": code, "use_cause": "窗口亮证", "matter": MATTER}
        problem_of(api_client.post("/v1/use/scan", json=body, headers=headers), status, problem)
    malformed = api_client.post(
        "/v1/use/scan",
        json={"code": "IIII", "use_cause": "窗口亮证", "matter": MATTER},
        headers=headers,
    )
    assert pointers(problem_of(malformed, 422, "invalid-input")) == ["/code"]


def test_the_issuer_pages_through_the_uses_of_its_licence(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    grant(user)
    for _ in range(3):
        api_client.post("/v1/use/lookup", json=lookup_body(licence), headers=headers)
    reader = {"Authorization": f"Bearer {token_for(api_client, user, scopes='read')}"}
    first = api_client.get(f"/v1/certificates/{licence.id}/usage?limit=2", headers=reader)
    assert first.status_code == 200, first.text
    assert len(first.json()) == 2
    link = first.headers["Link"]
    assert link.endswith('rel="next"')
    rest = api_client.get(link[1 : link.index(">")], headers=reader)
    assert len(rest.json()) == 1
    assert "Link" not in rest.headers
    item = rest.json()[0]
    assert item["department"]["code"] == USER
    assert (item["action"], item["result"], item["matter"]) == ("lookup", "granted", MATTER)
    assert item["holder"] == licence.national_holder_code
    ids = [i["usage_id"] for i in first.json() + rest.json()]
    assert len(set(ids)) == 3


def test_another_departments_licence_has_no_usage_to_show(
    api_client: TestClient, user: Services, licence: Certificate
) -> None:
    reader = {"Authorization": f"Bearer {token_for(api_client, user, USER, 'read')}"}
    response = api_client.get(f"/v1/certificates/{licence.id}/usage", headers=reader)
    problem_of(response, 404, "not-found")


def test_the_auditor_exports_usage_records_with_the_log_entries_that_commit_to_them(
    api_client: TestClient, user: Services, licence: Certificate, headers: dict[str, str]
) -> None:
    grant(user)
    api_client.post("/v1/use/lookup", json=lookup_body(licence), headers=headers)
    auditor = {"Authorization": f"Bearer {token_for(api_client, user, scopes='audit')}"}
    response = api_client.get("/v1/audit/usage", headers=auditor)
    assert response.status_code == 200, response.text
    [record] = response.json()
    assert record["certificate_id"] == licence.id
    entry_bytes = base64.b64decode(record["log_entry"]["entry"])
    assert str(licence.national_holder_code).encode() not in entry_bytes
    body = {k: v for k, v in record.items() if k not in ("usage_digest", "log_entry")}
    digest = hashlib.sha256(canonical_json(body)).hexdigest()
    assert LogEntry.from_bytes(entry_bytes).record_sha256 == digest == record["usage_digest"]
    lines = api_client.get("/v1/audit/usage?format=jsonl", headers=auditor)
    assert lines.headers["content-type"] == "application/x-ndjson"
    assert lines.text.count("\n") == 1


def test_a_persons_id_number_is_whole_for_the_user_and_masked_for_everyone_else(
    api_client: TestClient, user: Services, headers: dict[str, str]
) -> None:
    fields = holder_fields("food_business_permit")
    del fields["credit_code"]
    fields["id_number"] = PERSON
    person = issue_certificate(
        user,
        department_code=DEMO_DEPARTMENT_CODE,
        request=IssueRequest(type_code="food_business_permit", fields=fields),
        actor=OPERATOR,
    ).certificate
    grant(user, "food_business_permit")
    response = api_client.post(
        "/v1/use/lookup", json=lookup_body(person, type="food_business_permit"), headers=headers
    )
    assert response.status_code == 200, response.text
    assert [i["holder_code"] for i in response.json()["licences"]] == [PERSON]
    check = api_client.post(
        "/v1/use/check",
        json={
            "type": "food_business_permit",
            "fields": fields,
            "use_cause": "核验",
            "matter": MATTER,
        },
        headers=headers,
    )
    assert check.json()["match"] is True
    reader = {"Authorization": f"Bearer {token_for(api_client, user, scopes='read')}"}
    usage = api_client.get(f"/v1/certificates/{person.id}/usage", headers=reader).json()
    assert [u["holder"] for u in usage] == [mask(PERSON)] * 2
    assert PERSON not in json.dumps(usage)
    with user.sessions() as session:
        leaves = session.execute(text("SELECT entry FROM log_leaves")).scalars().all()
    assert leaves
    assert not [leaf for leaf in leaves if PERSON.encode() in bytes(leaf)]
