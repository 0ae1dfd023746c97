"""POST/GET/DELETE /v1/subscriptions and the delivery log over HTTP (scope ``use`` for the
licence events; the envelope events are in test_envelope_events.py)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from econtract import db, webhooks
from econtract.departments import add_department
from econtract.services import Services
from tests.factories import OPERATOR, token_for
from tests.licences import issue_example
from tests.webhooks.conftest import Receiver
from tests.webhooks.helpers import revoke, use

OTHER_CODE = "9133100015J1YG617W"


def bearer(
    api_client: TestClient, services: Services, department: str | None = None
) -> dict[str, str]:
    """Headers of a using client (scope use) of the demo department, or of ``department``."""
    if department is None:
        token = token_for(api_client, services, scopes="use")
    else:
        token = token_for(api_client, services, department, scopes="use")
    return {"Authorization": f"Bearer {token}"}


def test_a_department_subscribes_and_reads_its_delivery_log(
    api_client: TestClient, initialised: Services, receiver: Receiver
) -> None:
    headers = bearer(api_client, initialised)
    created = api_client.post(
        "/v1/subscriptions",
        json={"url": receiver.url, "events": ["certificate.revoked", "certificate.suspended"]},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    subscription = created.json()
    assert subscription["id"].startswith("sub_")
    assert api_client.get("/v1/subscriptions", headers=headers).json() == [subscription]

    certificate = issue_example(initialised)
    use(initialised, certificate)
    revoke(initialised, certificate)
    webhooks.run_round(initialised)
    log = api_client.get(f"/v1/subscriptions/{subscription['id']}/deliveries", headers=headers)
    [delivery] = log.json()
    assert (delivery["status"], delivery["attempts"], delivery["event_type"]) == (
        "delivered",
        1,
        "certificate.revoked",
    )
    again = api_client.post(
        f"/v1/subscriptions/{subscription['id']}/deliveries/{delivery['id']}/redeliver",
        headers=headers,
    )
    assert again.status_code == 202
    assert again.json()["status"] == "pending"
    webhooks.run_round(initialised)
    assert len(receiver.received) == 2

    assert (
        api_client.delete(f"/v1/subscriptions/{subscription['id']}", headers=headers).status_code
        == 204
    )
    assert (
        api_client.get(f"/v1/subscriptions/{subscription['id']}", headers=headers).status_code
        == 404
    )


def test_another_departments_subscription_is_not_found(
    api_client: TestClient, initialised: Services, receiver: Receiver
) -> None:
    with db.transaction(initialised.sessions) as session:
        add_department(
            session, code=OTHER_CODE, name="杭州市市场监督管理局", region=None, actor=OPERATOR
        )
    mine = api_client.post(
        "/v1/subscriptions",
        json={"url": receiver.url, "events": ["certificate.revoked"]},
        headers=bearer(api_client, initialised),
    ).json()
    theirs = bearer(api_client, initialised, OTHER_CODE)
    for path in (f"/v1/subscriptions/{mine['id']}", f"/v1/subscriptions/{mine['id']}/deliveries"):
        assert api_client.get(path, headers=theirs).status_code == 404
    assert api_client.delete(f"/v1/subscriptions/{mine['id']}", headers=theirs).status_code == 404
    assert api_client.get("/v1/subscriptions", headers=theirs).json() == []


@pytest.mark.parametrize(
    ("scopes", "status"),
    [
        # No scope that opens an event type: refused.
        ("read", 403),
        # A department's sealing client hears of envelopes, not of licences.
        ("seal", 422),
    ],
)
def test_the_licence_events_need_the_use_scope(
    api_client: TestClient, initialised: Services, scopes: str, status: int
) -> None:
    token = token_for(api_client, initialised, scopes=scopes)
    answer = api_client.post(
        "/v1/subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "events": ["certificate.revoked"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == status


def test_bad_subscriptions_are_refused_by_name(
    api_client: TestClient, initialised: Services, receiver: Receiver
) -> None:
    headers = bearer(api_client, initialised)
    cases = [
        ({"url": receiver.url, "events": ["certificate.issued"]}, "invalid-input", "/events/0"),
        (
            {
                "url": receiver.url.replace("http://", "http://user:pw@"),
                "events": ["certificate.revoked"],
            },
            "unsafe-url",
            "/url",
        ),
        ({"url": "ftp://127.0.0.1/hook", "events": ["certificate.revoked"]}, "unsafe-url", "/url"),
        ({"url": "http://10.0.0.8/hook", "events": ["certificate.revoked"]}, "unsafe-url", "/url"),
    ]
    for body, code, pointer in cases:
        answer = api_client.post("/v1/subscriptions", json=body, headers=headers)
        assert answer.status_code == 422, body
        problem = answer.json()
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert problem["type"] == f"urn:econtract:problem:{code}", problem
        assert problem["errors"][0]["pointer"] == pointer
    too_long = {"url": receiver.url + "x" * 2048, "events": ["certificate.revoked"]}
    assert api_client.post("/v1/subscriptions", json=too_long, headers=headers).status_code == 422
