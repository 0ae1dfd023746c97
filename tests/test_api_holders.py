"""Over HTTP: one valid licence of a type per holder and department; supersede merges."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient

from econtract.services import Services
from tests.factories import token_for
from tests.licences import holder_fields


@pytest.fixture
def token(api_client: TestClient, initialised: Services) -> str:
    return token_for(api_client, initialised)


def issue(client: TestClient, token: str, fields: dict[str, Any], key: str | None = None) -> Any:
    return client.post(
        "/v1/certificates",
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": key or f"case-{secrets.token_hex(8)}",
        },
        json={"type": "business_licence", "fields": fields},
    )


def test_a_second_licence_for_a_holder_is_409_naming_the_first_and_supersede(
    api_client: TestClient, token: str
) -> None:
    fields = holder_fields()
    first = issue(api_client, token, fields).json()
    refused = issue(api_client, token, fields | {"address": "浙江省杭州市西湖区新址路1号"})
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["type"] == "urn:econtract:problem:licence-exists"
    assert problem["existing_certificate_id"] == first["id"]
    assert problem["existing_number"] == first["number"]
    assert first["number"] in problem["detail"]
    assert "supersede" in problem["detail"]


def test_a_replay_of_the_same_request_is_the_same_licence_not_a_conflict(
    api_client: TestClient, token: str
) -> None:
    fields = holder_fields()
    first = issue(api_client, token, fields, key="order-42")
    again = issue(api_client, token, fields, key="order-42")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


def test_supersede_keeps_the_fields_it_does_not_name_and_links_both_records(
    api_client: TestClient, token: str
) -> None:
    old = issue(api_client, token, holder_fields()).json()
    response = api_client.post(
        f"/v1/certificates/{old['id']}/supersede",
        headers={"Authorization": f"Bearer {token}"},
        json={"fields": {"registered_capital": "800万元人民币"}},
    )
    assert response.status_code == 201, response.text
    new = response.json()
    assert new["fields"] == old["fields"] | {"registered_capital": "800万元人民币"}
    assert new["supersedes"] == old["id"]
    assert new["superseded_by"] is None
    record = api_client.get(
        f"/v1/certificates/{old['id']}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert record["status"] == "superseded"
    assert record["superseded_by"] == {"id": new["id"], "number": new["number"]}
    listed = api_client.get(
        "/v1/certificates",
        params={"number": old["number"]},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert listed[0]["superseded_by"] == {"id": new["id"], "number": new["number"]}


def test_supersede_with_a_null_field_removes_it(api_client: TestClient, token: str) -> None:
    old = issue(api_client, token, holder_fields()).json()
    assert "business_term" in old["fields"]
    new = api_client.post(
        f"/v1/certificates/{old['id']}/supersede",
        headers={"Authorization": f"Bearer {token}"},
        json={"fields": {"business_term": None}},
    ).json()
    assert "business_term" not in new["fields"]
    assert new["fields"]["name"] == old["fields"]["name"]


def test_supersede_checks_the_merged_fields_and_points_at_the_bad_one(
    api_client: TestClient, token: str
) -> None:
    old = issue(api_client, token, holder_fields()).json()
    response = api_client.post(
        f"/v1/certificates/{old['id']}/supersede",
        headers={"Authorization": f"Bearer {token}"},
        json={"fields": {"credit_code": "9133010052CL12THX0"}},
    )
    assert response.status_code == 422
    assert any(e["pointer"].endswith("/credit_code") for e in response.json()["errors"])
